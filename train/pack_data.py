"""Pack a smaller copy of shared/data for training on a remote GPU machine with a transfer limit.

What train.py reads, re-encoded to fit a size budget; the folder layout is the same, so train.py takes it with
`--shared <out>`:
  * fire-smoke-cctv: `train` images resized to at most --real-px (train.py letterboxes them to 320 anyway) and
    re-encoded at --quality; `valid` and `test` copied unchanged, so the reported metrics use the original files;
  * openaerialmap-towns: only the mosaics synth.py may draw (manifest kept whole), re-encoded at --quality;
  * ucmerced-urban: every --ucm-step-th chip of the classes synth.py uses, re-encoded at --quality.

  python pack_data.py --out ../.train-pack/data            # then: train.py --shared ../.train-pack/data
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

from PIL import Image

import synth


def reencode(src: Path, dst: Path, quality: int, max_px: int = 0) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    im = Image.open(src).convert("RGB")
    if max_px and max(im.size) > max_px:
        s = max_px / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
    im.save(dst, "JPEG", quality=quality, optimize=True)


def folder_mb(p: Path) -> float:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=synth.DEFAULT_SHARED, help="path of shared/data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quality", type=int, default=88, help="JPEG quality of re-encoded images")
    ap.add_argument("--real-px", type=int, default=320, help="longest side of the real train images")
    ap.add_argument("--ucm-step", type=int, default=3, help="keep every n-th UC Merced chip")
    a = ap.parse_args()

    fs, out_fs = a.shared / "fire-smoke-cctv", a.out / "fire-smoke-cctv"
    for f in fs.iterdir():
        if f.is_file():
            out_fs.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out_fs / f.name)
    for split in ("valid", "test"):
        shutil.copytree(fs / split, out_fs / split, dirs_exist_ok=True)
    shutil.copytree(fs / "train" / "labels", out_fs / "train" / "labels", dirs_exist_ok=True)
    for img in sorted((fs / "train" / "images").glob("*.jpg")):
        reencode(img, out_fs / "train" / "images" / img.name, a.quality, a.real_px)

    oam = a.shared / "aerial-backgrounds" / "openaerialmap-towns" / "mosaics_640"
    out_oam = a.out / "aerial-backgrounds" / "openaerialmap-towns" / "mosaics_640"
    out_oam.mkdir(parents=True, exist_ok=True)
    shutil.copy2(oam / "manifest.csv", out_oam / "manifest.csv")
    used = {Path(b.path).name for b in synth.list_backgrounds(a.shared) if "openaerialmap" in b.path}
    with open(oam / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["file"] in used:
                reencode(oam / row["file"], out_oam / row["file"], a.quality)

    ucm = a.shared / "aerial-backgrounds" / "ucmerced-urban" / "images"
    out_ucm = a.out / "aerial-backgrounds" / "ucmerced-urban" / "images"
    for cls in synth.UCM_CLASSES:
        for img in sorted((ucm / cls).glob("*.jpg"))[:: a.ucm_step]:
            reencode(img, out_ucm / cls / img.name, a.quality)
    for part in (out_fs, out_oam, out_ucm):
        print(f"{part}: {folder_mb(part):.1f} MB")
    print(f"total {folder_mb(a.out):.1f} MB")


if __name__ == "__main__":
    main()
