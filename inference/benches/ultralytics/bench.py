#!/usr/bin/env python3
"""Ultralytics comparator for the inference benches. Runs ONLY in the private venv made by setup.sh (Ultralytics is
AGPL-3.0 and never a dependency of the project).

  bench.py prepare DATA_DIR   export an untrained yolov8n.yaml to DATA_DIR/yolov8n.onnx (640x640, opset 17) and
                              write synthetic JPEGs: DATA_DIR/photos (4000x3000) and DATA_DIR/frames (1920x1080)
  bench.py run DATA_DIR       time per image: Ultralytics predict on the 12 MP JPEG paths, Ultralytics predict on
                              decoded 1080p frames, and the bare onnxruntime session.run; prints JSON

Untrained weights are fine for timing: the network does the same arithmetic whatever the weights.
"""

import glob
import json
import os
import sys
import time

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def synthetic(width, height, seed):
    """A drone-photo-like texture (blocks of roof colours, gradients, noise) so JPEG sizes are realistic."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 220, size=(height // 50 + 1, width // 50 + 1, 3), dtype=np.uint8)
    img = np.kron(blocks, np.ones((50, 50, 1), dtype=np.uint8))[:height, :width]
    ramp = np.linspace(-30, 30, width, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 12, size=(height, width, 3)).astype(np.float32)
    return np.clip(img.astype(np.float32) + ramp + noise, 0, 255).astype(np.uint8)


def prepare(data):
    from ultralytics import YOLO

    os.makedirs(data, exist_ok=True)
    onnx_path = os.path.join(data, "yolov8n.onnx")
    if not os.path.exists(onnx_path):
        model = YOLO("yolov8n.yaml")
        out = model.export(format="onnx", imgsz=640, opset=17, simplify=False, dynamic=False)
        os.replace(out, onnx_path)
    for sub, (w, h), count in (("photos", (4000, 3000), 6), ("frames", (1920, 1080), 6)):
        os.makedirs(os.path.join(data, sub), exist_ok=True)
        for i in range(count):
            path = os.path.join(data, sub, f"{sub}-{i}.jpg")
            if not os.path.exists(path):
                Image.fromarray(synthetic(w, h, i)).save(path, quality=90)
    print(json.dumps({"model": onnx_path, "data": data}))


def timed(fn, items, warmup=2, rounds=3):
    for item in items[:warmup]:
        fn(item)
    start = time.perf_counter()
    n = 0
    for _ in range(rounds):
        for item in items:
            fn(item)
            n += 1
    return (time.perf_counter() - start) / n * 1e3


def run(data):
    import cv2
    import onnxruntime as ort
    from ultralytics import YOLO

    onnx_path = os.path.join(data, "yolov8n.onnx")
    photos = sorted(glob.glob(os.path.join(data, "photos", "*.jpg")))
    frames_paths = sorted(glob.glob(os.path.join(data, "frames", "*.jpg")))
    frames = [cv2.imread(p) for p in frames_paths]  # decoded BGR frames, as a video reader hands them over

    model = YOLO(onnx_path, task="detect")
    predict = lambda src: model.predict(src, imgsz=640, conf=0.25, iou=0.45, verbose=False)  # noqa: E731

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)
    bare_ms = timed(lambda _: session.run(None, {name: x}), list(range(6)))
    photo_ms = timed(predict, photos)
    frame_ms = timed(predict, frames)
    bare_ms_after = timed(lambda _: session.run(None, {name: x}), list(range(6)))
    print(json.dumps({
        "ultralytics": __import__("ultralytics").__version__,
        "onnxruntime": ort.__version__,
        "ultralytics_photo_12mp_ms": round(photo_ms, 2),
        "ultralytics_frame_1080p_ms": round(frame_ms, 2),
        "bare_session_run_ms": round((bare_ms + bare_ms_after) / 2, 2),
        "photos": len(photos),
        "frames": len(frames),
    }))


if __name__ == "__main__":
    cmd, data = sys.argv[1], os.path.abspath(sys.argv[2])
    {"prepare": prepare, "run": run}[cmd](data)
