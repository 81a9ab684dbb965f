"""Fine-tune the detector network (by default the backbone after stride 8, the neck and the heads) on hard negatives
from painted training worlds, starting from an exported ONNX model (CPU, a budget of minutes); evaluate old vs new.

The shipped model takes some real rooftop objects of the aerial imagery for LPG cylinder groups or smoke (see
MODEL_CARD.md); refitting one row of the last layer on frozen features (`finetune_head.py`) could not separate
them. This script retrains the network itself with `train.py`'s loss (FCOS targets, focal + GIoU + centerness),
augmentation and EMA weights:

1. the torch `Detector` is rebuilt from the ONNX weights (`onnx_weights.py`; BatchNorm folded, so every BatchNorm
   stays in eval mode while training) and checked against onnxruntime: it stops if a score differs by > 1e-3;
2. training data, in shares per batch (`--world-share`, `--real-share`, the rest synthetic):
   - simulated camera tiles (320 px at 0.06/0.07/0.08 m/px) swept over *training worlds* painted by
     `paint_world.py --seed N` (never the calibration worlds 7/8 or the demo world): planted hazards are positives
     with their boxes, everything else is background. Tiles on which the old model scores some class >= `--hard`
     away from planted hazards (the hard negatives: real rooftop objects, seams) are all kept and drawn
     `--hard-weight` times as often, tiles with a planted hazard are all kept, `--easy-tiles` of the others;
   - fresh synthetic scenes from `synth.py` (train split, seeds from 6,000,000: disjoint from the test split's
     3,000,000+ and finetune_head.py's 5,000,000+), so the hazards the model learnt stay positives;
   - the real fire/smoke train photos `train.py` trained on, so the real fire and smoke skill is kept;
3. AdamW (`--lr`, warm-up, cosine over the wall-clock budget), `--freeze early` (stem and blocks 0-4, as train.py)
   or `--freeze backbone`; the EMA weights are exported with `train.export_onnx` (same metadata keys, `--version`);
4. old and new are evaluated on held-out data only: the calibration worlds' sweeps (per label, the highest score
   away from planted hazards and the lowest best score on a planted one, as `paint_world.py --calibrate` and
   `finetune_head.py`), and the synthetic test split (seeds 3,000,000+) and the real video-free test: per class
   AP@0.5, and recall and false detections at the station's per-class thresholds (`[inference.thresholds]` of
   ground-station/src/default-config.toml). Those thresholds were chosen for the old model; fine-tuning shifts the
   scores, so a new model needs its own (`calibrate_alerts.py`) and AP and the sweep gaps are the fairer figures;
5. `<out>.metrics.json` in train.py's format (what `models/patrol-hazard.metrics.json` holds): the network is
   rebuilt from the exported ONNX file (exact, checked against onnxruntime) and train.py's own functions choose the
   threshold and per-class thresholds on validation (synthetic val + real `valid`) and evaluate the real video-free
   test and the synthetic test; plus the fine-tune's figures (base model, iterations, data, machine).

  python paint_world.py --seed 21 --out data/world-21     # and 22, 23, 24 (training); 7, 8 (evaluation only)
  nice -n 10 python finetune.py --train-worlds data/world-2{1,2,3,4} --eval-worlds data/calib-7 data/calib-8 \\
      --world-share 0.4 --real-share 0.1 --budget-min 25 --out data/patrol-hazard-ft.onnx   # the shipped v0.3.0

  # only step 5, for a model already exported by a run (--model: the base model that run started from)
  git show fe6f007:models/patrol-hazard.onnx > data/patrol-hazard-v0.2.0.onnx       # v0.2.0's commit
  python finetune.py --metrics-only data/patrol-hazard-ft.onnx --finetune-json data/patrol-hazard-ft.finetune.json \\
      --model data/patrol-hazard-v0.2.0.onnx

It writes `<out>.finetune.json` (the settings, timings and every figure it prints) and `<out>.metrics.json`. Ship
the result only after the station's own check: `patrol demo` over the calibration worlds, `calibrate_alerts.py` for
the thresholds, then the demo world (MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import time
import tomllib
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # do not spin: the 2 cores are shared with other jobs
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

import synth  # noqa: E402
from finetune_head import sweep, world_tiles  # noqa: E402
from model import CLASS_NAMES, NUM_CLASSES, Detector, make_points  # noqa: E402
from onnx_weights import detector_from_onnx, freeze_bn, max_score_diff  # noqa: E402
from train import (EMA, TrainSamples, TrainSet, average_precision, detection_loss, eval_sets,  # noqa: E402
                   export_onnx, log, match, normalize, optimizer_step, photometric_jitter, pr_at, real_split,
                   select_detections, synth_split, threshold_and_test_metrics)

HERE = Path(__file__).resolve().parent
SIZE = 320
SYNTH_TRAIN_SEED = 6_000_000
TILE_MARGIN = 16  # px around a planted box inside which a high score is not a false alarm
MAX_START_DIFF = 1e-3


def ort_session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def false_score(out: np.ndarray, boxes: np.ndarray) -> float:
    """Highest class score of one tile's output0 [9, N] at a location whose box centre lies outside every planted
    box (widened by TILE_MARGIN)."""
    cx, cy = out[0], out[1]
    away = np.ones(out.shape[1], bool)
    for _, x0, y0, x1, y1 in boxes:
        away &= ~((cx > x0 - TILE_MARGIN) & (cx < x1 + TILE_MARGIN) & (cy > y0 - TILE_MARGIN) & (cy < y1 + TILE_MARGIN))
    return float(out[4:, away].max()) if away.any() else 0.0


def world_training_tiles(worlds: list[Path], gsds: list[float], sess: ort.InferenceSession, hard: float,
                         easy_share: float, seed: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, dict]:
    """Camera tiles over the training worlds (20 % overlap) with their planted boxes [K,5] (class, x1, y1, x2, y2 in
    tile px); per tile whether the old model scores it >= `hard` away from planted hazards. Keeps every hard tile,
    every tile with a planted hazard and `easy_share` of the others."""
    rng = np.random.default_rng(seed)
    images, boxes, is_hard = [], [], []
    counts = {"views": 0, "hard": 0, "with_hazard": 0}

    def flush(batch: list, batch_boxes: list) -> None:
        out = sess.run(["output0"], {"images": (np.stack(batch).astype(np.float32) / 255).transpose(0, 3, 1, 2)})[0]
        for img, b, o in zip(batch, batch_boxes, out):
            h = false_score(o, b) >= hard
            counts["views"] += 1
            counts["hard"] += int(h)
            counts["with_hazard"] += int(len(b) > 0)
            if h or len(b) or rng.random() < easy_share:
                images.append(img)
                boxes.append(b)
                is_hard.append(h)

    for world in worlds:
        for gsd in gsds:
            batch, batch_boxes = [], []
            for tile, by_label, _ in world_tiles(world, gsd, 0.2, 0):
                rows = [(CLASS_NAMES.index(label), *box) for label, bs in by_label.items() for box in bs]
                b = np.array(rows, np.float32).reshape(-1, 5)
                b = b[(b[:, 3] - b[:, 1] >= 2) & (b[:, 4] - b[:, 2] >= 2)]
                batch.append(np.round(tile * 255).astype(np.uint8))
                batch_boxes.append(b)
                if len(batch) == 16:
                    flush(batch, batch_boxes)
                    batch, batch_boxes = [], []
            if batch:
                flush(batch, batch_boxes)
    return np.stack(images), boxes, np.array(is_hard), counts


def finetune(det: Detector, train: TrainSet, weights: np.ndarray,
             a: argparse.Namespace) -> tuple[torch.nn.Module, dict]:
    """train.py's training step (focal + GIoU + centerness, photometric jitter, EMA) with every BatchNorm in eval
    mode, AdamW with warm-up and cosine decay over the wall-clock budget. Returns the EMA model and a summary."""
    if a.freeze == "backbone":
        for p in det.backbone.parameters():
            p.requires_grad_(False)
    else:
        det.backbone.freeze_early()
    params = [p for p in det.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim > 1], "weight_decay": 5e-4},
                             {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0}], lr=a.lr)
    ema = EMA(det)
    points = make_points(a.train_size)
    sampler = torch.utils.data.WeightedRandomSampler(weights.tolist(), len(train), replacement=True,
                                                     generator=torch.Generator().manual_seed(a.seed))
    loader = torch.utils.data.DataLoader(TrainSamples(train, a.train_size, a.seed), batch_size=a.batch,
                                         sampler=sampler, drop_last=True)
    budget = a.budget_min * 60
    warm = 50
    det.train()
    freeze_bn(det)
    log(f"training: {sum(p.numel() for p in params) / 1e6:.2f} M trainable parameters (freeze {a.freeze}), "
        f"batch {a.batch}, crops {a.train_size}, lr {a.lr}, budget {a.budget_min} min")
    t0 = time.time()
    it, sums, n = 0, np.zeros(4), 0
    first = last = None
    done = False
    while not done:
        for img, cls_t, reg_t, ctr_t, pos in loader:
            el = time.time() - t0
            if el > budget:
                done = True
                break
            lr = a.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * el / budget))) * min(1.0, (it + 1) / warm)
            for g in opt.param_groups:
                g["lr"] = lr
            x = photometric_jitter(img.permute(0, 3, 1, 2).float().div_(255))
            loss, parts = detection_loss(det(normalize(x)), cls_t, reg_t, ctr_t, pos, points)
            optimizer_step(loss, opt, params, ema, det)
            it += 1
            n += 1
            sums += np.array([float(loss.detach()), *parts])
            if it % 25 == 0:
                m = last = sums / n
                first = first if first is not None else m
                log(f"it {it} loss {m[0]:.3f} (cls {m[1]:.3f} box {m[2]:.3f} ctr {m[3]:.3f}) lr {lr:.2e} "
                    f"{el / it:.2f} s/it, {el / 60:.1f}/{a.budget_min:g} min")
                sums, n = np.zeros(4), 0
    minutes = (time.time() - t0) / 60
    log(f"training finished: {it} iterations ({it * a.batch} crops) in {minutes:.1f} min")
    summary = {"iterations": it, "crops": it * a.batch, "minutes": round(minutes, 1),
               "loss_first_25_its": None if first is None else [round(float(v), 4) for v in first],
               "loss_last_25_its": None if last is None else [round(float(v), 4) for v in last]}
    return ema.ema.eval(), summary


def onnx_detections(sess: ort.InferenceSession, images: np.ndarray, conf: float = 0.001, iou: float = 0.6,
                    max_det: int = 100) -> list[np.ndarray]:
    """train.predict on the ONNX model: per image [K,6] = x1, y1, x2, y2, score, class after class-wise NMS."""
    res = []
    for s in range(0, len(images), 16):
        out = sess.run(["output0"], {"images": (images[s:s + 16].astype(np.float32) / 255).transpose(0, 3, 1, 2)})[0]
        for o in torch.from_numpy(out):
            cx, cy, w, h = o[0], o[1], o[2], o[3]
            boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
            res.append(select_detections(o[4:].t(), boxes, conf, iou, max_det))
    return res


def per_class(dets: list[np.ndarray], gts: list[np.ndarray], classes: list[int], thresholds: dict[str, float]) -> dict:
    """Per class: AP@0.5 (threshold-free) and, at the class's threshold, recall and true / false detections (greedy
    matching at IoU 0.5)."""
    out = {}
    for c in classes:
        name = CLASS_NAMES[c]
        matched = match(dets, gts, c)
        _, recall, tp, fp, gt = pr_at(*matched, thresholds[name])
        out[name] = {"ap50": round(average_precision(*matched), 4), "threshold": thresholds[name],
                     "recall": round(recall, 4), "tp": tp, "fp": fp, "gt": gt}
    return out


def evaluate(path: Path, eval_worlds: list[Path], syn_te, real_te, thresholds: dict[str, float], threads: int) -> dict:
    sess = ort_session(path, threads)
    return {"worlds": {w.name: sweep(sess, w) for w in eval_worlds},
            "synthetic_test": per_class(onnx_detections(sess, syn_te[0]), syn_te[1], list(range(NUM_CLASSES)),
                                        thresholds),
            "real_test_video_free": per_class(onnx_detections(sess, real_te[0]), real_te[1], [0, 1], thresholds)}


def print_table(old: dict, new: dict) -> list[str]:
    """Old vs new, one line per check; returns the lines."""
    lines = [f"{'check':44s} {'old':38s} {'new':38s}"]
    for world in old["worlds"]:
        for n in CLASS_NAMES:
            cells = []
            for r in (old, new):
                f, p = r["worlds"][world]["false_max"][n], r["worlds"][world]["planted_min"][n]
                cells.append(f"false {f:.2f} / planted {p:.2f} gap {p - f:+.2f}")
            lines.append(f"{world + ' sweep ' + n:44s} {cells[0]:38s} {cells[1]:38s}")
    for key, title in (("synthetic_test", "synthetic test"), ("real_test_video_free", "real video-free test")):
        for n, e in old[key].items():
            cells = [f"AP {r[key][n]['ap50']:.3f}, R {r[key][n]['recall']:.3f} ({r[key][n]['tp']}/{r[key][n]['gt']}) "
                     f"false {r[key][n]['fp']}" for r in (old, new)]
            lines.append(f"{title + ' ' + n + ' @' + str(e['threshold']):44s} {cells[0]:38s} {cells[1]:38s}")
    for line in lines:
        print(line, flush=True)
    return lines


def model_identity(path: Path, threads: int) -> dict:
    """The `version` metadata and the sha256 of an ONNX model file."""
    version = ort_session(path, threads).get_modelmeta().custom_metadata_map["version"]
    return {"version": version, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def write_metrics(model: Path, base: Path, report: dict, sets: dict, threads: int) -> Path:
    """`<model>.metrics.json` in train.py's format for the model a fine-tune run exported: the network rebuilt from
    the ONNX file, thresholds and test metrics by train.py's `threshold_and_test_metrics` on train.py's `eval_sets`;
    the run's figures from its `report` (`.finetune.json`); `base` is the model the run started from."""
    new, old = model_identity(model, threads), model_identity(base, threads)
    if new["sha256"] != report["sha256"]:
        raise SystemExit(f"error: {model} (sha256 {new['sha256']}) is not the model of that run ({report['sha256']})")
    if old["sha256"] == new["sha256"]:
        raise SystemExit(f"error: the base model {base} is the fine-tuned model itself; pass --model <base ONNX>")
    det = detector_from_onnx(model, SIZE)
    check = np.concatenate([sets["synth_test"][0][:4], sets["real_test_video_free"][0][:2]])
    box_diff, score_diff = max_score_diff(det, model, check)
    log(f"rebuilt {model.name} in torch: max |torch - onnxruntime| {box_diff:.1e} px on boxes, {score_diff:.1e} on "
        f"scores ({len(check)} images)")
    if score_diff > MAX_START_DIFF:
        raise SystemExit(f"error: the rebuilt model's scores differ from {model} by {score_diff} > {MAX_START_DIFF}")
    scores = threshold_and_test_metrics(det, sets, make_points(SIZE))
    settings, training = report["settings"], report["training"]
    metrics = {
        "model": model.name, "version": new["version"], "sha256": new["sha256"], "input_size": [SIZE, SIZE],
        "train_crop": settings["train_size"], "classes": CLASS_NAMES, "run": "finetune", "base_model": old,
        "iterations": training["iterations"], "crops": training["crops"], "batch": settings["batch"],
        "train_minutes": training["minutes"],
        "finetune": {"train_worlds": [Path(w).name for w in settings["train_worlds"]],
                     **{k: settings[k] for k in ("world_gsd", "hard", "hard_weight", "easy_tiles", "world_share",
                                                 "real_share", "freeze", "lr", "budget_min", "seed")}},
        "data": {**report["data"], **{name: len(images) for name, (images, _, _) in sets.items()}},
        "machine": f"{platform.machine()} CPU, torch threads {settings['threads']}, {os.cpu_count()} logical cores "
                   f"(shared)",
        "synth_negatives": settings["synth_negatives"],
        "rebuilt_torch_vs_onnx": {"box_px_max_abs_diff": box_diff, "score_max_abs_diff": score_diff},
        **scores, "onnx": {**report["onnx"], "path": str(model)},
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = model.with_suffix(".metrics.json")
    path.write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    log(f"wrote {path}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=HERE.parent / "models" / "patrol-hazard.onnx",
                    help="ONNX model to start from (the old model of the comparison)")
    ap.add_argument("--out", type=Path, help="where to write the fine-tuned ONNX model")
    ap.add_argument("--metrics-only", type=Path, metavar="MODEL",
                    help="no training: write MODEL.metrics.json for a model a run exported (needs --finetune-json, "
                         "and --model the base it started from)")
    ap.add_argument("--finetune-json", type=Path, help="with --metrics-only: the run's .finetune.json")
    ap.add_argument("--version", default="0.3.0", help="the new model's `version` metadata")
    ap.add_argument("--train-worlds", type=Path, nargs="+",
                    help="painted training worlds (paint_world.py --seed N); never the calibration or demo worlds")
    ap.add_argument("--eval-worlds", type=Path, nargs="+",
                    help="held-out calibration worlds for the old-vs-new sweeps (e.g. seeds 7 and 8)")
    ap.add_argument("--shared", type=Path, default=synth.DEFAULT_SHARED, help="path of shared/data")
    ap.add_argument("--data", type=Path, default=HERE / "data", help="generated scenes + caches (gitignored)")
    ap.add_argument("--config", type=Path, default=HERE.parent / "ground-station" / "src" / "default-config.toml",
                    help="station config whose [inference] thresholds the evaluation uses")
    ap.add_argument("--synth-train", type=int, default=2000, help="fresh synthetic training scenes")
    ap.add_argument("--synth-negatives", type=float, default=0.25, help="share of them without any hazard")
    ap.add_argument("--synth-val", type=int, default=150, help="synthetic val scenes (seeds 2,000,000+, thresholds)")
    ap.add_argument("--synth-test", type=int, default=250, help="synthetic test scenes (seeds 3,000,000+)")
    ap.add_argument("--synth-workers", type=int, default=2, help="processes generating synthetic scenes")
    ap.add_argument("--world-gsd", type=float, nargs="+", default=[0.06, 0.07, 0.08],
                    help="camera GSDs (m/px) of the training-world sweeps")
    ap.add_argument("--hard", type=float, default=0.3,
                    help="a world tile is a hard negative when the old model scores some class this high away "
                         "from planted hazards")
    ap.add_argument("--hard-weight", type=float, default=4.0, help="hard tiles are drawn this many times as often")
    ap.add_argument("--easy-tiles", type=float, default=0.25,
                    help="share of the world tiles without a planted hazard or a hard negative that is kept")
    ap.add_argument("--world-share", type=float, default=0.4, help="share of each batch from world tiles")
    ap.add_argument("--real-share", type=float, default=0.1, help="share of each batch from real fire/smoke photos")
    ap.add_argument("--freeze", choices=["early", "backbone"], default="early",
                    help="early: stem + blocks 0-4 frozen (train.py's default, ~0.75 s/step at batch 16 on 2 "
                         "cores); backbone: only neck and heads train (~0.5 s/step)")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-size", type=int, default=256, help="training crop size (evaluated at 320)")
    ap.add_argument("--budget-min", type=float, default=25.0, help="wall-clock training budget in minutes")
    ap.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    if a.metrics_only:
        if not a.finetune_json:
            ap.error("--metrics-only needs --finetune-json")
        write_metrics(a.metrics_only, a.model, json.loads(a.finetune_json.read_text()),
                      eval_sets(a.shared, SIZE, a.data, a.synth_workers, a.synth_val, a.synth_test), a.threads)
        return
    if not (a.out and a.train_worlds and a.eval_worlds):
        ap.error("--out, --train-worlds and --eval-worlds are required (unless --metrics-only)")
    for w in a.train_worlds:
        if json.loads((w / "world.json").read_text())["seed"] in (7, 8, 20_240_601):
            raise SystemExit(f"error: {w} is a calibration or the demo world; it is for evaluation only")
    cfg = tomllib.loads(a.config.read_text())["inference"]
    thresholds = {n: cfg.get("thresholds", {}).get(n, cfg["default_threshold"]) for n in CLASS_NAMES}
    report: dict = {"settings": json.loads(json.dumps(vars(a), default=str)), "thresholds": thresholds,
                    "seconds": {}}

    # ---- data
    t = time.time()
    syn_tr = synth_split(a.shared, "train", a.synth_train, SYNTH_TRAIN_SEED + a.seed * 100_000, SIZE, a.data,
                         a.synth_workers, a.synth_negatives)
    real_tr = real_split(a.shared, "train", SIZE, a.data)
    sets = eval_sets(a.shared, SIZE, a.data, a.synth_workers, a.synth_val, a.synth_test)
    syn_te, real_te = sets["synth_test"], sets["real_test_video_free"]
    old_sess = ort_session(a.model, a.threads)
    tiles, tile_boxes, is_hard, counts = world_training_tiles(a.train_worlds, a.world_gsd, old_sess, a.hard,
                                                              a.easy_tiles, a.seed)
    report["data"] = {"synth_train": len(syn_tr[0]), "synth_test": len(syn_te[0]), "real_train": len(real_tr[0]),
                      "real_test_video_free": len(real_te[0]), "world_views": counts["views"],
                      "world_views_with_hazard": counts["with_hazard"], "world_views_hard": counts["hard"],
                      "world_tiles_kept": len(tiles)}
    report["seconds"]["data"] = round(time.time() - t)
    log(f"data: {report['data']} ({report['seconds']['data']} s)")

    # ---- the old model in torch
    det = detector_from_onnx(a.model, SIZE)
    check = np.concatenate([syn_te[0][:4], real_te[0][:2], tiles[is_hard][:2]])
    box_diff, score_diff = max_score_diff(det, a.model, check)
    report["start_check"] = {"images": len(check), "box_px_max_abs_diff": box_diff, "score_max_abs_diff": score_diff}
    log(f"rebuilt {a.model.name} in torch: max |torch - onnxruntime| {box_diff:.1e} px on boxes, {score_diff:.1e} "
        f"on scores ({len(check)} images)")
    if score_diff > MAX_START_DIFF:
        raise SystemExit(f"error: the rebuilt model's scores differ from {a.model} by {score_diff} > {MAX_START_DIFF}")

    # ---- training
    train = TrainSet([(syn_tr[0], syn_tr[1], "synth"), (tiles, tile_boxes, "synth"),
                      (real_tr[0], real_tr[1], "real")], a.seed)
    tile_weight = np.where(is_hard, a.hard_weight, 1.0)
    weights = np.concatenate([np.full(len(syn_tr[0]), (1 - a.world_share - a.real_share) / len(syn_tr[0])),
                              a.world_share * tile_weight / tile_weight.sum(),
                              np.full(len(real_tr[0]), a.real_share / len(real_tr[0]))])
    net, report["training"] = finetune(det, train, weights, a)
    report["seconds"]["training"] = round(report["training"]["minutes"] * 60)

    # ---- export + evaluation
    t = time.time()  # export + evaluation
    summary = f"fine-tuned from {a.model.name} by finetune.py on painted training worlds and synthetic scenes"
    report["onnx"] = export_onnx(net, a.out, SIZE, summary, syn_te[0], version=a.version)
    report["sha256"] = hashlib.sha256(a.out.read_bytes()).hexdigest()
    log(f"exported {a.out} (version {a.version}, sha256 {report['sha256']}); onnxruntime vs torch "
        f"{report['onnx']['max_abs_diff_vs_torch']:.1e} (scores {report['onnx']['max_abs_diff_scores']:.1e})")
    report["eval"] = {name: evaluate(path, a.eval_worlds, syn_te, real_te, thresholds, a.threads)
                      for name, path in (("old", a.model), ("new", a.out))}
    report["seconds"]["export_and_eval"] = round(time.time() - t)
    log(f"export + held-out evaluation ({report['seconds']['export_and_eval']} s; sweeps: highest score away from "
        f"planted hazards / lowest best score on a planted one):")
    report["table"] = print_table(report["eval"]["old"], report["eval"]["new"])
    a.out.with_suffix(".finetune.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {a.out.with_suffix('.finetune.json')}")
    write_metrics(a.out, a.model, report, sets, a.threads)


if __name__ == "__main__":
    main()
