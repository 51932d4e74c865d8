"""Writes the small AVIF files rust_core/tests/avif.rs reads (run from the repo root with .venv/bin/python).

Pillow 13 (libavif + aom) encodes them; the Rust tests only decode, so the files are committed and this script is
what made them. Content: four flat quadrants (red, green, blue, white) so that a decoder's colours and geometry can
be checked with a tolerance that survives lossy coding.
"""

from pathlib import Path

from PIL import Image

HERE = Path(__file__).parent
QUADRANTS = [(220, 30, 30), (30, 200, 60), (40, 60, 210), (250, 250, 250)]


def quadrants(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    w, h = size
    im = Image.new(mode, size)
    for i, colour in enumerate(QUADRANTS):
        x, y = (i % 2) * w // 2, (i // 2) * h // 2
        fill = colour if mode == "RGB" else (*colour, 255 if i != 3 else 0)
        im.paste(fill, (x, y, x + w // 2, y + h // 2))
    return im


def main() -> None:
    quadrants((64, 48)).save(HERE / "quadrants_420.avif", quality=90, subsampling="4:2:0")
    quadrants((64, 48)).save(HERE / "quadrants_444.avif", quality=90, subsampling="4:4:4")
    quadrants((63, 47)).save(HERE / "quadrants_odd_420.avif", quality=90, subsampling="4:2:0")
    # Bottom-right quadrant fully transparent.
    quadrants((64, 48), "RGBA").save(HERE / "quadrants_alpha.avif", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    quadrants((64, 48)).save(HERE / "quadrants_orientation6.avif", quality=90, exif=exif.tobytes())


if __name__ == "__main__":
    main()
