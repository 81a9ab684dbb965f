"""Synthetic nadir (drone) scenes with labelled hazards, for training the patrol hazard detector.

Backgrounds are real aerial imagery (OpenAerialMap town mosaics, UC Merced urban chips), resampled to a target
ground sample distance (GSD) of 0.04-0.10 m/px. Hazards are composited at their true size on the ground:

  0 fire           flames cut from the real fire/smoke set's *train* boxes (colour-keyed alpha, glow), 1-4 m
  1 smoke          smoke cut from the real set's train boxes, desaturated, semi-transparent, soft edges, 3-14 m
  2 gas_cylinder   procedural LPG cylinder groups: 1-6 cylinders of 0.3-0.4 m seen from above / slightly oblique
  3 steel_shed     procedural blue corrugated steel-sheet sheds with ridge line, 3-10 m
  4 rooftop_addon  procedural grey/white shacks and water tanks, 2-6 m

Everything is deterministic given the seed. Labels are YOLO txt (class cx cy w h, normalised).

Usage:
  python synth.py --out data/synth --split train --count 3000 --seed 1000
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import os
import random
import sys
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASS_NAMES = ["fire", "smoke", "gas_cylinder", "steel_shed", "rooftop_addon"]
HERE = Path(__file__).resolve().parent
DEFAULT_SHARED = HERE.parent.parent / "shared" / "data"
UCM_GSD = 0.3048
# UC Merced classes used as backgrounds (storage tanks look like rooftop tanks without a label: left out).
UCM_CLASSES = ["buildings", "denseresidential", "mediumresidential", "sparseresidential", "intersection",
               "parkinglot", "mobilehomepark"]


# --------------------------------------------------------------------------------------------- backgrounds
@dataclass
class Background:
    path: str
    gsd: float  # metres per pixel of the source image
    split: str  # train / val / test (by file-name hash, so splits never share a background)


def _split_of(name: str) -> str:
    h = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 10 else "val" if h < 18 else "train"


def list_backgrounds(shared: Path) -> list[Background]:
    """All usable backgrounds. OAM mosaics with (unlabelled) blue steel roofs are left out so that every blue
    steel shed a model sees in training is labelled."""
    out = []
    oam = shared / "aerial-backgrounds" / "openaerialmap-towns" / "mosaics_640"
    with open(oam / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            if int(row["blue_roof_blobs"]) > 0 or float(row["laplacian_var"]) < 8:
                continue
            out.append(Background(str(oam / row["file"]), float(row["gsd_m"]), _split_of(row["file"])))
    ucm = shared / "aerial-backgrounds" / "ucmerced-urban" / "images"
    for cls in UCM_CLASSES:
        for p in sorted((ucm / cls).glob("*.jpg")):
            out.append(Background(str(p), UCM_GSD, _split_of(p.name)))
    return out


_BG_CACHE: dict[str, Image.Image] = {}


def load_bg(path: str) -> Image.Image:
    im = _BG_CACHE.get(path)
    if im is None:
        im = Image.open(path).convert("RGB")
        im.load()
        _BG_CACHE[path] = im
    return im


def background_chip(rng: random.Random, bg: Background, gsd: float, size: int) -> np.ndarray:
    """A size x size float32 RGB chip of `bg` resampled to `gsd` m/px (random crop, rotation, flip)."""
    im = load_bg(bg.path)
    crop = size * gsd / bg.gsd  # source pixels needed
    w, h = im.size
    crop = min(crop, w, h)
    x0 = rng.uniform(0, w - crop)
    y0 = rng.uniform(0, h - crop)
    chip = im.resize((size, size), Image.BICUBIC, box=(x0, y0, x0 + crop, y0 + crop))
    k = rng.randrange(4)
    if k:
        chip = chip.transpose([Image.ROTATE_90, Image.ROTATE_180, Image.ROTATE_270][k - 1])
    if rng.random() < 0.5:
        chip = chip.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(chip, dtype=np.float32)


# --------------------------------------------------------------------------------------------- sprite bank
@dataclass
class Sprite:
    rgb: np.ndarray  # h x w x 3 float32
    alpha: np.ndarray  # h x w float32 0..1


def _ellipse_window(h: int, w: int, inner: float, rng: random.Random | None = None) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx + 0.5) / w * 2 - 1) ** 2 + ((yy + 0.5) / h * 2 - 1) ** 2)
    if rng is not None:  # wobbly outline
        r = r * (0.85 + 0.3 * smooth_noise(rng, h, w, 4))
    return np.clip((1.0 - r) / (1.0 - inner), 0, 1) ** 1.5


def smooth_noise(rng: random.Random, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth value noise in 0..1 (bicubic upsampling of a cells x cells random grid)."""
    g = np.array([[rng.random() for _ in range(cells)] for _ in range(cells)], dtype=np.float32)
    im = Image.fromarray((g * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


def load_sprite_sources(shared: Path) -> dict[str, list[tuple[str, tuple[float, float, float, float]]]]:
    """Fire and smoke boxes (pixel xyxy) of the real set's TRAIN split only."""
    root = shared / "fire-smoke-cctv" / "train"
    out: dict[str, list] = {"fire": [], "smoke": []}
    for lab in sorted((root / "labels").glob("*.txt")):
        img = root / "images" / (lab.stem + ".jpg")
        if not img.exists():
            continue
        for line in lab.read_text().split("\n"):
            p = line.split()
            if len(p) != 5 or p[0] == "1":
                continue
            cx, cy, w, h = (float(v) for v in p[1:])
            if w * 608 < 24 or h * 608 < 24:
                continue
            key = "fire" if p[0] == "0" else "smoke"
            out[key].append((str(img), (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return out


def _crop(path: str, box: tuple[float, float, float, float]) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    w, h = im.size
    x0, y0, x1, y1 = box
    c = im.crop((int(max(0, x0 * w)), int(max(0, y0 * h)), int(min(w, x1 * w)), int(min(h, y1 * h))))
    return np.asarray(c, dtype=np.float32)


def _smooth(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / (hi - lo), 0, 1)


def fire_sprite(rng: random.Random, src: tuple) -> Sprite | None:
    """Flame pixels of a real fire box: saturated red-orange-yellow and bright, plus the bright core they enclose."""
    rgb = _crop(*src)
    h, w = rgb.shape[:2]
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    v = mx / 255.0
    sat = (mx - mn) / np.maximum(mx, 1)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue_ok = ((r >= g) & (g >= b - 10)).astype(np.float32)  # red..yellow
    flame = _smooth(sat, 0.35, 0.55) * _smooth(v, 0.6, 0.8) * hue_ok
    if flame.mean() < 0.06:
        return None
    rad = max(2, max(h, w) // 24)
    near = np.asarray(Image.fromarray((flame * 255).astype(np.uint8)).filter(ImageFilter.BoxBlur(rad)),
                      dtype=np.float32) / 255
    near = np.clip(near * 4, 0, 1)  # ~ dilation: near any flame pixel
    core = _smooth(v, 0.85, 0.95) * near
    a = np.maximum(flame, core) * _ellipse_window(h, w, 0.6)
    a = np.asarray(Image.fromarray((a * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(max(1, w / 80))),
                   dtype=np.float32) / 255
    a = np.clip(a * 1.4, 0, 1)
    ys, xs = np.nonzero(a > 0.3)
    if len(xs) < 30:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if (a[y0:y1, x0:x1] > 0.3).mean() < 0.2:  # scattered specks, not a flame
        return None
    return Sprite(rgb[y0:y1, x0:x1], a[y0:y1, x0:x1])


def smoke_sprite(rng: random.Random, src: tuple) -> Sprite:
    rgb = _crop(*src)
    h, w = rgb.shape[:2]
    grey = rgb.mean(axis=2, keepdims=True)
    tone = rng.uniform(150, 235) if rng.random() < 0.7 else rng.uniform(55, 110)  # white/grey or dark smoke
    tex = 0.35 * rgb + 0.65 * grey
    tex = tex - tex.mean() + tone
    tex = tex * (0.85 + 0.3 * smooth_noise(rng, h, w, 5)[..., None])
    a = _ellipse_window(h, w, 0.35, rng) * (0.7 + 0.3 * smooth_noise(rng, h, w, 6))
    a = np.clip(a * rng.uniform(0.8, 1.05), 0, 0.95)
    return Sprite(np.clip(tex, 0, 255), a.astype(np.float32))


# --------------------------------------------------------------------------------------------- procedural
SUPER = 4  # supersampling factor for procedural drawing


def _rgba_to_sprite(im: Image.Image, size_px: tuple[int, int]) -> Sprite:
    im = im.resize((max(1, size_px[0]), max(1, size_px[1])), Image.LANCZOS)
    arr = np.asarray(im, dtype=np.float32)
    return Sprite(arr[..., :3], arr[..., 3] / 255.0)


def _jitter(rng: random.Random, c: tuple, amount: float = 18) -> tuple:
    return tuple(int(np.clip(v + rng.uniform(-amount, amount), 0, 255)) for v in c)


CYL_COLOURS = [(150, 152, 155), (120, 124, 128), (40, 80, 165), (35, 95, 185), (45, 130, 75), (30, 110, 60),
               (225, 195, 45), (235, 130, 35), (215, 105, 30), (190, 195, 200)]


def gas_group(rng: random.Random, gsd: float) -> tuple[Sprite, Sprite]:
    """A group of 1-6 LPG cylinders seen from above; returns (object, shadow mask)."""
    n = rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 6, 6])
    ppm = SUPER / gsd  # drawing pixels per metre
    d = rng.uniform(0.3, 0.4)  # cylinder diameter, metres
    gap = rng.uniform(0.02, 0.12)
    cols = min(n, rng.choice([1, 2, 3])) if n > 1 else 1
    rows = math.ceil(n / cols)
    lean = (rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25))  # oblique view: body visible, metres
    same = rng.random() < 0.6
    base = rng.choice(CYL_COLOURS)
    wm = cols * d + (cols - 1) * gap + abs(lean[0]) + 0.1
    hm = rows * d + (rows - 1) * gap + abs(lean[1]) + 0.1
    W, H = int(wm * ppm) + 2, int(hm * ppm) + 2
    im = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    dr = ImageDraw.Draw(im)
    ox = 0.05 + max(0.0, -lean[0])
    oy = 0.05 + max(0.0, -lean[1])
    order = list(range(n))
    for i in order:
        r_, c_ = divmod(i, cols)
        cx = (ox + c_ * (d + gap) + d / 2 + rng.uniform(-0.03, 0.03)) * ppm
        cy = (oy + r_ * (d + gap) + d / 2 + rng.uniform(-0.03, 0.03)) * ppm
        col = base if same else rng.choice(CYL_COLOURS)
        col = _jitter(rng, col, 12)
        rad = d / 2 * ppm
        dark = tuple(int(v * 0.6) for v in col)
        # body seen obliquely: a band from the base (offset by lean) to the top
        bx, by = cx + lean[0] * ppm, cy + lean[1] * ppm
        dr.ellipse((bx - rad, by - rad, bx + rad, by + rad), fill=dark + (255,))
        steps = 6
        for s in range(1, steps):
            t = s / steps
            px, py = bx + (cx - bx) * t, by + (cy - by) * t
            shade = tuple(int(v * (0.6 + 0.3 * t)) for v in col)
            dr.ellipse((px - rad, py - rad, px + rad, py + rad), fill=shade + (255,))
        # top (shoulder) disc, lighter centre, collar ring, valve
        dr.ellipse((cx - rad, cy - rad, cx + rad, cy + rad), fill=tuple(int(v * 0.85) for v in col) + (255,))
        r2 = rad * 0.78
        dr.ellipse((cx - r2, cy - r2, cx + r2, cy + r2), fill=col + (255,))
        hl = tuple(min(255, int(v * 1.25 + 25)) for v in col)
        hx, hy = cx - rad * 0.3, cy - rad * 0.3
        dr.ellipse((hx - rad * 0.25, hy - rad * 0.18, hx + rad * 0.25, hy + rad * 0.18), fill=hl + (255,))
        rc = rad * 0.45
        ring = (60, 60, 62) if rng.random() < 0.5 else tuple(int(v * 0.7) for v in col)
        dr.ellipse((cx - rc, cy - rc, cx + rc, cy + rc), outline=ring + (255,), width=max(1, int(rad * 0.12)))
        rv = rad * 0.16
        valve = rng.choice([(170, 140, 60), (40, 40, 40), (120, 120, 120)])
        dr.ellipse((cx - rv, cy - rv, cx + rv, cy + rv), fill=valve + (255,))
    ang = rng.uniform(0, 360)
    im = im.rotate(ang, Image.BICUBIC, expand=True)
    size = (round(im.width / SUPER), round(im.height / SUPER))
    obj = _rgba_to_sprite(im, size)
    return obj, Sprite(obj.rgb, obj.alpha)  # shadow shape = object shape


SHED_BLUES = [(35, 95, 175), (45, 115, 195), (25, 80, 150), (60, 135, 205), (30, 110, 160), (70, 120, 180),
              (20, 70, 135)]


def steel_shed(rng: random.Random, gsd: float) -> tuple[Sprite, float]:
    """Blue corrugated steel-sheet shed roof; returns (object, height in metres for the shadow)."""
    L = rng.uniform(3.0, 10.0)
    Wd = rng.uniform(2.5, min(L, 6.5))
    ppm = SUPER / gsd
    W, H = max(4, int(L * ppm)), max(4, int(Wd * ppm))
    base = np.array(_jitter(rng, rng.choice(SHED_BLUES), 15), dtype=np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    period = rng.uniform(0.12, 0.25) * ppm  # corrugation pitch
    gable = rng.random() < 0.65
    along_x = rng.random() < 0.5  # corrugations run along x (ridge along x means corrugations along y)
    coord = xx if along_x else yy
    corr = 0.5 + 0.5 * np.sin(coord / period * 2 * math.pi)
    shade = 0.82 + 0.3 * corr
    if gable:  # ridge across the corrugations, halves lit differently
        other = yy if along_x else xx
        half = (other > (H if along_x else W) / 2).astype(np.float32)
        shade = shade * (1.0 + rng.uniform(0.1, 0.3) * (half * 2 - 1))
    img = base[None, None, :] * shade[..., None]
    img = img * (0.9 + 0.2 * smooth_noise(rng, H, W, 6)[..., None])  # dirt / weathering
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).convert("RGBA")
    dr = ImageDraw.Draw(im)
    lw = max(1, int(0.06 * ppm))
    trim = tuple(int(min(255, v * 1.35 + 20)) for v in base) + (255,)
    dr.rectangle((0, 0, W - 1, H - 1), outline=trim, width=lw)
    if gable:
        if along_x:
            dr.line((0, H / 2, W, H / 2), fill=trim, width=lw * 2)
        else:
            dr.line((W / 2, 0, W / 2, H), fill=trim, width=lw * 2)
    im = im.rotate(rng.uniform(0, 360), Image.BICUBIC, expand=True)
    return _rgba_to_sprite(im, (round(im.width / SUPER), round(im.height / SUPER))), rng.uniform(2.2, 3.5)


def rooftop_addon(rng: random.Random, gsd: float) -> tuple[Sprite, float]:
    """Grey/white shack or water-tank-like box on a roof; returns (object, height in metres)."""
    kind = rng.choice(["shack", "shack", "tank_box", "tank_cyl"])
    ppm = SUPER / gsd
    if kind == "shack":
        L = rng.uniform(2.5, 6.0)
        Wd = rng.uniform(2.0, min(L, 4.5))
        height = rng.uniform(2.2, 3.0)
        tone = rng.choice([rng.uniform(170, 235), rng.uniform(120, 165)])
        base = np.array([tone, tone, tone], dtype=np.float32) + np.array([rng.uniform(-8, 8) for _ in range(3)])
    elif kind == "tank_box":
        L = rng.uniform(2.0, 3.5)
        Wd = rng.uniform(1.5, L)
        height = rng.uniform(1.5, 2.5)
        base = np.array(rng.choice([(225, 225, 225), (200, 205, 210), (60, 90, 150), (185, 185, 175)]),
                        dtype=np.float32)
    else:  # horizontal cylindrical stainless tank, top view: long rectangle, rounded ends, highlight stripe
        L = rng.uniform(2.0, 4.0)
        Wd = rng.uniform(0.9, 1.5)
        height = rng.uniform(1.5, 2.5)
        base = np.array(rng.choice([(215, 215, 220), (190, 195, 200), (230, 230, 230)]), dtype=np.float32)
    W, H = max(4, int(L * ppm)), max(4, int(Wd * ppm))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if kind == "tank_cyl":
        t = (yy + 0.5) / H * 2 - 1
        shade = 0.55 + 0.55 * np.sqrt(np.clip(1 - t ** 2, 0, 1)) + 0.25 * np.exp(-((t + 0.35) / 0.15) ** 2)
    elif kind == "shack" and rng.random() < 0.5:  # light corrugated sheet roof
        shade = 0.9 + 0.12 * np.sin(xx / (rng.uniform(0.1, 0.2) * ppm) * 2 * math.pi)
        shade = shade * np.where(yy > H / 2, 0.92, 1.05)
    else:
        shade = np.ones_like(xx)
    img = base[None, None, :] * shade[..., None] * (0.9 + 0.2 * smooth_noise(rng, H, W, 5)[..., None])
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).convert("RGBA")
    dr = ImageDraw.Draw(im)
    lw = max(1, int(0.05 * ppm))
    edge = tuple(int(v * 0.7) for v in base) + (255,)
    if kind == "tank_cyl":
        mask = Image.new("L", (W, H), 0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, W - 1, H - 1), radius=H // 2, fill=255)
        im.putalpha(mask)
    else:
        dr.rectangle((0, 0, W - 1, H - 1), outline=edge, width=lw)
        if kind == "shack" and rng.random() < 0.5:  # door/vent detail, parapet
            dr.rectangle((W * 0.1, H * 0.1, W * 0.25, H * 0.3), fill=tuple(int(v * 0.6) for v in base) + (255,))
    im = im.rotate(rng.uniform(0, 360), Image.BICUBIC, expand=True)
    return _rgba_to_sprite(im, (round(im.width / SUPER), round(im.height / SUPER))), height


# --------------------------------------------------------------------------------------------- compositing
def resize_sprite(sp: Sprite, w: int, h: int) -> Sprite:
    w, h = max(1, w), max(1, h)
    rgb = np.asarray(Image.fromarray(np.clip(sp.rgb, 0, 255).astype(np.uint8)).resize((w, h), Image.LANCZOS),
                     dtype=np.float32)
    a = np.asarray(Image.fromarray((sp.alpha * 255).astype(np.uint8)).resize((w, h), Image.LANCZOS),
                   dtype=np.float32) / 255
    return Sprite(rgb, a)


def blit(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x0: int, y0: int, mode: str = "over") -> None:
    H, W = canvas.shape[:2]
    h, w = alpha.shape
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    a = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0, None]
    dst = canvas[cy0:cy1, cx0:cx1]
    if mode == "over":
        src = rgb[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        dst[...] = dst * (1 - a) + src * a
    elif mode == "shadow":
        dst[...] = dst * (1 - a * rgb)  # rgb is a scalar darkness here
    elif mode == "add":
        dst[...] = dst + a * rgb


def alpha_box(alpha: np.ndarray, x0: int, y0: int, thr: float) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(alpha > thr)
    if len(xs) == 0:
        return None
    return float(x0 + xs.min()), float(y0 + ys.min()), float(x0 + xs.max() + 1), float(y0 + ys.max() + 1)


def colour_match(rgb: np.ndarray, alpha: np.ndarray, bg_patch: np.ndarray, strength: float) -> np.ndarray:
    """Pull the sprite's mean brightness towards the background's (same lighting/exposure)."""
    m = alpha > 0.5
    if m.sum() < 4:
        return rgb
    s = rgb[m].mean()
    b = bg_patch.reshape(-1, 3).mean()
    gain = (max(b, 20.0) / max(s, 20.0)) ** strength
    return np.clip(rgb * gain, 0, 255)


class Scene:
    """Composes one scene; keeps the placed boxes to avoid overlaps."""

    def __init__(self, rng: random.Random, canvas: np.ndarray, gsd: float):
        self.rng = rng
        self.canvas = canvas
        self.gsd = gsd
        self.boxes: list[tuple[int, float, float, float, float]] = []
        ang = rng.uniform(0, 2 * math.pi)
        self.sun = (math.cos(ang), math.sin(ang))  # shadow direction (unit, image axes)
        self.shadow_len = rng.uniform(0.3, 0.9)  # metres of shadow per metre of height

    def free_spot(self, w: int, h: int, margin: int = 2, tries: int = 30, allow_overlap: bool = False):
        H, W = self.canvas.shape[:2]
        if w + 2 * margin >= W or h + 2 * margin >= H:
            return None
        for _ in range(tries):
            x0 = self.rng.randint(margin, W - w - margin)
            y0 = self.rng.randint(margin, H - h - margin)
            if allow_overlap or all(x0 + w < b[1] or x0 > b[3] or y0 + h < b[2] or y0 > b[4] for b in self.boxes):
                return x0, y0
        return None

    def solid(self, cls: int, sp: Sprite, height_m: float, spot=None) -> bool:
        h, w = sp.alpha.shape
        spot = spot or self.free_spot(w, h)
        if spot is None:
            return False
        x0, y0 = spot
        shift = height_m * self.shadow_len / self.gsd
        sx, sy = int(round(x0 + self.sun[0] * shift)), int(round(y0 + self.sun[1] * shift))
        sh = np.asarray(Image.fromarray((sp.alpha * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(max(0.6, 0.15 / self.gsd))), dtype=np.float32) / 255
        blit(self.canvas, np.float32(self.rng.uniform(0.3, 0.55)), sh, sx, sy, "shadow")
        bgp = self.canvas[max(0, y0):y0 + h, max(0, x0):x0 + w]
        rgb = colour_match(sp.rgb, sp.alpha, bgp, 0.25) if bgp.size else sp.rgb
        # feather the edge by half a pixel: alpha from supersampled drawing already anti-aliased
        blit(self.canvas, rgb, sp.alpha, x0, y0)
        box = alpha_box(sp.alpha, x0, y0, 0.3)
        if box is None:
            return False
        self.boxes.append((cls,) + box)
        return True

    def fire(self, sp: Sprite, size_m: float, spot=None) -> bool:
        h0, w0 = sp.alpha.shape
        s = size_m / self.gsd / max(h0, w0)
        sp = resize_sprite(sp, round(w0 * s), round(h0 * s))
        if self.rng.random() < 0.5:  # seen from above: any orientation
            k = self.rng.randrange(4)
            sp = Sprite(np.rot90(sp.rgb, k).copy(), np.rot90(sp.alpha, k).copy())
        h, w = sp.alpha.shape
        spot = spot or self.free_spot(w, h)
        if spot is None:
            return False
        x0, y0 = spot
        # scorched ground + glow
        g = int(max(w, h) * 0.6)
        glow = np.asarray(Image.fromarray((sp.alpha * 255).astype(np.uint8)).resize((w + 2 * g, h + 2 * g))
                          .filter(ImageFilter.GaussianBlur(max(1.0, g / 2))), dtype=np.float32) / 255
        blit(self.canvas, np.float32(self.rng.uniform(0.0, 0.35)), glow, x0 - g, y0 - g, "shadow")
        blit(self.canvas, np.array([90, 45, 5], np.float32) * self.rng.uniform(0.3, 1.0), glow, x0 - g, y0 - g, "add")
        rgb = sp.rgb * self.rng.uniform(0.9, 1.15)
        blit(self.canvas, rgb, sp.alpha, x0, y0)
        np.clip(self.canvas, 0, 255, out=self.canvas)
        box = alpha_box(sp.alpha, x0, y0, 0.3)
        if box is None:
            return False
        self.boxes.append((0,) + box)
        return True

    def smoke(self, sp: Sprite, size_m: float, spot=None) -> bool:
        h0, w0 = sp.alpha.shape
        s = size_m / self.gsd / max(h0, w0)
        sp = resize_sprite(sp, round(w0 * s), round(h0 * s))
        k = self.rng.randrange(4)
        sp = Sprite(np.rot90(sp.rgb, k).copy(), np.rot90(sp.alpha, k).copy())
        h, w = sp.alpha.shape
        spot = spot or self.free_spot(w, h, allow_overlap=True)
        if spot is None:
            return False
        x0, y0 = spot
        blit(self.canvas, sp.rgb, sp.alpha, x0, y0)
        box = alpha_box(sp.alpha, x0, y0, 0.2 * float(sp.alpha.max()))
        if box is None:
            return False
        self.boxes.append((1,) + box)
        return True


NEGATIVE_SHARE = 0.15  # scenes without any hazard


class Generator:
    def __init__(self, shared: Path, split: str, negatives: float = NEGATIVE_SHARE):
        self.negatives = negatives
        self.backgrounds = [b for b in list_backgrounds(shared) if b.split == split]
        self.oam = [b for b in self.backgrounds if "openaerialmap" in b.path]
        self.ucm = [b for b in self.backgrounds if "ucmerced" in b.path]
        srcs = load_sprite_sources(shared)
        # keep only fire boxes whose flame key gives a usable sprite (checked once, deterministically)
        self._fire_cache: dict[int, Sprite] = {}
        for src in srcs["fire"]:
            sp = fire_sprite(random.Random(0), src)
            if sp is not None:
                self._fire_cache[len(self._fire_cache)] = sp
        self.fire_src = list(range(len(self._fire_cache)))
        self.smoke_src = srcs["smoke"]
        if not self.fire_src or not self.smoke_src:
            raise RuntimeError("no usable fire/smoke boxes in the real set's train split")

    def pick_bg(self, rng: random.Random) -> Background:
        return rng.choice(self.oam) if (rng.random() < 0.75 or not self.ucm) else rng.choice(self.ucm)

    def fire_sprite(self, rng: random.Random) -> Sprite:
        return self._fire_cache[rng.choice(self.fire_src)]

    def place_hazard(self, rng: random.Random, sc: Scene, cls: int) -> bool:
        gsd = sc.gsd
        if cls == 0:
            ok = sc.fire(self.fire_sprite(rng), rng.uniform(1.0, 4.0))
            if ok and rng.random() < 0.35:  # smoke drifting from the fire
                _, x0, y0, x1, y1 = sc.boxes[-1]
                size = rng.uniform(3.0, 10.0)
                px = size / gsd
                sx = int((x0 + x1) / 2 + sc.sun[0] * px * 0.3 - px / 2)
                sy = int((y0 + y1) / 2 + sc.sun[1] * px * 0.3 - px / 2)
                H, W = sc.canvas.shape[:2]
                if 0 <= sx and 0 <= sy and sx + px < W and sy + px < H:
                    sc.smoke(smoke_sprite(rng, rng.choice(self.smoke_src)), size, (sx, sy))
            return ok
        if cls == 1:
            return sc.smoke(smoke_sprite(rng, rng.choice(self.smoke_src)), rng.uniform(3.0, 14.0))
        if cls == 2:
            obj, _ = gas_group(rng, gsd)
            return sc.solid(2, obj, rng.uniform(0.6, 1.2))
        if cls == 3:
            obj, height = steel_shed(rng, gsd)
            return sc.solid(3, obj, height)
        obj, height = rooftop_addon(rng, gsd)
        return sc.solid(4, obj, height)

    def scene(self, seed: int, size: int) -> tuple[np.ndarray, list]:
        rng = random.Random(seed)
        gsd = rng.uniform(0.04, 0.10)
        # the demo camera samples a 0.1 m/px world raster at 0.06-0.08 m/px: render coarser, then upsample
        coarse = rng.random() < 0.35
        render_gsd = max(gsd, rng.uniform(0.09, 0.12)) if coarse else gsd
        rsize = int(round(size * gsd / render_gsd))
        canvas = background_chip(rng, self.pick_bg(rng), render_gsd, rsize)
        sc = Scene(rng, canvas, render_gsd)
        if rng.random() >= self.negatives:
            n = rng.choice([1, 1, 2, 2, 3, 3, 4, 5])
            for _ in range(n):
                cls = rng.choices(range(5), weights=[0.22, 0.16, 0.26, 0.17, 0.19])[0]
                self.place_hazard(rng, sc, cls)
        img = np.clip(sc.canvas, 0, 255).astype(np.uint8)
        im = Image.fromarray(img)
        scale = size / rsize
        if rsize != size:
            im = im.resize((size, size), Image.BILINEAR)
        if rng.random() < 0.3:
            im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
        arr = np.asarray(im, dtype=np.float32)
        arr = arr * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12)  # exposure
        if rng.random() < 0.5:
            arr = arr + np.random.default_rng(seed).normal(0, rng.uniform(1, 5), arr.shape)
        img = np.clip(arr, 0, 255).astype(np.uint8)
        labels = []
        for cls, x0, y0, x1, y1 in sc.boxes:
            x0, y0, x1, y1 = (max(0.0, min(size, v * scale)) for v in (x0, y0, x1, y1))
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                labels.append((cls, x0, y0, x1, y1))
        return img, labels


# --------------------------------------------------------------------------------------------- CLI
_GEN: Generator | None = None


def _init(shared: str, split: str, negatives: float) -> None:
    global _GEN
    _GEN = Generator(Path(shared), split, negatives)


def _work(args: tuple[int, int, str, int]) -> str:
    seed, size, out, quality = args
    assert _GEN is not None
    img, labels = _GEN.scene(seed, size)
    rng = random.Random(seed + 7)
    name = f"s{seed:07d}"
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=rng.randint(70, 95) if quality <= 0 else quality)
    (Path(out) / "images" / f"{name}.jpg").write_bytes(buf.getvalue())
    lines = [f"{c} {(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} {(x1 - x0) / size:.6f} {(y1 - y0) / size:.6f}"
             for c, x0, y0, x1, y1 in labels]
    (Path(out) / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return name


def generate(out: Path, split: str, count: int, seed: int, size: int, shared: Path, workers: int,
             quality: int = 0, negatives: float = NEGATIVE_SHARE) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    jobs = [(seed + i, size, str(out), quality) for i in range(count)]
    done = 0
    with Pool(workers, initializer=_init, initargs=(str(shared), split, negatives)) as pool:
        for _ in pool.imap_unordered(_work, jobs, chunksize=8):
            done += 1
            if done % 1000 == 0 or done == count:
                print(f"  synth {split}: {done}/{count}", flush=True)
    (out / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output folder (images/, labels/)")
    ap.add_argument("--split", choices=["train", "val", "test"], default="train",
                    help="which background split to draw from (splits never share a background image)")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="scene i uses seed+i")
    ap.add_argument("--size", type=int, default=320, help="scene size in pixels (square)")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="path of shared/data")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    if not (a.shared / "aerial-backgrounds").is_dir():
        sys.exit(f"error: {a.shared}/aerial-backgrounds not found; pass --shared <path to shared/data>")
    generate(a.out, a.split, a.count, a.seed, a.size, a.shared, a.workers)


if __name__ == "__main__":
    main()
