"""`render()`: the one call the handlers and the CLI make. Bytes and plain options in, bytes and facts out."""

from __future__ import annotations

from dataclasses import dataclass, field

from kiray_imaging import _core
from kiray_imaging.presets import Preset, resolve

FORMATS = ("jpeg",)


@dataclass(frozen=True)
class Rendition:
    data: bytes = field(repr=False)
    width: int
    height: int
    format: str
    content_type: str
    source_format: str
    """What the input was, sniffed from its bytes: ``jpeg``, ``png``, ``webp`` or ``gif``."""
    source_width: int
    source_height: int
    """The stored size, before EXIF orientation."""
    orientation: int
    """The EXIF orientation applied (1–8; 1 when there was none)."""
    shrink_on_load: int
    """The JPEG DCT-domain shrink used while decoding (1, 2, 4 or 8; 1 = full decode)."""
    timings_ms: dict[str, float]
    """Milliseconds per stage: decode, resize, orient, encode."""


def render(
    data: bytes | bytearray,
    preset: str | Preset,
    *,
    format: str = "jpeg",
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> Rendition:
    """Decode, orient, resize and encode ``data`` for ``preset`` in one native call, with the GIL released.

    Raises ``ImageError`` (``DecodeError``, ``UnsupportedFormatError``, ``LimitExceededError``) for bad images and
    ``ValueError`` for bad arguments. Limits default to ``DEFAULT_MAX_PIXELS`` and ``DEFAULT_MAX_INPUT_BYTES``.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    p = resolve(preset)
    if format not in FORMATS:
        raise ValueError(f"expected format in {FORMATS}, got {format!r}")
    for name, limit in (("max_pixels", max_pixels), ("max_input_bytes", max_input_bytes)):
        if limit is not None and limit < 1:
            raise ValueError(f"expected {name} ≥ 1, got {limit}")
    raw = _core.render(
        data,
        width=p.width,
        height=p.height,
        fit=p.fit,
        format=format,
        quality=p.quality,
        max_pixels=max_pixels,
        max_input_bytes=max_input_bytes,
    )
    return Rendition(
        data=raw["data"],
        width=raw["width"],
        height=raw["height"],
        format=raw["format"],
        content_type=raw["content_type"],
        source_format=raw["source_format"],
        source_width=raw["source_width"],
        source_height=raw["source_height"],
        orientation=raw["orientation"],
        shrink_on_load=raw["shrink_on_load"],
        timings_ms={stage: raw["timings_ms"][stage] for stage in ("decode", "resize", "orient", "encode")},
    )
