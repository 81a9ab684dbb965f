"""Rebuild a trainable `model.Detector` from an exported ONNX model (the torch checkpoint of v0.2.0 is lost).

`train.py` exports with constant folding, so every BatchNorm is folded into the convolution before it. The ONNX
Conv nodes, in graph order, are paired 1:1 with the Detector's `nn.Conv2d` modules in the order they run (recorded
with forward hooks); each pair must agree on the weight shape and the node's scope must end with the module's name.
The conv gets the folded weight; where a BatchNorm follows it, that BatchNorm is set to the identity plus the
folded bias (running mean 0, running variance 1 - eps, weight 1, bias = folded bias), so in eval mode the Detector
computes exactly what the ONNX graph computes. Keep those BatchNorms in eval mode when training (`freeze_bn`):
batch statistics would rescale every channel.

  from onnx_weights import detector_from_onnx, max_score_diff
  det = detector_from_onnx(Path("../models/patrol-hazard.onnx"))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from model import Detector, DetectorExport


def conv_bn_pairs(det: nn.Module) -> dict[str, str]:
    """Conv module name -> name of the BatchNorm2d registered right after it (and its own children)."""
    mods = list(det.named_modules())
    pairs = {}
    for i, (name, m) in enumerate(mods):
        if not isinstance(m, nn.Conv2d):
            continue
        after = next(((n, m2) for n, m2 in mods[i + 1:] if not n.startswith(name + ".")), None)
        if after and isinstance(after[1], nn.BatchNorm2d):
            pairs[name] = after[0]
    return pairs


def conv_run_order(det: Detector) -> list[str]:
    """Names of the Conv2d modules in the order a forward pass runs them."""
    order, hooks = [], []
    for name, m in det.named_modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(lambda mod, inp, out, name=name: order.append(name)))
    with torch.no_grad():
        det.eval()(torch.zeros(1, 3, det.image_size, det.image_size))
    for h in hooks:
        h.remove()
    if len(order) != len(set(order)):
        raise ValueError("a convolution runs twice in one forward pass; the 1:1 pairing does not hold")
    return order


def detector_from_onnx(path: Path, size: int = 320) -> Detector:
    """A Detector (eval mode) with the weights of the ONNX model at `path`."""
    det = Detector(size, pretrained=False)
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    nodes = [n for n in m.graph.node if n.op_type == "Conv"]
    order = conv_run_order(det)
    if len(nodes) != len(order):
        raise ValueError(f"{path}: {len(nodes)} Conv nodes, the Detector runs {len(order)} convolutions")
    pairs = conv_bn_pairs(det)
    mods = dict(det.named_modules())
    with torch.no_grad():
        for node, name in zip(nodes, order):
            scope = node.name.rsplit("/", 1)[0]  # e.g. /det/backbone/blocks.3/_expand_conv/Conv -> .../_expand_conv
            if not name.endswith(scope.rsplit("/", 1)[1]) or name.split(".")[0] not in scope:
                raise ValueError(f"ONNX node {node.name} does not belong to module {name}")
            conv = mods[name]
            weight = torch.from_numpy(inits[node.input[1]].copy())
            bias = torch.from_numpy(inits[node.input[2]].copy()) if len(node.input) > 2 else None
            if weight.shape != conv.weight.shape or bias is None:
                raise ValueError(f"{name}: ONNX weight {tuple(weight.shape)} (bias {bias is not None}), "
                                 f"module {tuple(conv.weight.shape)}")
            conv.weight.copy_(weight)
            if name in pairs:
                bn = mods[pairs[name]]
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(bias)
            else:
                conv.bias.copy_(bias)
    if not (np.allclose(inits["mean"].ravel(), DetectorExport.MEAN)
            and np.allclose(inits["std"].ravel(), DetectorExport.STD)):
        raise ValueError(f"{path}: input normalisation differs from model.DetectorExport")
    return det.eval()


def freeze_bn(det: nn.Module) -> None:
    """Put every BatchNorm in eval mode (call after each `det.train()`)."""
    for m in det.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def max_score_diff(det: Detector, path: Path, images: np.ndarray) -> tuple[float, float]:
    """Largest |torch - onnxruntime| difference on box rows (px) and on score rows of output0, images uint8
    [B,S,S,3]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    with torch.no_grad():
        ref = DetectorExport(det).eval()(x).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run(["output0"], {"images": x.numpy()})[0]
    diff = np.abs(got - ref)
    return float(diff[:, :4].max()), float(diff[:, 4:].max())
