"""What the render tests check a rendition against: the preset rules restated independently of geometry.rs,
the output's metadata-free JPEG, quadrant colours. Shared by tests/core/test_render*.py."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from PIL import Image

from kiray_imaging import (
    PRESETS,
    Preset,
    Rendition,
)

if TYPE_CHECKING:
    from tests import images
    from tests.images import BLUE, GREY, RED, RGB
else:
    import images
    from images import BLUE, GREY, RED, RGB

PRESET_NAMES = sorted(PRESETS)
Quadrant = Literal["tl", "tr", "bl", "br"]
QUADRANTS: tuple[Quadrant, ...] = ("tl", "tr", "bl", "br")
# Mean of a flat region after resampling and a q80 JPEG: a few levels off at most; a wrong colour is 100+ off.
TOLERANCE = 12.0
COLOUR: RGB = (0, 128, 255)


def _round(v: float) -> int:
    return max(1, math.floor(v + 0.5))


def expected_size(width: int, height: int, preset: Preset) -> tuple[int, int]:
    """The output size for a *displayed* `width`x`height` image: the product rules, restated."""
    bw, bh = preset.width, preset.height
    if preset.fit == "inside":
        scale = min(bw / width, bh / height, 1.0)
        return _round(width * scale), _round(height * scale)
    if width >= bw and height >= bh:
        return bw, bh
    # Smaller than the box on some side: never upscale, so the largest centred box-shaped rectangle it holds.
    return _round(min(bw, width, height * bw / bh)), _round(min(bh, height, width * bh / bw))


def jpeg_markers(data: bytes) -> list[int]:
    """The markers before the first scan, which is where metadata segments (APPn, COM) live."""
    assert data[:2] == b"\xff\xd8", data[:4]
    markers: list[int] = []
    at = 2
    while True:
        assert data[at] == 0xFF, f"no marker at {at}"
        marker = data[at + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")


def check_output(r: Rendition, size: tuple[int, int]) -> Image.Image:
    """Asserts `r` is a JPEG of `size` with no metadata segments, and returns it decoded."""
    assert (r.width, r.height) == size
    assert (r.format, r.content_type) == ("jpeg", "image/jpeg")
    im = images.decode(r.data)
    assert im.format == "JPEG"
    assert im.size == size
    assert im.mode == "RGB"
    assert not im.getexif()
    assert "icc_profile" not in im.info
    assert "exif" not in im.info
    metadata = [hex(m) for m in jpeg_markers(r.data) if 0xE1 <= m <= 0xEF or m == 0xFE]
    assert metadata == [], "APPn/COM segments in the output"
    return im


def assert_quadrants(
    im: Image.Image, expected: Mapping[Quadrant, Sequence[float]], tolerance: float = TOLERANCE
) -> None:
    actual = {q: images.mean_colour(im, images.quadrant_box(im.size, q)) for q in expected}
    wrong = {
        q: tuple(round(c) for c in actual[q]) for q in expected if not images.close(actual[q], expected[q], tolerance)
    }
    assert not wrong, f"quadrant colours {wrong}, expected {expected}"


ARROW: dict[Quadrant, RGB] = {"tl": RED, "tr": BLUE, "bl": GREY, "br": GREY}
"""images.arrow_picture()'s quadrants, as displayed."""


def pink(alpha: int, over: RGB = RED) -> tuple[float, ...]:
    """`over` at `alpha` composited on white."""
    return tuple(c * alpha / 255 + 255 * (255 - alpha) / 255 for c in over)
