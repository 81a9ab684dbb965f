#!/usr/bin/env python3
"""A pymavlink vehicle that answers the way ArduCopter does, for the bridge interop test.

ArduPilot behaviours reproduced (the ones a ground station must cope with):
- MAVLink 2, system id 1, component 1, HEARTBEAT with MAV_AUTOPILOT_ARDUPILOTMEGA and plain copter mode numbers.
- Only HEARTBEAT and SYS_STATUS until a rate request; with --legacy-streams it ignores SET_MESSAGE_INTERVAL (as
  old ArduPilot did) and streams only after REQUEST_DATA_STREAM.
- Mission upload: asks for items with MISSION_REQUEST (not _INT), keeps home at seq 0 (item 0 is replaced by
  home), ends with MISSION_ACK. Download returns home at seq 0.
- Arming is refused ("PreArm: EKF attitude is bad", COMMAND_ACK FAILED) until the EKF is ready; it becomes
  ready --ekf-delay seconds after the first refused attempt and then says "EKF3 IMU0 is using GPS".
- NAV_TAKEOFF only in GUIDED and armed. MISSION_START switches to AUTO and "flies" the items: MISSION_CURRENT and
  MISSION_ITEM_REACHED for each. NAV_RETURN_TO_LAUNCH switches to RTL, "lands" and disarms.

Exits after --max-seconds, or when no GCS heartbeat was heard for 5 seconds after the first one.
"""

import argparse
import os
import time

os.environ["MAVLINK20"] = "1"
from pymavlink import mavutil  # noqa: E402

mav_mod = mavutil.mavlink

AUTO, GUIDED, LOITER, RTL, LAND = 3, 4, 5, 6, 9
HOME = (473977000, 85456000, 488.0)  # lat e7, lon e7, alt MSL m


class Vehicle:
    def __init__(self, conn, args):
        self.conn = conn
        self.mav = conn.mav
        self.args = args
        self.mode = LOITER
        self.armed = False
        self.streaming = False
        self.ekf_ready_at = None
        self.missions = {0: [self.home_item()], 1: [], 2: []}
        self.upload = None  # (mission_type, count, items, last_request_time, next_seq)
        self.flight = None  # (next_seq, next_time)
        self.landing_at = None
        self.current = 0
        self.last_gcs = None
        self.start = time.monotonic()

    def home_item(self):
        lat, lon, alt = HOME
        return dict(command=16, frame=0, current=0, autocontinue=1, params=(0.0, 0.0, 0.0, 0.0), x=lat, y=lon, z=alt)

    def send_text(self, severity, text):
        self.mav.statustext_send(severity, text.encode())

    def ack(self, command, result):
        self.mav.command_ack_send(command, result, 0, 0, 255, 190)

    def heartbeat(self):
        base = mav_mod.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        if self.armed:
            base |= mav_mod.MAV_MODE_FLAG_SAFETY_ARMED
        self.mav.heartbeat_send(mav_mod.MAV_TYPE_QUADROTOR, mav_mod.MAV_AUTOPILOT_ARDUPILOTMEGA, base, self.mode,
                                mav_mod.MAV_STATE_ACTIVE if self.armed else mav_mod.MAV_STATE_STANDBY)
        self.mav.sys_status_send(0, 0, 0, 500, 12600, -1, 87, 0, 0, 0, 0, 0, 0)

    def telemetry(self):
        t = int((time.monotonic() - self.start) * 1000)
        lat, lon, alt = HOME
        rel = 20.0 if self.armed else 0.0
        self.mav.global_position_int_send(t, lat, lon, int((alt + rel) * 1000), int(rel * 1000), 0, 0, 0, 9000)
        self.mav.attitude_send(t, 0.01, -0.02, 1.57, 0.0, 0.0, 0.0)
        self.mav.gps_raw_int_send(t * 1000, 3, lat, lon, int(alt * 1000), 80, 120, 0, 0, 12)
        self.mav.mission_current_send(self.current)

    def on_command(self, m):
        cmd = m.command
        if cmd == mav_mod.MAV_CMD_SET_MESSAGE_INTERVAL:
            if self.args.legacy_streams:
                return  # old ArduPilot: no answer at all
            self.streaming = True
            self.ack(cmd, mav_mod.MAV_RESULT_ACCEPTED)
        elif cmd == mav_mod.MAV_CMD_REQUEST_MESSAGE:
            self.ack(cmd, mav_mod.MAV_RESULT_ACCEPTED)
        elif cmd == mav_mod.MAV_CMD_COMPONENT_ARM_DISARM:
            if m.param1 == 1.0:
                now = time.monotonic()
                if self.ekf_ready_at is None or now < self.ekf_ready_at:
                    if self.ekf_ready_at is None:
                        self.ekf_ready_at = now + self.args.ekf_delay
                    self.send_text(mav_mod.MAV_SEVERITY_CRITICAL, "PreArm: EKF attitude is bad")
                    self.ack(cmd, mav_mod.MAV_RESULT_FAILED)
                    return
                self.armed = True
            else:
                self.armed = False
            self.ack(cmd, mav_mod.MAV_RESULT_ACCEPTED)
        elif cmd == mav_mod.MAV_CMD_DO_SET_MODE:
            self.mode = int(m.param2)
            self.ack(cmd, mav_mod.MAV_RESULT_ACCEPTED)
        elif cmd == mav_mod.MAV_CMD_NAV_TAKEOFF:
            if self.mode != GUIDED or not self.armed:
                self.ack(cmd, mav_mod.MAV_RESULT_FAILED)
            else:
                self.ack(cmd, mav_mod.MAV_RESULT_ACCEPTED)
        elif cmd == mav_mod.MAV_CMD_MISSION_START:
            if not self.armed or len(self.missions[0]) < 2:
                self.ack(cmd, mav_mod.MAV_RESULT_FAILED)
                return
            self.mode = AUTO
            self.flight = [1, time.monotonic() + 0.1]
            self.ack(cmd, mav_mod.MAV_RESULT_ACCEPTED)
        elif cmd == mav_mod.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self.mode = RTL
            self.flight = None
            self.landing_at = time.monotonic() + 0.5
            self.ack(cmd, mav_mod.MAV_RESULT_ACCEPTED)
        else:
            self.ack(cmd, mav_mod.MAV_RESULT_UNSUPPORTED)

    def request_item(self):
        mtype, count, items, _, seq = self.upload
        self.upload[3] = time.monotonic()
        # ArduPilot asks with MISSION_REQUEST, not MISSION_REQUEST_INT.
        self.mav.mission_request_send(255, 190, seq, mtype)

    def on_message(self, m):
        t = m.get_type()
        if t == "HEARTBEAT":
            if m.type == mav_mod.MAV_TYPE_GCS:
                self.last_gcs = time.monotonic()
        elif t == "COMMAND_LONG":
            if m.target_system == self.args.sysid:
                self.on_command(m)
        elif t == "REQUEST_DATA_STREAM":
            self.streaming = True
        elif t == "MISSION_COUNT":
            self.upload = [m.mission_type, m.count, [], 0.0, 0]
            if m.count == 0:
                self.missions[m.mission_type] = [self.home_item()] if m.mission_type == 0 else []
                self.upload = None
                self.mav.mission_ack_send(255, 190, mav_mod.MAV_MISSION_ACCEPTED, m.mission_type)
            else:
                self.request_item()
        elif t in ("MISSION_ITEM_INT", "MISSION_ITEM") and self.upload is not None:
            mtype, count, items, _, seq = self.upload
            if m.seq != seq or m.mission_type != mtype:
                return
            items.append(dict(command=m.command, frame=m.frame, current=0, autocontinue=m.autocontinue,
                              params=(m.param1, m.param2, m.param3, m.param4), x=m.x, y=m.y, z=m.z))
            if seq + 1 == count:
                if mtype == 0:
                    items[0] = self.home_item()  # ArduPilot keeps home at seq 0
                self.missions[mtype] = items
                self.upload = None
                self.mav.mission_ack_send(255, 190, mav_mod.MAV_MISSION_ACCEPTED, mtype)
            else:
                self.upload[4] = seq + 1
                self.request_item()
        elif t == "MISSION_REQUEST_LIST":
            self.mav.mission_count_send(255, 190, len(self.missions[m.mission_type]), m.mission_type)
        elif t in ("MISSION_REQUEST_INT", "MISSION_REQUEST"):
            items = self.missions[m.mission_type]
            if m.seq < len(items):
                i = items[m.seq]
                self.mav.mission_item_int_send(255, 190, m.seq, i["frame"], i["command"], i["current"],
                                               i["autocontinue"], *i["params"], i["x"], i["y"], i["z"],
                                               m.mission_type)
        elif t == "MISSION_CLEAR_ALL":
            self.missions[m.mission_type] = [self.home_item()] if m.mission_type == 0 else []
            self.mav.mission_ack_send(255, 190, mav_mod.MAV_MISSION_ACCEPTED, m.mission_type)
        elif t == "MISSION_SET_CURRENT":
            self.current = m.seq
            self.mav.mission_current_send(self.current)

    def step(self, now):
        if self.upload is not None and now - self.upload[3] > 0.5:
            self.request_item()
        if self.ekf_ready_at is not None and now >= self.ekf_ready_at and self.ekf_ready_at > 0:
            self.send_text(mav_mod.MAV_SEVERITY_INFO, "EKF3 IMU0 is using GPS")
            self.ekf_ready_at = -1.0  # ready from now on
        if self.flight is not None and now >= self.flight[1]:
            seq = self.flight[0]
            self.current = seq
            self.mav.mission_current_send(seq)
            self.mav.mission_item_reached_send(seq)
            if seq + 1 < len(self.missions[0]):
                self.flight = [seq + 1, now + 0.1]
            else:
                self.flight = None
        if self.landing_at is not None and now >= self.landing_at:
            self.mode = LAND
            self.armed = False
            self.landing_at = None
            self.send_text(mav_mod.MAV_SEVERITY_INFO, "Disarming motors")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connect", required=True, help="pymavlink address, e.g. udpout:127.0.0.1:14550")
    p.add_argument("--sysid", type=int, default=1)
    p.add_argument("--legacy-streams", action="store_true", help="ignore SET_MESSAGE_INTERVAL")
    p.add_argument("--ekf-delay", type=float, default=1.0, help="seconds from the first refused arm to EKF ready")
    p.add_argument("--max-seconds", type=float, default=60.0)
    args = p.parse_args()

    conn = mavutil.mavlink_connection(args.connect, source_system=args.sysid, source_component=1,
                                      dialect="ardupilotmega")
    v = Vehicle(conn, args)
    next_hb = 0.0
    next_tel = 0.0
    deadline = time.monotonic() + args.max_seconds
    while True:
        now = time.monotonic()
        if now > deadline:
            break
        if v.last_gcs is not None and now - v.last_gcs > 5.0:
            break
        if now >= next_hb:
            v.heartbeat()
            next_hb = now + 1.0
        if v.streaming and now >= next_tel:
            v.telemetry()
            next_tel = now + 0.2
        v.step(now)
        m = conn.recv_match(blocking=True, timeout=0.05)
        while m is not None:
            if m.get_type() != "BAD_DATA":
                v.on_message(m)
            m = conn.recv_match(blocking=False)


if __name__ == "__main__":
    main()
