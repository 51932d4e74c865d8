"""Writes the fuzzer's seed corpus: one small file for each input class the core reads, generated deterministically
by the same helpers the tests use (tests/images.py), so the fuzzer starts from every decoder's front door.

    python -m fuzz.seeds DIR      (from the repository root)

Small on purpose (≤ 96 px a side): libFuzzer mutates every byte it is given, and a 5 MB photo would spend the whole
budget re-decoding pixels instead of exploring headers, markers, chunks and profiles, where the parsers live.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from tests import images as im

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
SIZE = (96, 64)


def _p3_profile() -> bytes | None:
    # The real Display P3 profile of the corpus's phone photo: a genuine ICC parse path, not only synthetic ones.
    photo = CORPUS / "derived_phone_pug_p3.jpg"
    if not photo.is_file():
        return None
    with Image.open(photo) as source:
        icc = source.info.get("icc_profile")
    return icc if isinstance(icc, bytes) else None


def seeds() -> Iterator[bytes]:
    picture = im.noise(SIZE, seed=7)
    arrow = im.arrow_picture(SIZE)
    grey = arrow.convert("L")
    rgba = arrow.convert("RGBA")
    rgba.putalpha(im.noise(SIZE, seed=3).convert("L"))

    for subsampling in ("4:4:4", "4:2:2", "4:2:0"):
        for progressive in (False, True):
            yield im.jpeg(picture, subsampling=subsampling, progressive=progressive)
    yield im.jpeg(grey, progressive=True)
    yield im.encode(arrow.convert("CMYK"), "JPEG", quality=90)
    for orientation in (3, 6, 8):
        for fmt in ("JPEG", "PNG", "WEBP"):
            yield im.oriented(arrow, orientation, fmt)
    profile = _p3_profile()
    if profile is not None:
        yield im.jpeg_with_icc(im.jpeg(arrow), profile)
        yield im.png(arrow, icc_profile=profile)
        yield im.encode(arrow, "WEBP", quality=80, icc_profile=profile)

    yield im.png(arrow)
    yield im.png(rgba)
    yield im.png(grey)
    yield im.png(arrow.convert("LA"))
    yield im.png(arrow.convert("1"))
    yield im.png(im.palette_image(SIZE, [im.RED, im.BLUE, im.GREEN, im.WHITE], 0, 1, 2, 3), transparency=3)
    yield im.adam7_png(arrow)
    yield im.png16(SIZE, (65535, 0, 0), (0, 65535, 0), (0, 0, 65535), (30000, 30000, 30000))
    yield im.encode(arrow, "PNG", save_all=True, append_images=[grey.convert("RGB")], duration=100)  # APNG

    yield im.webp(arrow, lossless=False)
    yield im.webp(rgba, lossless=True)
    yield im.encode(arrow, "WEBP", save_all=True, append_images=[grey.convert("RGB")], duration=100)
    frames = [arrow.convert("P"), grey.convert("P")]
    yield im.gif(frames)
    yield im.gif(frames, transparency=0)

    # AVIF: the HEIF box parser and rav1d (Pillow writes the boxes: ftyp, meta, iloc, iprp with ispe/av1C/colr/pixi).
    yield im.encode(arrow, "AVIF", quality=60)
    yield im.encode(picture, "AVIF", quality=80, subsampling="4:4:4")
    yield im.encode(rgba, "AVIF", quality=70)
    yield im.encode(grey, "AVIF", quality=70)


def write(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for data in seeds():
        # Named by content, like libFuzzer's own corpus files: rerunning adds nothing twice.
        (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
        count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"seeds: {write(Path(argv[0]))} files in {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
