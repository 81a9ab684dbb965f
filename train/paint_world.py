"""Paint the demo world: a georeferenced 0.1 m/px raster of the demo area with hazards at known positions.

The raster is a patchwork of real aerial town imagery (OpenAerialMap mosaics, resampled to 0.1 m/px and blended)
with hazards composited by the same code as the training scenes (synth.py), but other seeds. It writes:

  <out>/world.jpg    the raster (JPEG)
  <out>/world.jgw    ESRI world file in WGS84 degrees (pixel size, rotation 0, centre of the top-left pixel)
  <out>/world.json   raster name, bounds, GSD, planted hazards {id, kind, label, lat, lon, size_m} and invisible
                     gas leaks {id, lat, lon, rate} for the simulated methane sensor

The south-west quadrant (lat < mid, lon < mid) stays hazard-free: it is the demo's "empty cell".

  python paint_world.py                  # writes ../data/demo-world/
  python paint_world.py --check ../models/patrol-hazard.onnx   # also runs the model on simulated camera views

Calibration worlds: `--seed` other than the demo's paints another world of the same kind (other background chips,
the planted hazards moved by up to 60 m within their quadrant, other sprites) into another folder, and
`--calibrate` sweeps the simulated camera over a whole world and prints, per class, the highest score away from
every planted hazard and the lowest best score on a planted one: the station's alert thresholds are chosen on such
worlds, never on the demo world that the tests and the demo score against.

  python paint_world.py --seed 7 --out data/calib-7 --calibrate ../models/patrol-hazard.onnx
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import synth

HERE = Path(__file__).resolve().parent
SOUTH, NORTH, WEST, EAST = 22.5400, 22.5436, 113.8800, 113.8849
GSD_M = 0.1
TILE = 448  # background chip size (pixels at 0.1 m/px)
OVERLAP = 64
SEED = 20_240_601

KIND = {"fire": "fire", "smoke": "fire", "gas_cylinder": "gas", "steel_shed": "illegal_structure",
        "rooftop_addon": "illegal_structure"}

# planted hazards: (id, label, fraction east of WEST, fraction north of SOUTH, size in metres)
# quadrants: NW = (x<0.5, y>0.5), NE = (x>0.5, y>0.5), SE = (x>0.5, y<0.5); SW (x<0.5, y<0.5) stays empty.
PLAN = [
    ("fire-1", "fire", 0.22, 0.78, 3.5),
    ("shed-1", "steel_shed", 0.33, 0.64, 7.0),
    ("smoke-1", "smoke", 0.70, 0.84, 11.0),
    ("gas-1", "gas_cylinder", 0.64, 0.66, 0.0),
    ("addon-1", "rooftop_addon", 0.86, 0.70, 4.0),
    ("fire-2", "fire", 0.80, 0.22, 3.0),
    ("gas-2", "gas_cylinder", 0.62, 0.36, 0.0),
    ("shed-2", "steel_shed", 0.90, 0.40, 5.5),
]
# invisible leaks: (id, near hazard id or None, fraction x, fraction y, rate in g/s of methane-equivalent)
LEAKS = [("leak-1", "gas-1", 0.0, 0.0, 2.0), ("leak-2", None, 0.30, 0.90, 0.8)]


def metres_per_degree(lat_deg: float) -> tuple[float, float]:
    phi = math.radians(lat_deg)
    m_lat = 111132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    m_lon = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    return m_lat, m_lon


def raster_size() -> tuple[int, int]:
    m_lat, m_lon = metres_per_degree((SOUTH + NORTH) / 2)
    w = round((EAST - WEST) * m_lon / GSD_M)
    h = round((NORTH - SOUTH) * m_lat / GSD_M)
    return w, h


def paint_background(rng: random.Random, w: int, h: int, shared: Path) -> np.ndarray:
    """Weighted blend of overlapping OAM chips at 0.1 m/px (feathered edges hide most seams)."""
    bgs = [b for b in synth.list_backgrounds(shared) if "openaerialmap" in b.path and b.gsd < 0.1]
    acc = np.zeros((h, w, 3), np.float32)
    wsum = np.zeros((h, w, 1), np.float32)
    ramp = np.minimum(np.arange(TILE) + 1, OVERLAP) / OVERLAP
    ramp = np.minimum(ramp, ramp[::-1]).astype(np.float32)
    weight = (ramp[:, None] * ramp[None, :])[..., None]
    step = TILE - OVERLAP
    for y0 in range(-OVERLAP // 2, h, step):
        for x0 in range(-OVERLAP // 2, w, step):
            chip = synth.background_chip(rng, rng.choice(bgs), GSD_M, TILE)
            ys, xs = max(0, y0), max(0, x0)
            ye, xe = min(h, y0 + TILE), min(w, x0 + TILE)
            c = chip[ys - y0:ye - y0, xs - x0:xe - x0]
            wt = weight[ys - y0:ye - y0, xs - x0:xe - x0]
            acc[ys:ye, xs:xe] += c * wt
            wsum[ys:ye, xs:xe] += wt
    return acc / np.maximum(wsum, 1e-6)


def px_to_latlon(x: float, y: float, w: int, h: int) -> tuple[float, float]:
    """Pixel coordinates (x right, y down, edges at integers) -> (lat, lon)."""
    return NORTH - y / h * (NORTH - SOUTH), WEST + x / w * (EAST - WEST)


def latlon_to_px(lat: float, lon: float, w: int, h: int) -> tuple[float, float]:
    return (lon - WEST) / (EAST - WEST) * w, (NORTH - lat) / (NORTH - SOUTH) * h


def plant(gen: synth.Generator, sc: synth.Scene, rng: random.Random, label: str, cx: float, cy: float,
          size_m: float) -> bool:
    """Composite one hazard centred near (cx, cy) px; the exact box ends up in sc.boxes[-1]."""
    if label in ("fire", "smoke"):
        sp = gen.fire_sprite(rng) if label == "fire" else synth.smoke_sprite(rng, rng.choice(gen.smoke_src))
        h0, w0 = sp.alpha.shape
        s = size_m / sc.gsd / max(h0, w0)
        spot = (int(cx - w0 * s / 2), int(cy - h0 * s / 2))
        return sc.fire(sp, size_m, spot) if label == "fire" else sc.smoke(sp, size_m, spot)
    if label == "gas_cylinder":
        for _ in range(50):  # the demo wants big, well visible groups: 5-6 cylinders
            obj, _ = synth.gas_group(rng, sc.gsd)
            if obj.alpha.shape[0] * obj.alpha.shape[1] >= 130:
                break
        height = 1.2
    elif label == "steel_shed":
        while True:
            obj, height = synth.steel_shed(rng, sc.gsd)
            if abs(max(obj.alpha.shape) * sc.gsd - size_m) < 2.5:
                break
    else:
        while True:
            obj, height = synth.rooftop_addon(rng, sc.gsd)
            if abs(max(obj.alpha.shape) * sc.gsd - size_m) < 1.5:
                break
    h, w = obj.alpha.shape
    return sc.solid(synth.CLASS_NAMES.index(label), obj, height, (int(cx - w / 2), int(cy - h / 2)))


def paint(out: Path, shared: Path, quality: int, seed: int = SEED) -> dict:
    rng = random.Random(seed)
    moves = random.Random(seed + 1)
    w, h = raster_size()
    canvas = paint_background(rng, w, h, shared)
    gen = synth.Generator(shared, "train")
    sc = synth.Scene(rng, canvas, GSD_M)
    hazards = []
    for hid, label, fx, fy, size in PLAN:
        if seed != SEED:  # a calibration world: same kinds and quadrants, other places
            fx = min(0.95, max(0.55 if fx > 0.5 else 0.05, fx + moves.uniform(-0.12, 0.12)))
            fy = min(0.95, max(0.55 if fy > 0.5 else 0.05, fy + moves.uniform(-0.12, 0.12)))
        cx, cy = fx * w, (1 - fy) * h
        n_before = len(sc.boxes)
        if not plant(gen, sc, rng, label, cx, cy, size) or len(sc.boxes) == n_before:
            raise RuntimeError(f"could not plant {hid}")
        cls, x0, y0, x1, y1 = sc.boxes[-1]
        lat, lon = px_to_latlon((x0 + x1) / 2, (y0 + y1) / 2, w, h)
        hazards.append({"id": hid, "kind": KIND[label], "label": label, "lat": round(lat, 7), "lon": round(lon, 7),
                        "size_m": round(max(x1 - x0, y1 - y0) * GSD_M, 2),
                        "box_px": [round(v, 1) for v in (x0, y0, x1, y1)]})
    leaks = []
    for lid, near, fx, fy, rate in LEAKS:
        if near is not None:
            hz = next(z for z in hazards if z["id"] == near)
            m_lat, m_lon = metres_per_degree(hz["lat"])
            lat, lon = hz["lat"] - 2.0 / m_lat, hz["lon"] + 2.5 / m_lon  # ~3 m south-east of the cylinders
        else:
            lat, lon = SOUTH + fy * (NORTH - SOUTH), WEST + fx * (EAST - WEST)
        leaks.append({"id": lid, "lat": round(lat, 7), "lon": round(lon, 7), "rate": rate,
                      "near": near})
    mid_lat, mid_lon = (SOUTH + NORTH) / 2, (WEST + EAST) / 2
    for z in hazards + leaks:
        if z["lat"] < mid_lat and z["lon"] < mid_lon:
            raise RuntimeError(f"{z['id']} is in the south-west (empty) quadrant")
    out.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    img.save(out / "world.jpg", "JPEG", quality=quality, optimize=True)
    dlon, dlat = (EAST - WEST) / w, (NORTH - SOUTH) / h
    (out / "world.jgw").write_text(
        f"{dlon:.12e}\n0.0\n0.0\n{-dlat:.12e}\n{WEST + dlon / 2:.10f}\n{NORTH - dlat / 2:.10f}\n")
    m_lat, m_lon = metres_per_degree(mid_lat)
    world = {
        "raster": "world.jpg",
        "world_file": "world.jgw",
        "crs": "EPSG:4326",
        "width_px": w,
        "height_px": h,
        "bounds": {"south": SOUTH, "north": NORTH, "west": WEST, "east": EAST},
        "gsd_m": {"nominal": GSD_M, "x": round(dlon * m_lon, 5), "y": round(dlat * m_lat, 5)},
        "empty_quadrant": {"name": "south-west", "lat_below": mid_lat, "lon_below": mid_lon},
        "hazards": hazards,
        "leaks": leaks,
        "seed": seed,
        "generator": "train/paint_world.py (synth.py compositing)",
        "sample_data": True,
        "attribution": "Imagery (c) OpenAerialMap contributors (Open Imagery Network), CC BY 4.0; flames and smoke "
                       "from fire-wrpgm dataset v8, Roboflow user custom-thxhn, CC BY 4.0",
    }
    (out / "world.json").write_text(json.dumps(world, indent=2) + "\n")
    return world


def check(world_dir: Path, model: Path, cam_gsd: float = 0.07, thr: float = 0.3) -> None:
    """Simulated nadir camera (0.1 m/px raster resampled to cam_gsd) around each hazard and in the empty cell."""
    import onnxruntime as ort

    world = json.loads((world_dir / "world.json").read_text())
    img = Image.open(world_dir / world["raster"]).convert("RGB")
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    S = sess.get_inputs()[0].shape[2]
    names = synth.CLASS_NAMES
    f = GSD_M / cam_gsd
    src = S / f  # raster pixels per model tile

    def detect(cx: float, cy: float) -> list[tuple[str, float]]:
        tile = img.resize((S, S), Image.BILINEAR, box=(cx - src / 2, cy - src / 2, cx + src / 2, cy + src / 2))
        x = (np.asarray(tile, np.float32) / 255).transpose(2, 0, 1)[None]
        o = sess.run(None, {"images": x})[0][0]  # [9, N]
        best = o[4:].max(1)
        return [(names[c], float(best[c])) for c in range(len(names)) if best[c] >= thr]

    w, h = world["width_px"], world["height_px"]
    for z in world["hazards"]:
        x0, y0, x1, y1 = z["box_px"]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        dets = detect(cx + 40, cy - 30)  # hazard off-centre in the tile
        ok = any(n == z["label"] for n, _ in dets)
        print(f"  {z['id']:8s} {z['label']:14s} size {z['size_m']:5.2f} m -> {'FOUND' if ok else 'missed'} {dets}")
    rng = random.Random(5)
    fp = 0
    for _ in range(12):
        cx, cy = rng.uniform(src, w / 2 - src), rng.uniform(h / 2 + src, h - src)
        d = detect(cx, cy)
        fp += bool(d)
        if d:
            print(f"  empty-cell view at ({cx:.0f},{cy:.0f}) px: {d}")
    print(f"  empty (south-west) cell: {fp}/12 simulated views with a detection >= {thr}")


def calibrate(world_dir: Path, model: Path, cam_gsd: float = 0.07, overlap: float = 0.2) -> None:
    """Sweep simulated nadir camera tiles over the whole world: per class, the highest score farther than 6 m from
    every planted hazard (a false alarm at any threshold below it) and, per planted hazard, its class's best score
    within 6 m (missed at any threshold above it)."""
    import onnxruntime as ort

    world = json.loads((world_dir / "world.json").read_text())
    img = Image.open(world_dir / world["raster"]).convert("RGB")
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    S = sess.get_inputs()[0].shape[2]
    names = synth.CLASS_NAMES
    src = S * cam_gsd / GSD_M  # raster pixels per model tile
    near_px = 6.0 / GSD_M
    planted = [((z["box_px"][0] + z["box_px"][2]) / 2, (z["box_px"][1] + z["box_px"][3]) / 2, z) for z in world["hazards"]]
    worst_false = {n: (0.0, None) for n in names}
    best_true = {z["id"]: 0.0 for _, _, z in planted}
    w, h = world["width_px"], world["height_px"]
    step = src * (1 - overlap)
    y = 0.0
    while y + src <= h:
        x = 0.0
        while x + src <= w:
            tile = img.resize((S, S), Image.BILINEAR, box=(x, y, x + src, y + src))
            o = sess.run(None, {"images": (np.asarray(tile, np.float32) / 255).transpose(2, 0, 1)[None]})[0][0]
            for i in np.nonzero(o[4:].max(0) >= 0.3)[0]:
                c = int(o[4:, i].argmax())
                score = float(o[4 + c, i])
                px, py = x + o[0, i] / S * src, y + o[1, i] / S * src
                hits = [z for zx, zy, z in planted if math.hypot(zx - px, zy - py) < near_px + z["size_m"] / 2 / GSD_M]
                if any(z["label"] == names[c] for z in hits):
                    for z in hits:
                        if z["label"] == names[c]:
                            best_true[z["id"]] = max(best_true[z["id"]], score)
                elif not hits and score > worst_false[names[c]][0]:
                    lat, lon = px_to_latlon(px, py, w, h)
                    worst_false[names[c]] = (score, (round(lat, 6), round(lon, 6)))
            x += step
        y += step
    print(f"calibration sweep of {world_dir} ({cam_gsd} m/px tiles, {overlap:.0%} overlap):")
    for n, (score, where) in worst_false.items():
        print(f"  {n:14s} highest score away from planted hazards {score:.3f} at {where}")
    for _, _, z in planted:
        print(f"  {z['id']:8s} {z['label']:14s} best score {best_true[z['id']]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE.parent / "data" / "demo-world")
    ap.add_argument("--shared", type=Path, default=synth.DEFAULT_SHARED, help="path of shared/data")
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality")
    ap.add_argument("--check", type=Path, default=None, help="ONNX model: run it on simulated camera views")
    ap.add_argument("--no-paint", action="store_true", help="only --check / --calibrate the existing world")
    ap.add_argument("--seed", type=int, default=SEED, help="paint a calibration world (other than the demo's)")
    ap.add_argument("--calibrate", type=Path, default=None,
                    help="ONNX model: sweep the whole world, print the false-alarm and planted-hazard scores")
    a = ap.parse_args()
    if not a.no_paint:
        if a.seed != SEED and a.out == ap.get_default("out"):
            sys.exit("error: a calibration world (--seed) needs its own --out; data/demo-world is the demo's")
        world = paint(a.out, a.shared, a.quality, a.seed)
        size = (a.out / "world.jpg").stat().st_size
        print(f"wrote {a.out}/world.jpg ({world['width_px']}x{world['height_px']} px, {size / 1e6:.2f} MB), "
              f"world.jgw, world.json ({len(world['hazards'])} hazards, {len(world['leaks'])} leaks)")
    if a.check:
        check(a.out, a.check)
    if a.calibrate:
        calibrate(a.out, a.calibrate)


if __name__ == "__main__":
    main()
