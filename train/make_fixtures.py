"""Pick small sample images for the inference crate's tests, with the boxes the shipped model must find.

Writes into inference/tests/fixtures/images/:
  real_*.jpg      real fire/smoke photos from the video-free test list (never trained on)
  synth_*.jpg     synthetic aerial scenes from the synthetic *test* split (backgrounds never trained on)
  background.jpg  a plain aerial background from a test-split background image (no hazard)
  expected.json   per image: size, ground-truth boxes (class id, name, x1 y1 x2 y2 in image pixels), and the
                  score threshold at which the shipped model finds every box (IoU >= 0.5) with the right class

The expected boxes are the data set's ground truth, not model outputs. Images are chosen among those where the
shipped model (run here with onnxruntime, letterbox 114, class-wise NMS 0.5) finds every ground-truth box at the
model's chosen threshold, so the Rust tests check that our pipeline reproduces what the model can do.

  python make_fixtures.py --model ../models/patrol-hazard.onnx
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.ops import batched_nms

import synth
from train import letterbox, read_yolo, REAL_MAP

HERE = Path(__file__).resolve().parent
NAMES = synth.CLASS_NAMES


def run_model(sess, img: Image.Image, S: int, thr: float) -> np.ndarray:
    """Detections [K,6] x1 y1 x2 y2 score class, in original image pixels."""
    arr, s, (px, py) = letterbox(img, S)
    x = (arr.astype(np.float32) / 255).transpose(2, 0, 1)[None]
    o = sess.run(None, {"images": x})[0][0].T  # [N, 9]
    boxes = np.stack([o[:, 0] - o[:, 2] / 2, o[:, 1] - o[:, 3] / 2, o[:, 0] + o[:, 2] / 2, o[:, 1] + o[:, 3] / 2], 1)
    loc, cls = np.nonzero(o[:, 4:] >= thr)
    if len(loc) == 0:
        return np.zeros((0, 6), np.float32)
    sc = o[loc, 4 + cls]
    b = torch.from_numpy(boxes[loc])
    keep = batched_nms(b, torch.from_numpy(sc), torch.from_numpy(cls), 0.5).numpy()[:100]
    out = np.concatenate([boxes[loc][keep], sc[keep, None], cls[keep, None].astype(np.float32)], 1)
    out[:, [0, 2]] = (out[:, [0, 2]] - px) / s
    out[:, [1, 3]] = (out[:, [1, 3]] - py) / s
    return out.astype(np.float32)


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def all_found(gt: np.ndarray, dets: np.ndarray) -> bool:
    return all(any(int(d[5]) == int(g[0]) and iou(g[1:], d[:4]) >= 0.5 for d in dets) for g in gt)


def extra(gt: np.ndarray, dets: np.ndarray) -> int:
    return sum(1 for d in dets if not any(int(d[5]) == int(g[0]) and iou(g[1:], d[:4]) >= 0.5 for g in gt))


def entry(name: str, img: Image.Image, gt: np.ndarray, thr: float, source: str) -> dict:
    return {"file": name, "width": img.width, "height": img.height, "source": source, "min_score": thr,
            "expected": [{"class_id": int(g[0]), "name": NAMES[int(g[0])],
                          "box_xyxy": [round(float(v), 1) for v in g[1:]]} for g in gt]}


def save_small(img: Image.Image, path: Path) -> None:
    for q in (90, 85, 80, 70):
        img.save(path, "JPEG", quality=q)
        if path.stat().st_size < 300_000:
            return


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=HERE.parent / "models" / "patrol-hazard.onnx")
    ap.add_argument("--shared", type=Path, default=synth.DEFAULT_SHARED)
    ap.add_argument("--synth-test", type=Path, default=None, help="synthetic test folder (default: the newest)")
    ap.add_argument("--out", type=Path, default=HERE.parent / "inference" / "tests" / "fixtures" / "images")
    a = ap.parse_args()
    metrics = json.loads(a.model.with_suffix(".metrics.json").read_text())
    thr = float(metrics["threshold"])
    sess = ort.InferenceSession(str(a.model), providers=["CPUExecutionProvider"])
    S = sess.get_inputs()[0].shape[2]
    a.out.mkdir(parents=True, exist_ok=True)
    items = []

    # real photos (video-free test list)
    root = a.shared / "fire-smoke-cctv" / "test"
    vf = [s for s in (a.shared / "fire-smoke-cctv" / "test_video_free.txt").read_text().split() if s]
    cands = []
    for stem in vf:
        img = Image.open(root / "images" / f"{stem}.jpg").convert("RGB")
        gt, _ = read_yolo(root / "labels" / f"{stem}.txt", img.width, img.height, REAL_MAP)
        if len(gt) == 0:
            continue
        d = run_model(sess, img, S, thr)
        if all_found(gt, d):
            cands.append((extra(gt, d), -len(set(gt[:, 0].astype(int))), stem, img, gt))
    cands.sort(key=lambda c: (c[0], c[1]))
    chosen, classes = [], set()
    for c in cands:  # prefer covering both fire and smoke
        cl = set(c[4][:, 0].astype(int))
        if len(chosen) < 3 and (not cl <= classes or len(chosen) >= 2):
            chosen.append(c)
            classes |= cl
    for c in cands:
        if len(chosen) < 3 and c not in chosen:
            chosen.append(c)
    for i, (_, _, stem, img, gt) in enumerate(chosen):
        name = f"real_{i + 1}_{'_'.join(sorted(NAMES[int(k)] for k in set(gt[:, 0])))}.jpg"
        save_small(img, a.out / name)
        items.append(entry(name, img, gt, thr, f"fire-smoke-cctv test/{stem}.jpg (video-free list)"))
    print(f"real: {len(cands)} of {len(vf)} video-free test images fully detected at {thr}; kept {len(chosen)}")

    # synthetic aerial scenes (test split)
    sdirs = sorted(HERE.glob("data/synth_test_*"), key=lambda p: p.stat().st_mtime)
    sdir = a.synth_test or sdirs[-1]
    cands = []
    for p in sorted((sdir / "images").glob("*.jpg")):
        img = Image.open(p).convert("RGB")
        gt, _ = read_yolo(sdir / "labels" / f"{p.stem}.txt", img.width, img.height, None)
        if len(gt) < 2:
            continue
        d = run_model(sess, img, S, thr)
        if all_found(gt, d) and extra(gt, d) == 0:
            cands.append((p, img, gt))
    chosen, classes = [], set()
    for p, img, gt in sorted(cands, key=lambda c: -len(set(c[2][:, 0].astype(int)))):
        cl = set(gt[:, 0].astype(int))
        if len(chosen) < 3 and not cl <= classes:
            chosen.append((p, img, gt))
            classes |= cl
    for i, (p, img, gt) in enumerate(chosen):
        name = f"synth_{i + 1}_{'_'.join(sorted(NAMES[int(k)] for k in set(gt[:, 0])))}.jpg"
        shutil.copyfile(p, a.out / name)
        items.append(entry(name, img, gt, thr, f"synthetic test split {sdir.name}/{p.name}"))
    print(f"synthetic: {len(cands)} multi-hazard test scenes fully detected with no false positive; kept "
          f"{len(chosen)} covering {sorted(NAMES[c] for c in classes)}")

    # plain background from a test-split background image
    bgs = [b for b in synth.list_backgrounds(a.shared) if b.split == "test" and "openaerialmap" in b.path]
    rng = random.Random(11)
    for _ in range(40):
        b = rng.choice(bgs)
        chip = Image.fromarray(synth.background_chip(rng, b, 0.07, S).astype(np.uint8))
        d = run_model(sess, chip, S, thr * 0.5)
        if len(d) == 0:
            save_small(chip, a.out / "background.jpg")
            e = entry("background.jpg", chip, np.zeros((0, 5)), thr, f"{Path(b.path).name} (test split), 0.07 m/px")
            e["max_score_any_class_below"] = round(thr * 0.5, 3)
            items.append(e)
            print(f"background: {Path(b.path).name}, no detection >= {thr * 0.5:.3f}")
            break
    (a.out / "expected.json").write_text(json.dumps(
        {"model": a.model.name, "model_version": metrics["version"], "input_size": S, "iou_match": 0.5,
         "images": items}, indent=2) + "\n")
    for it in items:
        print(f"  {it['file']}: {len(it['expected'])} boxes, {(a.out / it['file']).stat().st_size / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
