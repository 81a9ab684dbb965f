"""Hard-negative fine-tuning of one label's row of the detector's last classification layer (CPU, minutes).

The shipped detector takes some real rooftop objects of the aerial imagery for LPG cylinder groups (see
MODEL_CARD.md). This script refits the `gas_cylinder` row of the three 1x1 `cls` convolutions (64 weights and a
bias per pyramid level; everything else stays frozen) by L2-regularised logistic regression, pulled towards the
old weights, on the features the frozen network computes for:

- simulated camera views swept over *training worlds*: painted by `paint_world.py --seed N` with seeds that are
  neither the demo world's nor the calibration worlds' (7, 8) that thresholds are chosen on. Planted cylinder
  groups are positives; every location away from planted gas hazards is a negative: the hard negatives are the
  real objects the model fires on;
- fresh synthetic scenes from `synth.py` (train split, seeds from 5,000,000): the cylinders the model learnt from
  stay positives, their backgrounds negatives.

It writes a copy of the ONNX model with the new rows and evaluates old and new on data neither saw: the held-out
calibration worlds (per label, the highest score away from planted hazards and the lowest best score on a planted
one; `paint_world.py --calibrate` prints the same for one model) and held-out synthetic test scenes (test split,
seeds from 3,000,000, the model card's test set: gas-cylinder recall and false detections at a threshold).
numpy, pillow, onnx and onnxruntime only; no torch.

  python paint_world.py --seed 21 --out data/world-21     # and 22, 23, 24; 7 and 8 for the evaluation
  python finetune_head.py --train-worlds data/world-2{1,2,3,4} --eval-worlds data/calib-7 data/calib-8 \\
      --l2 1e-3 --steps 3000 --pos-weight 0.5 --cache data/finetune-samples.npz --out data/patrol-hazard-ft.onnx

It also writes `<out>.finetune.json` (the settings and every figure it prints). Ship the result only after the
station's own check: `patrol demo` over the calibration worlds, `calibrate_alerts.py` for the thresholds, then the
demo world (MODEL_CARD.md records a run that was not shipped, and why).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from PIL import Image

import synth
from paint_world import GSD_M

HERE = Path(__file__).resolve().parent
SIZE = 320
STRIDES = (8, 16, 32)
LEVEL_RANGES = [(0.0, 40.0), (40.0, 96.0), (96.0, 1e8)]
FEATURES = [f"/det/heads.{k}/cls_tower/cls_tower.1/cls_tower.1.1/cls_tower.1.1.2/Clip_output_0" for k in range(3)]
CENTERNESS = "/det/Concat_8_output_0"
WEIGHT = "det.heads.{}.cls.weight"
BIAS = "det.heads.{}.cls.bias"
NEAR_M = 6.0


def points() -> tuple[np.ndarray, np.ndarray]:
    """Location centres [N, 2] in input pixels and their level [N], in the network's order."""
    pts, lvl = [], []
    for k, s in enumerate(STRIDES):
        n = math.ceil(SIZE / s)
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        pts.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], 1))
        lvl.append(np.full(n * n, k))
    return np.concatenate(pts).astype(np.float32), np.concatenate(lvl)


PTS, LVL = points()


def feature_session(model: Path) -> ort.InferenceSession:
    """The model with the cls features and the centerness logits as extra outputs."""
    m = onnx.load(str(model))
    for name in FEATURES + [CENTERNESS]:
        m.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """images [B, S, S, 3] 0..1 -> features [B, N, 64], scores output0 [B, 9, N]."""
    out = sess.run(None, {"images": images.transpose(0, 3, 1, 2).copy()})
    feats = np.concatenate([f.reshape(f.shape[0], f.shape[1], -1) for f in out[1:4]], 2).transpose(0, 2, 1)
    return feats, out[0]


def targets(boxes: list[tuple[float, float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """FCOS assignment of gas boxes (input px): positive locations, and locations to ignore (inside a box or near
    it, not positive)."""
    pos = np.zeros(len(PTS), bool)
    ignore = np.zeros(len(PTS), bool)
    stride = np.array(STRIDES, np.float32)[LVL]
    lo = np.array([r[0] for r in LEVEL_RANGES])[LVL]
    hi = np.array([r[1] for r in LEVEL_RANGES])[LVL]
    for x1, y1, x2, y2 in boxes:
        px, py = PTS[:, 0], PTS[:, 1]
        ltrb = np.stack([px - x1, py - y1, x2 - px, y2 - py], 1)
        inside = ltrb.min(1) > 0
        near = (np.abs(px - (x1 + x2) / 2) < 1.5 * stride) & (np.abs(py - (y1 + y2) / 2) < 1.5 * stride)
        mreg = ltrb.max(1)
        cand = inside & near & (mreg >= lo) & (mreg <= hi)
        if not cand.any():
            half = max(x2 - x1, y2 - y1) / 2
            k = 0 if half <= LEVEL_RANGES[0][1] else 1 if half <= LEVEL_RANGES[1][1] else 2
            d = (px - (x1 + x2) / 2) ** 2 + (py - (y1 + y2) / 2) ** 2
            d[LVL != k] = np.inf
            cand[int(d.argmin())] = True
        pos |= cand
        margin = 0.5 * max(x2 - x1, y2 - y1) + 16
        ignore |= (np.abs(px - (x1 + x2) / 2) < margin) & (np.abs(py - (y1 + y2) / 2) < margin)
    return pos, ignore & ~pos


class Samples:
    """Features, level and target of the kept locations: every positive, every negative the model scores at
    least `hard` for the label, and a random share of the other negatives."""

    def __init__(self, label: int, hard: float, easy_share: float, seed: int):
        self.label, self.hard, self.easy_share = label, hard, easy_share
        self.rng = np.random.default_rng(seed)
        self.x, self.lvl, self.y = [], [], []
        self.hard_negatives = 0

    def add(self, feats: np.ndarray, scores: np.ndarray, boxes: list) -> None:
        pos, ignore = targets(boxes)
        neg = ~pos & ~ignore
        hard = neg & (scores[4 + self.label] >= self.hard)
        keep = pos | hard | (neg & (self.rng.random(len(PTS)) < self.easy_share))
        self.hard_negatives += int(hard.sum())
        self.x.append(feats[keep])
        self.lvl.append(LVL[keep])
        self.y.append(pos[keep].astype(np.float32))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.concatenate(self.x), np.concatenate(self.lvl), np.concatenate(self.y)


def world_tiles(world_dir: Path, cam_gsd: float, overlap: float, jitter: int):
    """Simulated nadir camera tiles over a painted world: (tile 0..1 [S,S,3], planted boxes in tile px by label,
    tile origin and size in raster px)."""
    world = json.loads((world_dir / "world.json").read_text())
    img = Image.open(world_dir / world["raster"]).convert("RGB")
    src = SIZE * cam_gsd / GSD_M
    scale = SIZE / src
    step = src * (1 - overlap)
    w, h = world["width_px"], world["height_px"]
    y = jitter * step / 3
    while y + src <= h:
        x = jitter * step / 3
        while x + src <= w:
            tile = np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR, box=(x, y, x + src, y + src)), np.float32) / 255
            boxes: dict[str, list] = {}
            for z in world["hazards"]:
                x0, y0, x1, y1 = z["box_px"]
                b = ((x0 - x) * scale, (y0 - y) * scale, (x1 - x) * scale, (y1 - y) * scale)
                if b[2] > 0 and b[3] > 0 and b[0] < SIZE and b[1] < SIZE:
                    boxes.setdefault(z["label"], []).append(tuple(min(SIZE, max(0.0, v)) for v in b))
            yield tile, boxes, (x, y, src)
            x += step
        y += step


def fit(x: np.ndarray, lvl: np.ndarray, y: np.ndarray, w0: np.ndarray, b0: np.ndarray, l2: float,
        pos_weight: float, steps: int, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Per level: weighted logistic regression with an L2 pull towards (w0, b0), by Adam."""
    w, b = w0.copy(), b0.copy()
    for k in range(3):
        m = lvl == k
        if not (y[m] > 0).any():
            print(f"  level {k}: no positive sample, left as it was")
            continue
        xk, yk = x[m].astype(np.float64), y[m].astype(np.float64)
        sw = np.where(yk > 0, pos_weight, 1.0)
        sw /= sw.sum()
        theta = np.concatenate([w[k], [b[k]]]).astype(np.float64)
        theta0 = theta.copy()
        xa = np.concatenate([xk, np.ones((len(xk), 1))], 1)
        mom, vel = np.zeros_like(theta), np.zeros_like(theta)
        for t in range(1, steps + 1):
            p = 1 / (1 + np.exp(-(xa @ theta)))
            grad = xa.T @ (sw * (p - yk)) + 2 * l2 * (theta - theta0)
            mom = 0.9 * mom + 0.1 * grad
            vel = 0.999 * vel + 0.001 * grad**2
            theta -= lr * (mom / (1 - 0.9**t)) / (np.sqrt(vel / (1 - 0.999**t)) + 1e-8)
        w[k], b[k] = theta[:-1], theta[-1]
        p = 1 / (1 + np.exp(-(xa @ theta)))
        p0 = 1 / (1 + np.exp(-(xa @ theta0)))
        print(f"  level {k}: {int(yk.sum())} positive / {len(yk)} samples; mean p on positives {p0[yk > 0].mean():.3f}"
              f" -> {p[yk > 0].mean():.3f}, on negatives {p0[yk == 0].mean():.4f} -> {p[yk == 0].mean():.4f}")
    return w, b


def write_model(src: Path, dst: Path, label: int, w: np.ndarray, b: np.ndarray, version: str) -> str:
    m = onnx.load(str(src))
    inits = {i.name: i for i in m.graph.initializer}
    for k in range(3):
        wt = numpy_helper.to_array(inits[WEIGHT.format(k)]).copy()
        bt = numpy_helper.to_array(inits[BIAS.format(k)]).copy()
        wt[label, :, 0, 0] = w[k]
        bt[label] = b[k]
        inits[WEIGHT.format(k)].CopyFrom(numpy_helper.from_array(wt.astype(np.float32), WEIGHT.format(k)))
        inits[BIAS.format(k)].CopyFrom(numpy_helper.from_array(bt.astype(np.float32), BIAS.format(k)))
    meta = {p.key: p for p in m.metadata_props}
    if "version" in meta:
        meta["version"].value = version
    else:
        m.metadata_props.append(onnx.StringStringEntryProto(key="version", value=version))
    onnx.save(m, str(dst))
    return hashlib.sha256(dst.read_bytes()).hexdigest()


def sweep(sess: ort.InferenceSession, world_dir: Path) -> dict:
    """Per label: the highest score away from planted hazards and each planted hazard's best score."""
    names = synth.CLASS_NAMES
    world = json.loads((world_dir / "world.json").read_text())
    worst = {n: 0.0 for n in names}
    best = {z["id"]: 0.0 for z in world["hazards"]}
    planted = [((z["box_px"][0] + z["box_px"][2]) / 2, (z["box_px"][1] + z["box_px"][3]) / 2, z) for z in world["hazards"]]
    for tile, _, (x, y, src) in world_tiles(world_dir, 0.07, 0.2, 0):
        o = sess.run(None, {"images": tile.transpose(2, 0, 1)[None].copy()})[0][0]
        for i in np.nonzero(o[4:].max(0) >= 0.3)[0]:
            c = int(o[4:, i].argmax())
            score = float(o[4 + c, i])
            px, py = x + o[0, i] / SIZE * src, y + o[1, i] / SIZE * src
            hits = [z for zx, zy, z in planted if math.hypot(zx - px, zy - py) < NEAR_M / GSD_M + z["size_m"] / 2 / GSD_M]
            if any(z["label"] == names[c] for z in hits):
                for z in hits:
                    if z["label"] == names[c]:
                        best[z["id"]] = max(best[z["id"]], score)
            elif not hits:
                worst[names[c]] = max(worst[names[c]], score)
    lowest = {n: min((best[z["id"]] for z in world["hazards"] if z["label"] == n), default=float("nan")) for n in names}
    return {"false_max": worst, "planted_min": lowest}


def synthetic_check(sess: ort.InferenceSession, gen: synth.Generator, seeds: range, label: int, thr: float) -> dict:
    """Recall of `label` boxes (a detection of the label at >= thr with IoU >= 0.5) and false detections of the
    label at >= thr (class-wise NMS 0.6) over synthetic scenes."""
    found = total = false = 0
    for seed in seeds:
        img, labels = gen.scene(seed, SIZE)
        o = sess.run(None, {"images": (img.astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()})[0][0]
        keep = np.nonzero(o[4 + label] >= thr)[0]
        order = keep[np.argsort(-o[4 + label, keep])]
        dets = []
        for i in order:
            cx, cy, w, h = o[:4, i]
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            if all(iou(box, d) < 0.6 for d in dets):
                dets.append(box)
        gts = [b[1:] for b in labels if b[0] == label]
        total += len(gts)
        matched = set()
        for d in dets:
            j = max(range(len(gts)), key=lambda g: iou(d, gts[g]), default=None)
            if j is not None and iou(d, gts[j]) >= 0.5 and j not in matched:
                matched.add(j)
            else:
                false += 1
        found += len(matched)
    return {"recall": found / max(total, 1), "boxes": total, "false": false, "scenes": len(seeds)}


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def collect(a: argparse.Namespace, label: int, t0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Samples from the training worlds (two sweeps, the second shifted by a third of a step) and the synthetic
    scenes."""
    sess = feature_session(a.model)
    samples = Samples(label, a.hard, a.easy_share, a.seed)
    views = 0
    for world_dir in a.train_worlds:
        for jitter in (0, 1):
            batch, boxes_of = [], []
            for tile, boxes, _ in world_tiles(world_dir, 0.07, 0.2, jitter):
                batch.append(tile)
                boxes_of.append(boxes.get(a.label, []))
                if len(batch) == 16:
                    feats, out = run(sess, np.stack(batch))
                    for f, o, b in zip(feats, out, boxes_of):
                        samples.add(f, o, b)
                    views += len(batch)
                    batch, boxes_of = [], []
            if batch:
                feats, out = run(sess, np.stack(batch))
                for f, o, b in zip(feats, out, boxes_of):
                    samples.add(f, o, b)
                views += len(batch)
    print(f"{views} world views from {len(a.train_worlds)} training worlds ({time.time() - t0:.0f} s)")
    gen = synth.Generator(a.shared, "train")
    for start in range(0, a.synth_scenes, 16):
        scenes = [gen.scene(5_000_000 + a.seed * 100_000 + i, SIZE) for i in range(start, min(start + 16, a.synth_scenes))]
        feats, out = run(sess, np.stack([img.astype(np.float32) / 255 for img, _ in scenes]))
        for f, o, (_, labels) in zip(feats, out, scenes):
            samples.add(f, o, [b[1:] for b in labels if b[0] == label])
    x, lvl, y = samples.arrays()
    print(f"{a.synth_scenes} synthetic scenes; {len(y)} samples: {int(y.sum())} positive, "
          f"{samples.hard_negatives} hard negatives ({time.time() - t0:.0f} s)")
    return x, lvl, y, samples.hard_negatives



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=HERE.parent / "models" / "patrol-hazard.onnx")
    ap.add_argument("--out", type=Path, required=True, help="where to write the fine-tuned model")
    ap.add_argument("--version", default="0.3.0", help="the new model's `version` metadata")
    ap.add_argument("--label", default="gas_cylinder")
    ap.add_argument("--train-worlds", type=Path, nargs="+", required=True)
    ap.add_argument("--eval-worlds", type=Path, nargs="+", required=True)
    ap.add_argument("--shared", type=Path, default=synth.DEFAULT_SHARED)
    ap.add_argument("--synth-scenes", type=int, default=600)
    ap.add_argument("--synth-test", type=int, default=250)
    ap.add_argument("--hard", type=float, default=0.2, help="negatives scored at least this are all kept")
    ap.add_argument("--easy-share", type=float, default=0.01, help="share of the other negatives kept")
    ap.add_argument("--l2", type=float, default=1e-3, help="pull towards the old weights")
    ap.add_argument("--pos-weight", type=float, default=1.0,
                    help="weight of a positive sample relative to a negative (0: balance the totals)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--threshold", type=float, default=0.59, help="score threshold of the synthetic check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, help="keep the collected samples here (.npz) and reuse them")
    a = ap.parse_args()
    t0 = time.time()
    label = synth.CLASS_NAMES.index(a.label)
    if a.cache and a.cache.exists():
        cached = np.load(a.cache)
        x, lvl, y, hard_negatives = cached["x"], cached["lvl"], cached["y"], int(cached["hard_negatives"])
        print(f"{len(y)} samples from {a.cache}: {int(y.sum())} positive, {hard_negatives} hard negatives")
    else:
        x, lvl, y, hard_negatives = collect(a, label, t0)
        if a.cache:
            np.savez(a.cache, x=x, lvl=lvl, y=y, hard_negatives=hard_negatives)

    m = onnx.load(str(a.model))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    w0 = np.stack([inits[WEIGHT.format(k)][label, :, 0, 0] for k in range(3)])
    b0 = np.array([inits[BIAS.format(k)][label] for k in range(3)])
    pos_weight = a.pos_weight or float((y == 0).sum() / max(y.sum(), 1))
    w, b = fit(x, lvl, y, w0, b0, a.l2, pos_weight, a.steps, a.lr)
    sha = write_model(a.model, a.out, label, w, b, a.version)
    print(f"wrote {a.out} (sha256 {sha}) ({time.time() - t0:.0f} s)")

    report = {"label": a.label, "train_worlds": [str(p) for p in a.train_worlds], "samples": int(len(y)),
              "positives": int(y.sum()), "hard_negatives": hard_negatives, "l2": a.l2, "pos_weight": pos_weight,
              "steps": a.steps, "sha256": sha, "eval": {}}
    for name, path in (("old", a.model), ("new", a.out)):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        worlds = {str(d): sweep(s, d) for d in a.eval_worlds}
        synthetic = synthetic_check(s, synth.Generator(a.shared, "test"), range(3_000_000, 3_000_000 + a.synth_test),
                                    label, a.threshold)
        report["eval"][name] = {"worlds": worlds, "synthetic_test": synthetic}
        print(f"{name} model:")
        for d, r in worlds.items():
            cells = [f"{n} false {r['false_max'][n]:.2f} / planted {r['planted_min'][n]:.2f}" for n in synth.CLASS_NAMES]
            print(f"  {d}: " + " | ".join(cells))
        print(f"  synthetic test ({synthetic['scenes']} scenes, threshold {a.threshold}): {a.label} recall "
              f"{synthetic['recall']:.3f} of {synthetic['boxes']}, {synthetic['false']} false detections")
    a.out.with_suffix(".finetune.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
