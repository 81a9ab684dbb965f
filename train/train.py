"""Train, evaluate and export the patrol hazard detector (EfficientNet-Lite0 + anchor-free FCOS-style head).

Steps (all in one run):
  1. data: synthetic aerial scenes (synth.py; train/val/test splits by seed and by background image) generated once
     into train/data/, and the real fire/smoke set (train split for training; `default` images are negatives),
     letterboxed and cached as .npz;
  2. training on CPU or a CUDA GPU (--device) with a wall-clock budget (cosine LR over the budget, EMA weights, a
     checkpoint every epoch); when the budget runs out training stops gracefully and the steps below still run;
  3. threshold choice on the validation data (synthetic val + real `valid`, which shares videos with train and is
     only used for this), then mAP@0.5, per-class AP and precision/recall at that threshold on
     (a) the real video-free test images and (b) the synthetic test split, reported separately;
  4. ONNX export (Ultralytics YOLOv8 layout, opset 17, dynamic batch, class names in metadata), checked against
     PyTorch with onnxruntime; metrics JSON written next to the model.

Example:
  python train.py --name main --budget-min 75
  python train.py --name smoke --smoke          # 3-minute end-to-end check on tiny data
  python train.py --name gpu --device cuda --budget-min 6 --synth-train 12000 --synth-workers 16 --loader-workers 14
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # do not spin: the 2 cores are shared with other jobs
import torch  # noqa: E402
from PIL import Image
from torch.nn import functional as F
from torchvision.ops import batched_nms, generalized_box_iou_loss, sigmoid_focal_loss

import synth
from model import CLASS_NAMES, NUM_CLASSES, STRIDES, Detector, DetectorExport, make_points

HERE = Path(__file__).resolve().parent
VERSION = "0.2.0"
PAD = 114


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ============================================================================================ data
def letterbox(img: Image.Image, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping aspect ratio into size x size, pad 114 (centred). Returns (array, scale, (padx, pady))."""
    w, h = img.size
    s = min(size / w, size / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    out = np.full((size, size, 3), PAD, np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    out[py:py + nh, px:px + nw] = np.asarray(img.convert("RGB").resize((nw, nh), Image.BILINEAR))
    return out, s, (px, py)


def read_yolo(path: Path, w: float, h: float, class_map: dict[int, int] | None) -> tuple[np.ndarray, bool]:
    """Boxes [K,5] (cls, x1, y1, x2, y2 in pixels of a w x h image); flag: image is a 'default' negative."""
    boxes, default = [], False
    if path.exists():
        for line in path.read_text().split("\n"):
            p = line.split()
            if len(p) != 5:
                continue
            c = int(p[0])
            if class_map is not None:
                if c not in class_map:
                    default = True
                    continue
                c = class_map[c]
            cx, cy, bw, bh = (float(v) for v in p[1:])
            boxes.append((c, (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
    return np.array(boxes, np.float32).reshape(-1, 5), default


REAL_MAP = {0: 0, 2: 1}  # Fire -> fire, smoke -> smoke; 1 'default' -> negative image


def load_set(images: list[Path], label_dir: Path, size: int, class_map: dict[int, int] | None, cache: Path):
    """Letterboxed uint8 images [N,S,S,3] and per-image boxes in letterboxed pixels; cached as .npz."""
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        return z["images"], list(z["boxes"]), list(z["names"])
    arr = np.zeros((len(images), size, size, 3), np.uint8)

    def one(i: int) -> np.ndarray:
        p = images[i]
        im = Image.open(p)
        w, h = im.size
        arr[i], s, (px, py) = letterbox(im, size)
        b, _ = read_yolo(label_dir / (p.stem + ".txt"), w, h, class_map)
        b[:, [1, 3]] = b[:, [1, 3]] * s + px
        b[:, [2, 4]] = b[:, [2, 4]] * s + py
        return b

    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:  # JPEG decoding releases the GIL
        boxes = list(pool.map(one, range(len(images))))
    names = [p.stem for p in images]
    cache.parent.mkdir(parents=True, exist_ok=True)
    obj = np.empty(len(boxes), dtype=object)
    obj[:] = boxes
    np.savez(cache, images=arr, boxes=obj, names=np.array(names))
    return arr, boxes, names


def real_split(shared: Path, split: str, size: int, data_dir: Path, only: list[str] | None = None, limit: int = 0):
    root = shared / "fire-smoke-cctv" / split
    imgs = sorted((root / "images").glob("*.jpg"))
    if only is not None:
        keep = set(only)
        imgs = [p for p in imgs if p.stem in keep]
        if len(imgs) != len(keep):
            raise SystemExit(f"error: {len(keep) - len(imgs)} listed test images are missing in {root}")
    if limit:
        imgs = imgs[:limit]
    tag = f"real_{split}_{size}_{'vf' if only is not None else 'all'}_{len(imgs)}"
    return load_set(imgs, root / "labels", size, REAL_MAP, data_dir / "cache" / f"{tag}.npz")


def synth_split(shared: Path, split: str, count: int, seed: int, size: int, data_dir: Path, workers: int,
                negatives: float = synth.NEGATIVE_SHARE):
    neg = "" if negatives == synth.NEGATIVE_SHARE else f"_neg{round(negatives * 100)}"
    out = data_dir / f"synth_{split}_s{seed}_n{count}_{size}{neg}"
    done = out / "DONE"
    if not done.exists():
        log(f"generating {count} synthetic {split} scenes (seed {seed}, {negatives:.0%} negatives) into {out}")
        synth.generate(out, split, count, seed, size, shared, workers, negatives=negatives)
        done.write_text("ok\n")
    imgs = sorted((out / "images").glob("*.jpg"))
    return load_set(imgs, out / "labels", size, None, data_dir / "cache" / f"{out.name}.npz")


# ============================================================================================ augmentation
def aug_geometric(img: np.ndarray, boxes: np.ndarray, rng: random.Random, rotate: bool):
    """Flips (and 90-degree rotations for nadir images). img HxWx3, boxes [K,5] pixel xyxy."""
    S = img.shape[0]
    b = boxes.copy()
    if rng.random() < 0.5:
        img = img[:, ::-1]
        b[:, [1, 3]] = S - b[:, [3, 1]]
    if rotate:
        if rng.random() < 0.5:
            img = img[::-1]
            b[:, [2, 4]] = S - b[:, [4, 2]]
        if rng.random() < 0.5:  # transpose
            img = img.transpose(1, 0, 2)
            b = b[:, [0, 2, 1, 4, 3]]
    return np.ascontiguousarray(img), b


def mosaic4(items: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """2x2 mosaic of four S x S images at half size: smaller objects from the ground-level real set."""
    S = items[0][0].shape[0]
    h = S // 2
    out = np.empty((S, S, 3), np.uint8)
    allb = []
    for k, (img, b) in enumerate(items):
        small = np.asarray(Image.fromarray(img).resize((h, h), Image.BILINEAR))
        ox, oy = (k % 2) * h, (k // 2) * h
        out[oy:oy + h, ox:ox + h] = small
        bb = b.copy()
        bb[:, 1:] = bb[:, 1:] * (h / S)
        bb[:, [1, 3]] += ox
        bb[:, [2, 4]] += oy
        allb.append(bb)
    return out, np.concatenate(allb, 0)


class TrainSet:
    def __init__(self, parts: list[tuple[np.ndarray, list, str]], seed: int):
        self.items = []  # (array ref, index, kind)
        self.parts = parts
        for pi, (arr, boxes, kind) in enumerate(parts):
            for i in range(len(arr)):
                self.items.append((pi, i))
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        pi, i = self.items[k]
        arr, boxes, kind = self.parts[pi]
        img, b = arr[i], boxes[i]
        if kind == "real" and self.rng.random() < 0.4:
            others = [self.rng.randrange(len(arr)) for _ in range(3)]
            img, b = mosaic4([(img, b)] + [(arr[j], boxes[j]) for j in others])
        img, b = aug_geometric(img, b, self.rng, rotate=(kind == "synth"))
        return img, b

    def to_train_size(self, k: int, img: np.ndarray, b: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Synthetic scenes: random size x size crop (true scale kept); real images: resized to size."""
        S = img.shape[0]
        if size == S:
            return img, b
        if self.parts[self.items[k][0]][2] == "real":
            f = size / S
            small = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
            bb = b.copy()
            bb[:, 1:] *= f
            return small, bb
        x0, y0 = self.rng.randint(0, S - size), self.rng.randint(0, S - size)
        crop = np.ascontiguousarray(img[y0:y0 + size, x0:x0 + size])
        bb = b.copy()
        bb[:, [1, 3]] = np.clip(bb[:, [1, 3]] - x0, 0, size)
        bb[:, [2, 4]] = np.clip(bb[:, [2, 4]] - y0, 0, size)
        area0 = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
        area1 = (bb[:, 3] - bb[:, 1]) * (bb[:, 4] - bb[:, 2])
        keep = (area1 >= 0.4 * np.maximum(area0, 1e-6)) & (bb[:, 3] - bb[:, 1] >= 2) & (bb[:, 4] - bb[:, 2] >= 2)
        return crop, bb[keep]



class TrainSamples(torch.utils.data.Dataset):
    """One augmented training crop and its FCOS targets per index (computed in the DataLoader's workers)."""

    def __init__(self, train: TrainSet, size: int, seed: int):
        self.train, self.size, self.seed = train, size, seed
        self.points = make_points(size)
        self.lo, self.hi = level_bounds(self.points)

    def __len__(self) -> int:
        return len(self.train)

    def __getitem__(self, k: int):
        img, b = self.train.get(k)
        img, b = self.train.to_train_size(k, img, b, self.size)
        cls_t, reg_t, ctr_t, pos = assign(self.points, self.lo, self.hi, torch.from_numpy(b))
        return torch.from_numpy(np.array(img)), cls_t, reg_t, ctr_t, pos


def seed_loader_worker(worker_id: int) -> None:
    """Each loader worker draws its own augmentations (a forked copy of one RNG would repeat them)."""
    info = torch.utils.data.get_worker_info()
    info.dataset.train.rng = random.Random(info.seed)


def photometric_jitter(x: torch.Tensor) -> torch.Tensor:
    """Per-image brightness / contrast / saturation jitter of a float batch in 0..1."""
    n = x.shape[0]
    gain = torch.empty(n, 1, 1, 1, device=x.device).uniform_(0.8, 1.2)
    bias = torch.empty(n, 1, 1, 1, device=x.device).uniform_(-0.06, 0.06)
    grey = x.mean(1, keepdim=True)
    sat = torch.empty(n, 1, 1, 1, device=x.device).uniform_(0.75, 1.25)
    return ((grey + (x - grey) * sat) * gain + bias).clamp_(0, 1)


MEAN = torch.tensor(DetectorExport.MEAN).view(1, 3, 1, 1)
STD = torch.tensor(DetectorExport.STD).view(1, 3, 1, 1)


def normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - MEAN.to(x.device)) / STD.to(x.device)


# ============================================================================================ loss (FCOS)
LEVEL_RANGES = [(0.0, 40.0), (40.0, 96.0), (96.0, 1e8)]  # max(l,t,r,b) handled by each stride


def level_bounds(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lo = torch.empty(len(points))
    hi = torch.empty(len(points))
    for s, (a, b) in zip(STRIDES, LEVEL_RANGES):
        m = points[:, 2] == s
        lo[m], hi[m] = a, b
    return lo, hi


def assign(points, lo, hi, gt: torch.Tensor, radius: float = 1.5):
    """FCOS targets for one image. gt [G,5]. Returns cls_t [N,C], reg_t [N,4], ctr_t [N], pos mask [N]."""
    N = len(points)
    cls_t = torch.zeros(N, NUM_CLASSES)
    reg_t = torch.zeros(N, 4)
    ctr_t = torch.zeros(N)
    if len(gt) == 0:
        return cls_t, reg_t, ctr_t, torch.zeros(N, dtype=torch.bool)
    px, py, ps = points[:, 0:1], points[:, 1:2], points[:, 2:3]
    x1, y1, x2, y2 = gt[:, 1], gt[:, 2], gt[:, 3], gt[:, 4]
    l, t, r, b = px - x1, py - y1, x2 - px, y2 - py  # [N,G]
    ltrb = torch.stack([l, t, r, b], -1)
    inside = ltrb.min(-1).values > 0
    gcx, gcy = (x1 + x2) / 2, (y1 + y2) / 2
    rad = ps * radius
    near_c = ((px - gcx).abs() < rad) & ((py - gcy).abs() < rad)
    mreg = ltrb.max(-1).values
    in_rng = (mreg >= lo[:, None]) & (mreg <= hi[:, None])
    cand = inside & near_c & in_rng
    # every box gets at least its nearest location on its level (tiny objects may contain no location centre)
    half = torch.maximum(x2 - x1, y2 - y1) / 2
    for g in range(len(gt)):
        if not cand[:, g].any():
            lvl = 0 if half[g] <= LEVEL_RANGES[0][1] else 1 if half[g] <= LEVEL_RANGES[1][1] else 2
            m = points[:, 2] == STRIDES[lvl]
            d = (points[:, 0] - gcx[g]) ** 2 + (points[:, 1] - gcy[g]) ** 2
            d[~m] = float("inf")
            cand[d.argmin(), g] = True
    area = ((x2 - x1) * (y2 - y1))[None, :].expand(N, -1).clone()
    area[~cand] = float("inf")
    amin, gi = area.min(1)
    pos = torch.isfinite(amin)
    gi_pos = gi[pos]
    cls_t[pos, gt[gi_pos, 0].long()] = 1.0
    lt = ltrb[pos, gi_pos].clamp(min=0.05)
    reg_t[pos] = lt
    lr = lt[:, [0, 2]]
    tb = lt[:, [1, 3]]
    ctr_t[pos] = torch.sqrt((lr.min(1).values / lr.max(1).values) * (tb.min(1).values / tb.max(1).values))
    return cls_t, reg_t, ctr_t, pos


def detection_loss(out, cls_t, reg_t, ctr_t, pos, points):
    """Focal + centerness-weighted GIoU + centerness BCE over a batch of `assign` targets."""
    cls_p, reg_p, ctr_p = (o.float() for o in out)
    B = cls_p.shape[0]
    npos = max(1.0, float(pos.sum()))
    l_cls = sigmoid_focal_loss(cls_p, cls_t, alpha=0.25, gamma=2.0, reduction="sum") / npos
    if pos.any():
        pts = points[None, :, :2].expand(B, -1, -1)[pos]
        pr, tr = reg_p[pos], reg_t[pos]
        pbox = torch.cat([pts - pr[:, :2], pts + pr[:, 2:]], 1)
        tbox = torch.cat([pts - tr[:, :2], pts + tr[:, 2:]], 1)
        w = ctr_t[pos]
        l_box = (generalized_box_iou_loss(pbox, tbox, reduction="none") * w).sum() / w.sum().clamp(min=1e-6)
        l_ctr = F.binary_cross_entropy_with_logits(ctr_p[pos], ctr_t[pos], reduction="mean")
    else:
        l_box = reg_p.sum() * 0
        l_ctr = ctr_p.sum() * 0
    return l_cls + 2.0 * l_box + l_ctr, (float(l_cls.detach()), float(l_box.detach()), float(l_ctr.detach()))


# ============================================================================================ inference + metrics
@torch.no_grad()
def predict(model: Detector, images: np.ndarray, points: torch.Tensor, bs: int = 16, conf: float = 0.001,
            iou: float = 0.6, max_det: int = 100) -> list[np.ndarray]:
    """Detections per image: [K,6] = x1, y1, x2, y2, score, class (letterboxed pixels)."""
    model.eval()
    device = next(model.parameters()).device
    points = points.to(device)
    res = []
    for s in range(0, len(images), bs):
        x = torch.from_numpy(images[s:s + bs]).to(device).permute(0, 3, 1, 2).float().div_(255)
        cls, ltrb, ctr = (o.float() for o in model(normalize(x)))
        scores = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr)[..., None])  # [B,N,C]
        for i in range(x.shape[0]):
            d = ltrb[i]
            boxes = torch.stack([points[:, 0] - d[:, 0], points[:, 1] - d[:, 1],
                                 points[:, 0] + d[:, 2], points[:, 1] + d[:, 3]], 1)
            res.append(select_detections(scores[i], boxes, conf, iou, max_det))
    return res


def select_detections(scores: torch.Tensor, boxes: torch.Tensor, conf: float, iou: float,
                      max_det: int) -> np.ndarray:
    """One image's detections from per-location class scores [N,C] and boxes [N,4] (x1, y1, x2, y2): the (up to)
    1000 best location-class scores above `conf`, class-wise NMS at `iou`, at most `max_det`; [K,6] = x1, y1, x2,
    y2, score, class."""
    sc = scores.flatten()
    k = min(1000, int((sc > conf).sum()))
    if k == 0:
        return np.zeros((0, 6), np.float32)
    top, idx = sc.topk(k)
    loc, c = idx // NUM_CLASSES, idx % NUM_CLASSES
    keep = batched_nms(boxes[loc], top, c, iou)[:max_det]
    return torch.cat([boxes[loc][keep], top[keep, None], c[keep, None].float()], 1).cpu().numpy()


def iou_one(b: np.ndarray, bs: np.ndarray) -> np.ndarray:
    ix1 = np.maximum(b[0], bs[:, 0])
    iy1 = np.maximum(b[1], bs[:, 1])
    ix2 = np.minimum(b[2], bs[:, 2])
    iy2 = np.minimum(b[3], bs[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    ua = (b[2] - b[0]) * (b[3] - b[1]) + (bs[:, 2] - bs[:, 0]) * (bs[:, 3] - bs[:, 1]) - inter
    return inter / np.maximum(ua, 1e-9)


def match(dets: list[np.ndarray], gts: list[np.ndarray], cls: int, iou_thr: float = 0.5):
    """Per-class greedy matching. Returns (scores, is_tp, n_gt)."""
    scores, tps, ngt = [], [], 0
    for d, g in zip(dets, gts):
        gb = g[g[:, 0] == cls][:, 1:]
        ngt += len(gb)
        dd = d[d[:, 5] == cls]
        dd = dd[np.argsort(-dd[:, 4])]
        used = np.zeros(len(gb), bool)
        for row in dd:
            tp = False
            if len(gb):
                ious = iou_one(row[:4], gb)
                ious[used] = -1
                j = int(ious.argmax())
                if ious[j] >= iou_thr:
                    used[j] = True
                    tp = True
            scores.append(row[4])
            tps.append(tp)
    return np.array(scores, np.float32), np.array(tps, bool), ngt


def average_precision(scores: np.ndarray, tps: np.ndarray, ngt: int) -> float:
    """All-point interpolated AP (VOC 2010+ / area under the monotone PR curve)."""
    if ngt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    o = np.argsort(-scores, kind="stable")
    tp = np.cumsum(tps[o])
    fp = np.cumsum(~tps[o])
    rec = tp / ngt
    prec = tp / np.maximum(tp + fp, 1e-9)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[1.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def pr_at(scores, tps, ngt, thr):
    m = scores >= thr
    tp = int(tps[m].sum())
    fp = int(m.sum()) - tp
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / ngt if ngt else float("nan")
    return p, r, tp, fp, ngt


def evaluate(dets, gts, classes: list[int], thr: float, per_class_thr: dict[int, float] | None = None) -> dict:
    out = {"images": len(gts), "per_class": {}}
    aps = []
    tot = [0, 0, 0]
    neg_imgs = [i for i, g in enumerate(gts) if len(g) == 0]
    for c in classes:
        s, t, n = match(dets, gts, c)
        ap = average_precision(s, t, n)
        p, r, tp, fp, ngt = pr_at(s, t, n, thr)
        entry = {"ap50": round(ap, 4), "gt": n, "precision": round(p, 4), "recall": round(r, 4), "tp": tp, "fp": fp}
        if per_class_thr is not None:
            pc, rc, *_ = pr_at(s, t, n, per_class_thr[c])
            entry.update({"class_threshold": per_class_thr[c], "precision_at_class_thr": round(pc, 4),
                          "recall_at_class_thr": round(rc, 4)})
        out["per_class"][CLASS_NAMES[c]] = entry
        if n:
            aps.append(ap)
        tot[0] += tp
        tot[1] += fp
        tot[2] += n
    out["map50"] = round(float(np.mean(aps)), 4) if aps else float("nan")
    out["threshold"] = thr
    out["precision"] = round(tot[0] / (tot[0] + tot[1]), 4) if tot[0] + tot[1] else float("nan")
    out["recall"] = round(tot[0] / tot[2], 4) if tot[2] else float("nan")
    out["negative_images"] = len(neg_imgs)
    out["negative_images_with_detection"] = int(sum(
        1 for i in neg_imgs if (dets[i][:, 4] >= thr).any() if len(dets[i])))
    return out


def choose_thresholds(dets, gts, classes: list[int]) -> tuple[float, dict[int, float]]:
    """Global threshold maximising micro-F1, and per-class best-F1 thresholds, on validation data."""
    grid = np.round(np.arange(0.05, 0.951, 0.025), 3)
    per = {c: match(dets, gts, c) for c in classes}
    best, best_f = 0.3, -1.0
    for thr in grid:
        tp = fp = n = 0
        for s, t, ng in per.values():
            m = s >= thr
            tp += int(t[m].sum())
            fp += int(m.sum()) - int(t[m].sum())
            n += ng
        f = 2 * tp / max(1, 2 * tp + fp + (n - tp))
        if f > best_f:
            best, best_f = float(thr), f
    pcs = {}
    for c, (s, t, ng) in per.items():
        bf, bt = -1.0, best
        for thr in grid:
            m = s >= thr
            tp = int(t[m].sum())
            f = 2 * tp / max(1, int(m.sum()) + ng) if ng else 0
            if f > bf:
                bf, bt = f, float(thr)
        pcs[c] = bt
    return best, pcs


def eval_sets(shared: Path, size: int, data_dir: Path, workers: int, synth_val: int, synth_test: int,
              limit: int = 0) -> dict:
    """The validation sets (synthetic val + real `valid`, used only to choose the thresholds) and the test sets
    (real video-free test, synthetic test)."""
    vf = [s.strip() for s in (shared / "fire-smoke-cctv" / "test_video_free.txt").read_text().split() if s.strip()]
    return {"synth_val": synth_split(shared, "val", synth_val, 2_000_000, size, data_dir, workers),
            "real_valid": real_split(shared, "valid", size, data_dir, limit=limit),
            "synth_test": synth_split(shared, "test", synth_test, 3_000_000, size, data_dir, workers),
            "real_test_video_free": real_split(shared, "test", size, data_dir, only=vf)}


def threshold_and_test_metrics(net: Detector, sets: dict, points: torch.Tensor) -> dict:
    """Global (max micro-F1) and per-class (best F1) thresholds chosen on validation, then mAP@0.5 and per-class
    precision/recall on the real video-free test and the synthetic test; logs them. Returns the metrics.json fields
    threshold, per_class_threshold, real_test_video_free, synthetic_test, torch_ms_per_image_eval_batch16."""
    val_dets = predict(net, sets["synth_val"][0], points) + predict(net, sets["real_valid"][0], points)
    val_gts = list(sets["synth_val"][1]) + list(sets["real_valid"][1])
    thr, pcs = choose_thresholds(val_dets, val_gts, list(range(NUM_CLASSES)))
    log(f"threshold chosen on validation (max micro-F1): {thr}; per-class best-F1: "
        + ", ".join(f"{CLASS_NAMES[c]} {t}" for c, t in pcs.items()))
    real_te, syn_te = sets["real_test_video_free"], sets["synth_test"]
    t_eval = time.time()
    real_dets = predict(net, real_te[0], points)
    syn_dets = predict(net, syn_te[0], points)
    ms_img = (time.time() - t_eval) / (len(real_te[0]) + len(syn_te[0])) * 1000
    res_real = evaluate(real_dets, real_te[1], [0, 1], thr, pcs)
    res_syn = evaluate(syn_dets, syn_te[1], list(range(NUM_CLASSES)), thr, pcs)
    for title, r in (("REAL video-free test (fire-smoke-cctv)", res_real), ("SYNTHETIC aerial test", res_syn)):
        log(f"== {title}: {r['images']} images, mAP@0.5 {r['map50']}, at threshold {thr}: precision "
            f"{r['precision']} recall {r['recall']}; negatives with a detection {r['negative_images_with_detection']}"
            f"/{r['negative_images']}")
        for cname, e in r["per_class"].items():
            log(f"   {cname:14s} AP50 {e['ap50']:.4f}  P {e['precision']:.4f}  R {e['recall']:.4f}  "
                f"(gt {e['gt']}, tp {e['tp']}, fp {e['fp']})")
    return {"threshold": thr, "per_class_threshold": {CLASS_NAMES[c]: t for c, t in pcs.items()},
            "real_test_video_free": res_real, "synthetic_test": res_syn,
            "torch_ms_per_image_eval_batch16": round(ms_img, 1)}


def optimizer_step(loss: torch.Tensor, opt: torch.optim.Optimizer, params: list, ema: "EMA",
                   model: torch.nn.Module) -> None:
    """One optimiser step on `loss` (gradients clipped to norm 10), then the EMA update."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 10.0)
    opt.step()
    ema.update(model)


# ============================================================================================ EMA
class EMA:
    def __init__(self, model: torch.nn.Module, decay: float = 0.995, tau: float = 200.0):
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        msd = model.state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


# ============================================================================================ export
def set_static_output_dims(m, size: int) -> None:
    """Declare output0 as [batch, 4+nc, N] with fixed 4+nc and N, so readers can tell the layout from the model."""
    n = sum(math.ceil(size / s) ** 2 for s in STRIDES)
    dims = m.graph.output[0].type.tensor_type.shape.dim
    dims[1].dim_value = 4 + NUM_CLASSES
    dims[2].dim_value = n


def export_onnx(model: Detector, path: Path, size: int, metrics_summary: str, sample: np.ndarray,
                version: str = VERSION) -> dict:
    import onnx
    import onnxruntime as ort

    wrapper = DetectorExport(copy.deepcopy(model).cpu().eval()).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, size, size)
    torch.onnx.export(wrapper, (dummy,), str(path), dynamo=False, opset_version=17, input_names=["images"],
                      output_names=["output0"], dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}},
                      do_constant_folding=True)
    m = onnx.load(str(path))
    set_static_output_dims(m, size)
    names = "{" + ", ".join(f"{i}: '{n}'" for i, n in enumerate(CLASS_NAMES)) + "}"
    props = {
        "names": names,
        "imgsz": f"[{size}, {size}]",
        "version": version,
        "description": "patrol hazard detector: EfficientNet-Lite0 + anchor-free head; output0 [B, 4+5, N] = "
                       "cx, cy, w, h (input pixels), 5 class scores (no objectness). " + metrics_summary,
        "license": "MIT OR Apache-2.0 (weights); training data CC BY 4.0 (fire-wrpgm dataset v8, Roboflow user "
                   "custom-thxhn; OpenAerialMap contributors) and public domain (USGS); see MODEL_CARD.md",
        "author": "drone-patrol project",
        "stride": str(max(STRIDES)),
        "task": "detect",
        "batch": "dynamic",
    }
    del m.metadata_props[:]
    for k, v in props.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    m.producer_name = "drone-patrol train.py"
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    # check: onnxruntime reproduces PyTorch on real inputs, batch of 3
    x = torch.from_numpy(sample[:3]).permute(0, 3, 1, 2).float().div(255)
    with torch.no_grad():
        ref = wrapper(x).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run(["output0"], {"images": x.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    score_diff = float(np.abs(got[:, 4:] - ref[:, 4:]).max())
    t0 = time.time()
    for _ in range(5):
        sess.run(["output0"], {"images": x[:1].numpy()})
    ms = (time.time() - t0) / 5 * 1000
    info = {"path": str(path), "bytes": path.stat().st_size, "output_shape": list(got.shape),
            "max_abs_diff_vs_torch": diff, "max_abs_diff_scores": score_diff,
            "ort_ms_per_image_b1_2threads": round(ms, 1)}
    if not (diff < 1e-2 and score_diff < 1e-4):
        raise SystemExit(f"error: ONNX output differs from PyTorch: {info}")
    return info


# ============================================================================================ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="main", help="run name: logs/checkpoints in runs/<name>/")
    ap.add_argument("--shared", type=Path, default=synth.DEFAULT_SHARED, help="path of shared/data")
    ap.add_argument("--data", type=Path, default=HERE / "data", help="generated data + caches (gitignored)")
    ap.add_argument("--size", type=int, default=320, help="network input size S (multiple of 32)")
    ap.add_argument("--train-size", type=int, default=256,
                    help="training crop size (fully convolutional: trains on crops, evaluates/exports at --size)")
    ap.add_argument("--synth-train", type=int, default=2400)
    ap.add_argument("--synth-val", type=int, default=150)
    ap.add_argument("--synth-test", type=int, default=250)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--epochs", type=int, default=100, help="upper bound; the budget usually stops first")
    ap.add_argument("--budget-min", type=float, default=70.0, help="wall-clock training budget in minutes")
    ap.add_argument("--stop-at", default="", help="UTC clock time HH:MM at which training stops at the latest "
                    "(evaluation and export still run afterwards)")
    ap.add_argument("--threads", type=int, default=2,
                    help="max torch threads; training switches between 1 and this, whichever is faster right now")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="torch device to train on (default: cuda when a GPU is visible, else cpu)")
    ap.add_argument("--synth-workers", type=int, default=2, help="processes generating synthetic scenes")
    ap.add_argument("--synth-negatives", type=float, default=synth.NEGATIVE_SHARE,
                    help="share of synthetic training scenes without any hazard")
    ap.add_argument("--loader-workers", type=int, default=0,
                    help="DataLoader processes for augmentation + targets (0: in the training process)")
    ap.add_argument("--train-all", action="store_true",
                    help="also train the stem and early backbone blocks (frozen by default to save CPU)")
    ap.add_argument("--smoke", action="store_true", help="tiny data, short budget: end-to-end check")
    ap.add_argument("--resume", action="store_true", help="continue from runs/<name>/last.pt")
    ap.add_argument("--model-out", type=Path, default=HERE.parent / "models" / "patrol-hazard.onnx")
    a = ap.parse_args()

    device = torch.device(a.device)
    on_cpu = device.type == "cpu"
    if on_cpu:
        torch.set_num_threads(a.threads)  # training may drop to 1 while that is faster (see --threads)
    else:
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    if a.size % 32:
        sys.exit("error: --size must be a multiple of 32")
    if not (a.shared / "fire-smoke-cctv").is_dir():
        sys.exit(f"error: {a.shared}/fire-smoke-cctv not found; pass --shared <path to shared/data>")
    run = HERE / "runs" / a.name
    run.mkdir(parents=True, exist_ok=True)
    if a.smoke:
        a.synth_train, a.synth_val, a.synth_test = 64, 24, 24
    if a.smoke and a.model_out == ap.get_default("model_out"):
        a.model_out = run / "patrol-hazard.onnx"
    S = a.size
    lim = 48 if a.smoke else 0
    t_start = time.time()

    # ---- data
    workers = a.synth_workers
    syn_tr = synth_split(a.shared, "train", a.synth_train, 1_000_000, S, a.data, workers, a.synth_negatives)
    real_tr = real_split(a.shared, "train", S, a.data, limit=lim)
    ev = eval_sets(a.shared, S, a.data, workers, a.synth_val, a.synth_test, limit=lim)
    log(f"data: synth train {len(syn_tr[0])} val {len(ev['synth_val'][0])} test {len(ev['synth_test'][0])}; real "
        f"train {len(real_tr[0])} valid {len(ev['real_valid'][0])} test(video-free) "
        f"{len(ev['real_test_video_free'][0])}; prep {time.time() - t_start:.0f}s")
    train = TrainSet([(syn_tr[0], syn_tr[1], "synth"), (real_tr[0], real_tr[1], "real")], a.seed)

    # ---- model
    model = Detector(S, pretrained=True)
    if not a.train_all:
        model.backbone.freeze_early()
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                            lr=a.lr)
    ema = EMA(model)
    points = make_points(S)
    TS = a.train_size
    tpoints = make_points(TS).to(device)
    samples = TrainSamples(train, TS, a.seed)
    loader = torch.utils.data.DataLoader(
        samples, batch_size=a.batch, shuffle=True, drop_last=True, num_workers=a.loader_workers,
        worker_init_fn=seed_loader_worker if a.loader_workers else None, persistent_workers=a.loader_workers > 0,
        pin_memory=not on_cpu, generator=torch.Generator().manual_seed(a.seed))
    budget = (2.0 if a.smoke else a.budget_min) * 60.0
    if a.stop_at:
        hh, mm = (int(v) for v in a.stop_at.split(":"))
        now = time.gmtime()
        left = (hh * 3600 + mm * 60) - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)
        if left <= 0:
            sys.exit(f"error: --stop-at {a.stop_at} UTC is already past")
        budget = min(budget, left)
    epoch0, elapsed0, it = 0, 0.0, 0
    ck = run / "last.pt"
    if a.resume and ck.exists():
        st = torch.load(ck, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        ema.ema.load_state_dict(st["ema"])
        ema.updates = st["ema_updates"]
        opt.load_state_dict(st["opt"])
        epoch0, elapsed0, it = st["epoch"], st["elapsed"], st["iter"]
        log(f"resumed from epoch {epoch0}, {elapsed0 / 60:.1f} min trained")

    warm = 100
    # adaptive threads: on an oversubscribed machine 1 thread can beat 2; probe both now and then
    thread_opts = sorted({1, a.threads}) if on_cpu else [a.threads]
    cur_threads = a.threads
    times: dict[int, list[float]] = {n: [] for n in thread_opts}
    probe_left = 0
    if a.resume:
        budget += elapsed0  # the budget counts only the time still left in this session
    t0 = time.time() - elapsed0
    epoch = epoch0
    stop = False
    log(f"training on {device}: budget {budget / 60:.1f} min, batch {a.batch}, {len(train)} images/epoch, "
        f"crops {TS}, input {S}, loader workers {a.loader_workers}")
    while epoch < a.epochs and not stop:
        model.train()
        sums = np.zeros(4)
        nb = 0
        te = time.time()
        for img, cls_t, reg_t, ctr_t, pos in loader:
            el = time.time() - t0
            if el > budget:
                stop = True
                break
            frac = el / budget
            lr = a.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
            if it < warm:
                lr *= (it + 1) / warm
            for g in opt.param_groups:
                g["lr"] = lr
            ti = time.time()
            x = photometric_jitter(img.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255))
            cls_t, reg_t, ctr_t, pos = (t.to(device, non_blocking=True) for t in (cls_t, reg_t, ctr_t, pos))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not on_cpu):
                out = model(normalize(x))
            loss, parts = detection_loss(out, cls_t, reg_t, ctr_t, pos, tpoints)
            optimizer_step(loss, opt, params, ema, model)
            it += 1
            times[cur_threads].append(time.time() - ti)
            if len(thread_opts) > 1:
                if probe_left > 0:
                    probe_left -= 1
                    if probe_left == 0:  # probe over: keep the faster setting (median of recent iterations)
                        med = {n: float(np.median(v[-6:])) if v else 1e9 for n, v in times.items()}
                        best_n = min(med, key=med.get)
                        if best_n != cur_threads:
                            cur_threads = best_n
                            torch.set_num_threads(cur_threads)
                        log(f"threads: median s/iter {med} -> using {cur_threads}")
                elif it % 60 == 5:
                    cur_threads = [n for n in thread_opts if n != cur_threads][0]
                    torch.set_num_threads(cur_threads)
                    probe_left = 5
            nb += 1
            sums += np.array([float(loss.detach()), *parts])
            if it % (20 if on_cpu else 250) == 0:
                m = sums / max(nb, 1)
                log(f"ep {epoch} it {it} loss {m[0]:.3f} (cls {m[1]:.3f} box {m[2]:.3f} ctr {m[3]:.3f}) lr {lr:.2e} "
                    f"{nb * a.batch / (time.time() - te):.1f} img/s, {el / 60:.1f}/{budget / 60:.0f} min")
        epoch += 1
        torch.save({"model": model.state_dict(), "ema": ema.ema.state_dict(), "ema_updates": ema.updates,
                    "opt": opt.state_dict(), "epoch": epoch, "elapsed": time.time() - t0, "iter": it,
                    "size": S}, ck)
        m = sums / max(nb, 1)
        log(f"epoch {epoch} done ({nb} batches, loss {m[0]:.3f}); checkpoint {ck}")
    train_min = (time.time() - t0) / 60
    if on_cpu:
        torch.set_num_threads(a.threads)
    log(f"training finished: {epoch} epochs ({it} iterations) in {train_min:.1f} min")

    # ---- evaluation with the EMA weights
    net = ema.ema.eval()
    scores = threshold_and_test_metrics(net, ev, points)

    # ---- export
    summary = (f"mAP50 real video-free test {scores['real_test_video_free']['map50']}, synthetic aerial test "
               f"{scores['synthetic_test']['map50']}")
    onnx_info = export_onnx(net, a.model_out, S, summary, ev["real_test_video_free"][0])
    log(f"exported {onnx_info['path']} ({onnx_info['bytes'] / 1e6:.2f} MB), onnxruntime vs torch max abs diff "
        f"{onnx_info['max_abs_diff_vs_torch']:.2e} (scores {onnx_info['max_abs_diff_scores']:.2e}), "
        f"{onnx_info['ort_ms_per_image_b1_2threads']} ms/image")
    metrics = {
        "model": a.model_out.name, "version": VERSION, "input_size": [S, S], "train_crop": TS, "classes": CLASS_NAMES,
        "run": a.name, "smoke_run": a.smoke, "epochs": epoch, "iterations": it, "batch": a.batch,
        "train_minutes": round(train_min, 1), "train_images_per_epoch": len(train),
        "data": {"synth_train": len(syn_tr[0]), "real_train": len(real_tr[0]),
                 **{name: len(images) for name, (images, _, _) in ev.items()}},
        "machine": (f"{platform.machine()} CPU, torch threads {a.threads}, {os.cpu_count()} logical cores (shared)"
                    if on_cpu else f"{torch.cuda.get_device_name(device)}, {os.cpu_count()} logical cores, "
                    f"{a.loader_workers} loader workers, bf16 autocast"),
        "synth_negatives": a.synth_negatives, "train_all": a.train_all,
        **scores, "onnx": onnx_info,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    js = json.dumps(metrics, indent=2, default=float)
    (run / "metrics.json").write_text(js + "\n")
    if not a.smoke:
        a.model_out.with_suffix(".metrics.json").write_text(js + "\n")
    log(f"metrics: {run / 'metrics.json'}; total {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    main()
