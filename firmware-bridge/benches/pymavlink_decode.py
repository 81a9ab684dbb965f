#!/usr/bin/env python3
"""Decodes a MAVLink byte stream with pymavlink and prints its throughput as one JSON line.

Used by `cargo bench -p firmware-bridge --bench decode`, which writes the same stream it decodes with the bridge
and compares the two. Usage: pymavlink_decode.py STREAM.bin [REPEATS]
"""

import json
import os
import sys
import time

os.environ["MAVLINK20"] = "1"
from pymavlink.dialects.v20 import ardupilotmega as mavlink  # noqa: E402


def main():
    path = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    data = open(path, "rb").read()
    best = None
    frames = 0
    for _ in range(repeats):
        mav = mavlink.MAVLink(None)
        mav.robust_parsing = True
        start = time.perf_counter()
        msgs = mav.parse_buffer(data) or []
        elapsed = time.perf_counter() - start
        frames = sum(1 for m in msgs if m.get_type() != "BAD_DATA")
        best = elapsed if best is None else min(best, elapsed)
    print(json.dumps({
        "frames": frames,
        "bytes": len(data),
        "seconds": best,
        "frames_per_s": frames / best,
        "mb_per_s": len(data) / best / 1e6,
    }))


if __name__ == "__main__":
    main()
