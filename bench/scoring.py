"""A rendition scored against the reference of its source: SSIM on luma, PSNR on RGB and its bytes, the same way for
every report (`make quality`, `make bench`), with the tolerances their comparisons allow."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench import metrics
from bench.peers import Rendered
from bench.reference import ReferenceError, References, RGBArray
from kiray_imaging.presets import Preset

# SSIM differences this small are below what the encoders' own rounding moves; "≥" must not hinge on them.
SSIM_EPSILON = 0.0005
# "Bytes within 3 % count as equal."
BYTES_SLACK = 1.03


@dataclass(frozen=True)
class Score:
    width: int
    height: int
    bytes: int
    ssim: float
    psnr: float


def decode_output(data: bytes) -> RGBArray:
    """A peer's JPEG as float32 HxWx3 RGB, decoded by the same Pillow for every peer so no decoder is favoured."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32)


def score(rendered: Rendered, reference: Callable[[int, int], RGBArray]) -> Score:
    pixels = decode_output(rendered.data)
    height, width = pixels.shape[:2]
    ref = reference(width, height)
    return Score(
        width=width,
        height=height,
        bytes=len(rendered.data),
        ssim=metrics.ssim(pixels, ref),
        psnr=metrics.psnr(pixels, ref),
    )


class Scorer:
    """SSIM of an output file against the reference of its source, memoised by content: the 1-thread and default
    runs of a library write the same bytes, and one reference serves every tool."""

    def __init__(self, references: References) -> None:
        self.references = references
        self._seen: dict[tuple[str, bytes], float | None] = {}

    def ssim(self, source: Path, data: bytes, preset: Preset, output: Path | None) -> float | None:
        if output is None:
            return None
        rendition = output.read_bytes()
        key = (f"{source}:{preset.name}", rendition)
        if key not in self._seen:
            try:
                reference = self.references.get
                s = score(
                    Rendered(data=rendition, width=0, height=0, ms=0.0),
                    lambda w, h: reference(data, preset, w, h),
                )
                self._seen[key] = s.ssim
            except ReferenceError:
                self._seen[key] = None
        return self._seen[key]
