#!/usr/bin/env python3
"""MAVSDK (the native `mavsdk` 4.x wheel with libcmavsdk) against our simulated PX4-personality drone.

Listens on --listen (udpin), waits for the autopilot, uploads a mission with the mission_raw plugin, arms
(retrying while the vehicle's position estimate is not ready), starts the mission and reads mission progress
until every item is done.

Exits 0 and prints one "OK ..." line on success; exits 1 with "FAIL: ..." on stderr otherwise; bounded by
--timeout wall seconds.
"""

import argparse
import math
import sys
import threading
import time

from mavsdk import ComponentType, Configuration, Mavsdk
from mavsdk.plugins.action import Action
from mavsdk.plugins.mission_raw import MissionItem, MissionRaw
from mavsdk.plugins.telemetry import Telemetry

MAV_CMD_NAV_WAYPOINT = 16
MAV_CMD_NAV_TAKEOFF = 22
MAV_FRAME_GLOBAL_RELATIVE_ALT_INT = 6


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="PORT to listen on (udpin://0.0.0.0:PORT)")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    started = time.monotonic()
    deadline = started + args.timeout

    mavsdk = Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))
    mavsdk.add_any_connection(f"udpin://127.0.0.1:{args.listen}")
    system = mavsdk.first_autopilot(timeout_s=10.0)
    if system is None:
        fail("no autopilot discovered")

    telemetry = Telemetry(system)
    position = telemetry.position()
    home_lat, home_lon = position.latitude_deg, position.longitude_deg
    if not (math.isfinite(home_lat) and abs(home_lat) > 1e-6):
        # Telemetry may not have arrived yet; wait a little.
        for _ in range(50):
            time.sleep(0.1)
            position = telemetry.position()
            home_lat, home_lon = position.latitude_deg, position.longitude_deg
            if abs(home_lat) > 1e-6:
                break
        else:
            fail("no position telemetry from the vehicle")

    def item(seq, command, east_m, north_m, alt_m):
        lat = home_lat + north_m / 111_320.0
        lon = home_lon + east_m / (111_320.0 * math.cos(math.radians(home_lat)))
        return MissionItem(
            seq=seq, frame=MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, command=command, current=1 if seq == 0 else 0,
            autocontinue=1, param1=0.0, param2=0.0, param3=0.0, param4=float("nan"),
            x=int(round(lat * 1e7)), y=int(round(lon * 1e7)), z=alt_m, mission_type=0,
        )

    points = [(50, 0), (50, 50), (0, 50), (0, 0)]
    items = [item(0, MAV_CMD_NAV_TAKEOFF, 0, 0, 15.0)]
    items += [item(i + 1, MAV_CMD_NAV_WAYPOINT, e, n, 20.0) for i, (e, n) in enumerate(points)]
    mission_raw = MissionRaw(system)
    mission_raw.upload_mission(items)

    progress_seen = []
    done = threading.Event()

    def on_progress(progress, _user_data):
        progress_seen.append((progress.current, progress.total))
        if progress.total == len(items) and progress.current == progress.total:
            done.set()

    handle = mission_raw.subscribe_mission_progress(on_progress)

    action = Action(system)
    refusals = 0
    while True:
        try:
            action.arm()
            break
        except Exception as error:  # ActionError: the vehicle refused (position estimate not ready yet).
            refusals += 1
            if time.monotonic() > deadline:
                fail(f"arming kept failing: {error}")
            time.sleep(0.2)

    flight_started = time.monotonic()
    mission_raw.start_mission()
    if not done.wait(timeout=max(1.0, deadline - time.monotonic())):
        fail(f"mission did not finish; progress seen {progress_seen[-5:]}")
    mission_raw.unsubscribe_mission_progress(handle)
    flight_s = time.monotonic() - flight_started
    currents = sorted({c for c, _ in progress_seen})
    print(
        f"OK items={len(items)} progress_currents={currents} arm_refusals={refusals} "
        f"mission_wall_s={flight_s:.2f} total_wall_s={time.monotonic() - started:.2f}",
        flush=True,
    )
    mavsdk.destroy()


if __name__ == "__main__":
    main()
