"""Choose the station's alert thresholds from simulated patrols over calibration worlds.

The station announces a hazard once `tracking.confirm_photos` (2) distinct photos show it at or above its label's
threshold (`[inference.thresholds]`). So what separates a planted hazard from a false alarm is the score of its
second-best photo. This script reads the station's database after `patrol demo` runs over calibration worlds
(painted by `paint_world.py --seed N`, never the demo world the tests score against), groups every stored detection
by the hazard the tracker put it in (tentative ones included: the database keeps them), matches hazards to the
planted truth, and prints per label the second-best photo score of each planted hazard and of each false alarm,
and a threshold: halfway between the highest false alarm and the lowest planted hazard where they separate, else
the highest that keeps every planted hazard, with the number of false alarms it lets through.

Standard library only. One run per calibration world, for example:

  python paint_world.py --seed 7 --out /tmp/calib-7          # then a data folder with it as demo-world/
  patrol demo --headless --drones 2 --speedup 2 --data /tmp/c7/data --work-dir /tmp/run-7 --summary /tmp/run-7.json
  python calibrate_alerts.py /tmp/run-7:/tmp/calib-7/world.json /tmp/run-8:/tmp/calib-8/world.json

Detections below the thresholds in force during the run are not stored, so a second-best score below them shows
as 0; run the calibration with thresholds at or below the ones you want to choose.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
from pathlib import Path

# Model label -> the station's hazard kind (what the tracker merges on).
KIND = {"fire": "fire", "smoke": "fire", "gas_cylinder": "gas", "steel_shed": "structure", "rooftop_addon": "structure"}
# A hazard within this distance of a planted one of its kind is that hazard (the demo summary uses the same).
MATCH_RADIUS_M = 10.0


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = (a[0] - b[0]) * 111_320.0
    east = (a[1] - b[1]) * 111_320.0 * math.cos(math.radians(a[0]))
    return math.hypot(north, east)


def second_best_scores(run: Path, world: dict) -> list[tuple[str, str, bool, float, int]]:
    """(label, hazard id, planted?, second-best photo score, photos) for every hazard and label of one run."""
    db = sqlite3.connect(run / "patrol.sqlite")
    photos: dict[tuple[str, str], dict[str, float]] = {}
    for hazard_id, capture_id, label, confidence in db.execute(
        "SELECT hazard_id, capture_id, label, confidence FROM detections WHERE hazard_id IS NOT NULL"
    ):
        best = photos.setdefault((hazard_id, label), {})
        best[capture_id] = max(best.get(capture_id, 0.0), confidence)
    where = {}
    for hazard_id, text in db.execute("SELECT id, json FROM hazards"):
        hazard = json.loads(text)
        where[hazard_id] = (hazard["position"]["lat_deg"], hazard["position"]["lon_deg"], hazard["kind"])
    out = []
    for (hazard_id, label), scores in sorted(photos.items()):
        lat, lon, kind = where[hazard_id]
        near = [
            h["label"]
            for h in world["hazards"]
            if KIND.get(h["label"]) == kind and distance_m((h["lat"], h["lon"]), (lat, lon)) <= MATCH_RADIUS_M
        ]
        if near and label not in near:
            continue  # a planted hazard seen under a sibling label (smoke over a fire): neither kind of evidence
        ranked = sorted(scores.values(), reverse=True)
        out.append((label, hazard_id, bool(near), ranked[1] if len(ranked) > 1 else 0.0, len(ranked)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="RUN_DIR:WORLD_JSON, the demo's --work-dir and the world it flew over")
    args = ap.parse_args()
    rows = []
    for spec in args.runs:
        run, world = spec.split(":", 1)
        rows += second_best_scores(Path(run), json.loads(Path(world).read_text()))
    print(f"{'label':14} {'planted (2nd-best photo)':32} {'false alarms: highest 2nd-best':30} threshold")
    for label in sorted({r[0] for r in rows}):
        planted = sorted(r[3] for r in rows if r[0] == label and r[2])
        false = sorted((r[3] for r in rows if r[0] == label and not r[2]), reverse=True)
        top_false = false[0] if false else 0.0
        if planted and not false:
            choice = "no false alarm: keep the threshold of the run"
        elif planted and planted[0] > top_false:
            choice = f"{(planted[0] + top_false) / 2:.3f} (separates)"
        elif planted:
            # None separates: keep every planted hazard, and say what that lets through.
            keep_all = math.floor(planted[0] * 100) / 100
            through = sum(1 for f in false if f >= keep_all)
            choice = f"{keep_all:.2f} keeps every planted one; {through} false alarm(s) at or above it"
        else:
            choice = "no planted hazard of this label"
        shown_planted = " ".join(f"{s:.2f}" for s in planted) or "-"
        shown_false = " ".join(f"{s:.2f}" for s in false[:4]) or "-"
        print(f"{label:14} {shown_planted:32} {shown_false:30} {choice}")


if __name__ == "__main__":
    main()
