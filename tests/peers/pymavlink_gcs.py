#!/usr/bin/env python3
"""pymavlink as a ground station against our simulated ArduPilot-personality drone.

Listens on --listen (the simulator sends there, udpout-style), then: asks for telemetry rates (a real ArduPilot
sends only HEARTBEAT and SYS_STATUS until asked), uploads a 10-item mission answering whatever request message
the vehicle uses (ArduPilot asks with MISSION_REQUEST), downloads it back and compares, switches to GUIDED, arms
(retrying while the vehicle refuses with "PreArm: ..." until its position estimate is ready), flies the mission
in AUTO and checks that every navigation item is reported with MISSION_ITEM_REACHED, then commands RTL and waits
until the vehicle has landed near home and disarmed.

Exits 0 and prints one "OK ..." line on success; exits 1 with "FAIL: ..." on stderr otherwise. Every wait is
bounded by --timeout (wall seconds for the whole run).
"""

import argparse
import math
import os
import sys
import time

# MAVLink 2 (the simulator speaks only MAVLink 2); must be set before pymavlink picks its dialect module.
os.environ["MAVLINK20"] = "1"

from pymavlink import mavutil  # noqa: E402

mavlink = mavutil.mavlink


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


class Gcs:
    def __init__(self, listen, deadline):
        self.conn = mavutil.mavlink_connection(
            f"udpin:{listen}", source_system=255, source_component=190, dialect="ardupilotmega"
        )
        self.deadline = deadline
        self.reached = []
        self.texts = []
        self.last_position = None
        self.armed = False
        self.mode = None

    def left(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            fail(f"timed out; reached so far {self.reached}, texts {self.texts[-5:]}")
        return remaining

    def recv(self, types=None, timeout=5.0):
        """Next message of one of `types` (None: any), bookkeeping everything seen on the way."""
        end = time.monotonic() + min(timeout, self.left())
        while time.monotonic() < end:
            msg = self.conn.recv_match(blocking=True, timeout=max(0.01, end - time.monotonic()))
            if msg is None:
                continue
            kind = msg.get_type()
            if kind == "MISSION_ITEM_REACHED":
                self.reached.append(msg.seq)
            elif kind == "STATUSTEXT":
                self.texts.append(msg.text)
            elif kind == "GLOBAL_POSITION_INT":
                self.last_position = msg
            elif kind == "HEARTBEAT" and msg.get_srcComponent() == 1:
                self.armed = bool(msg.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
                self.mode = msg.custom_mode
            if types is None or kind in types:
                return msg
        return None

    def command(self, command, *params):
        """Sends a COMMAND_LONG and returns the result of its COMMAND_ACK."""
        params = list(params) + [0.0] * (7 - len(params))
        self.conn.mav.command_long_send(self.conn.target_system, 1, command, 0, *params)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            ack = self.recv(["COMMAND_ACK"], timeout=end - time.monotonic())
            if ack is not None and ack.command == command:
                return ack.result
        fail(f"no COMMAND_ACK for command {command}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    parser.add_argument("--timeout", type=float, default=60.0, help="wall seconds for the whole run")
    args = parser.parse_args()
    started = time.monotonic()
    gcs = Gcs(args.listen, started + args.timeout)

    hb = gcs.recv(["HEARTBEAT"], timeout=10)
    if hb is None:
        fail("no HEARTBEAT from the simulator")
    gcs.conn.target_system = hb.get_srcSystem()
    gcs.conn.target_component = 1
    if hb.autopilot != mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA:
        fail(f"HEARTBEAT autopilot {hb.autopilot}, expected ARDUPILOTMEGA")

    # Before a rate request an ArduPilot sends only HEARTBEAT and SYS_STATUS.
    before = set()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        msg = gcs.recv(None, timeout=end - time.monotonic())
        if msg is not None:
            before.add(msg.get_type())
    if not before <= {"HEARTBEAT", "SYS_STATUS", "MISSION_CURRENT", "STATUSTEXT"}:
        fail(f"streams before any rate request: {sorted(before)}")

    gcs.conn.mav.request_data_stream_send(gcs.conn.target_system, 1, mavlink.MAV_DATA_STREAM_ALL, 10, 1)
    pos = gcs.recv(["GLOBAL_POSITION_INT"], timeout=5)
    if pos is None:
        fail("no GLOBAL_POSITION_INT after REQUEST_DATA_STREAM")
    home_lat, home_lon = pos.lat, pos.lon

    # 10 items: home slot, takeoff, 8 waypoints on a 60 m square-ish loop.
    def offset(east_m, north_m):
        lat = home_lat + int(north_m / 111_320.0 * 1e7)
        lon = home_lon + int(east_m / (111_320.0 * math.cos(math.radians(home_lat * 1e-7))) * 1e7)
        return lat, lon

    rel = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    items = [(mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_FRAME_GLOBAL, home_lat, home_lon, 0.0)]
    items.append((mavlink.MAV_CMD_NAV_TAKEOFF, rel, home_lat, home_lon, 20.0))
    for east, north in [(60, 0), (60, 30), (0, 30), (0, 60), (60, 60), (60, 90), (0, 90), (0, 45)]:
        lat, lon = offset(east, north)
        items.append((mavlink.MAV_CMD_NAV_WAYPOINT, rel, lat, lon, 25.0))
    assert len(items) == 10

    gcs.conn.mav.mission_count_send(gcs.conn.target_system, 1, len(items), mavlink.MAV_MISSION_TYPE_MISSION)
    request_kinds = set()
    while True:
        msg = gcs.recv(["MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK"], timeout=3)
        if msg is None:
            fail("upload stalled: no request or ack")
        if msg.get_type() == "MISSION_ACK":
            if msg.type != mavlink.MAV_MISSION_ACCEPTED:
                fail(f"upload refused with MISSION_ACK type {msg.type}")
            break
        request_kinds.add(msg.get_type())
        command, frame, lat, lon, alt = items[msg.seq]
        gcs.conn.mav.mission_item_int_send(
            gcs.conn.target_system, 1, msg.seq, frame, command, 0, 1, 0, 0, 0, 0, lat, lon, alt,
            mavlink.MAV_MISSION_TYPE_MISSION,
        )
    if request_kinds != {"MISSION_REQUEST"}:
        fail(f"ArduPilot asks with MISSION_REQUEST, the simulator used {sorted(request_kinds)}")

    # Download and compare (ArduPilot serves home at seq 0).
    gcs.conn.mav.mission_request_list_send(gcs.conn.target_system, 1, mavlink.MAV_MISSION_TYPE_MISSION)
    count = gcs.recv(["MISSION_COUNT"], timeout=3)
    if count is None or count.count != len(items):
        fail(f"download count {getattr(count, 'count', None)}, expected {len(items)}")
    for seq in range(count.count):
        gcs.conn.mav.mission_request_int_send(gcs.conn.target_system, 1, seq, mavlink.MAV_MISSION_TYPE_MISSION)
        item = gcs.recv(["MISSION_ITEM_INT"], timeout=3)
        if item is None or item.seq != seq:
            fail(f"download: no MISSION_ITEM_INT {seq}")
        command, _, lat, lon, alt = items[seq]
        if seq > 0 and (item.command != command or item.x != lat or item.y != lon or abs(item.z - alt) > 1e-3):
            fail(f"download: item {seq} differs: {item}")
    gcs.conn.mav.mission_ack_send(gcs.conn.target_system, 1, mavlink.MAV_MISSION_ACCEPTED, mavlink.MAV_MISSION_TYPE_MISSION)

    if gcs.command(mavlink.MAV_CMD_DO_SET_MODE, 1, 4) != mavlink.MAV_RESULT_ACCEPTED:  # GUIDED
        fail("GUIDED refused")
    refusals = 0
    while True:
        result = gcs.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        if result == mavlink.MAV_RESULT_ACCEPTED:
            break
        refusals += 1
        gcs.recv(["STATUSTEXT"], timeout=0.2)
        time.sleep(0.05)
    prearm = [t for t in gcs.texts if t.startswith("PreArm")]
    if refusals and not prearm:
        fail(f"arming was refused {refusals} times without a PreArm STATUSTEXT: {gcs.texts}")

    flight_started = time.monotonic()
    if gcs.command(mavlink.MAV_CMD_DO_SET_MODE, 1, 3) != mavlink.MAV_RESULT_ACCEPTED:  # AUTO
        fail("AUTO refused")
    expected = list(range(1, len(items)))
    while sorted(set(gcs.reached)) != expected:
        gcs.recv(["MISSION_ITEM_REACHED"], timeout=gcs.left())
    flight_s = time.monotonic() - flight_started

    if gcs.command(mavlink.MAV_CMD_DO_SET_MODE, 1, 6) != mavlink.MAV_RESULT_ACCEPTED:  # RTL
        fail("RTL refused")
    while gcs.armed:
        gcs.recv(["HEARTBEAT"], timeout=gcs.left())
    final = None
    while final is None or final.relative_alt > 500:
        final = gcs.recv(["GLOBAL_POSITION_INT"], timeout=2)
        if final is None:
            fail("no position after landing")
    north = (final.lat - home_lat) * 1e-7 * 111_320.0
    east = (final.lon - home_lon) * 1e-7 * 111_320.0 * math.cos(math.radians(home_lat * 1e-7))
    distance = math.hypot(north, east)
    if distance > 3.0:
        fail(f"landed {distance:.1f} m from home")
    print(
        f"OK reached={sorted(set(gcs.reached))} prearm_refusals={refusals} prearm_text={prearm[:1]} "
        f"request=MISSION_REQUEST mission_wall_s={flight_s:.2f} landed_from_home_m={distance:.2f} "
        f"total_wall_s={time.monotonic() - started:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
