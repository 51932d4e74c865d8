"""`render()`: the one call the handlers and the CLI make. Bytes and plain options in, bytes and facts out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kiray_imaging import _core
from kiray_imaging.presets import Preset, resolve

FORMATS = ("jpeg", "webp")


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
    """The shrink used while decoding (JPEG DCT scaling, still WebP rescaling: 1, 2, 4 or 8; 1 = full decode)."""
    timings_ms: dict[str, float]
    """Milliseconds per stage: decode, colour, resize, orient, encode."""


def _check(data: bytes | bytearray, formats: tuple[str, ...], limits: dict[str, int | None]) -> None:
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    if not formats:
        raise ValueError("expected at least one format, got none")
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"expected format in {FORMATS}, got {fmt!r}")
    if len(set(formats)) != len(formats):
        raise ValueError(f"expected distinct formats, got {formats}")
    for name, limit in limits.items():
        if limit is not None and limit < 1:
            raise ValueError(f"expected {name} ≥ 1, got {limit}")
        if limit is not None and limit >= 2**63:
            raise ValueError(f"expected {name} < 2**63, got {limit}")


def render_formats(
    data: bytes | bytearray,
    preset: str | Preset,
    formats: tuple[str, ...] = ("jpeg",),
    *,
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> dict[str, Rendition]:
    """Like ``render`` but encodes every format in ``formats`` from one decode and resize (e.g. the medium as
    both JPEG and WebP). Returns the renditions by format name."""
    return _render(data, [(resolve(preset), tuple(formats))], max_pixels, max_input_bytes)[0]


def render_presets(
    data: bytes | bytearray,
    presets: Mapping[str, tuple[str, ...]],
    *,
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> dict[str, dict[str, Rendition]]:
    """Several presets from one decode, e.g. ``{"thumbnail": ("jpeg",), "medium": ("jpeg", "webp")}``: returns
    the renditions by preset name, then by format.

    The decode shrinks on load only as far as every preset allows, so the largest preset gets exactly what
    ``render_formats`` gives it, and a smaller one may differ slightly (the deployed functions render each preset
    from its own decode, which can shrink further: a thumbnail of a progressive JPEG from its DC scans alone).
    Each rendition's ``timings_ms`` carries the shared decode and colour stages whole."""
    if not presets:
        raise ValueError("expected at least one preset, got none")
    jobs = [(resolve(name), tuple(formats)) for name, formats in presets.items()]
    return {p.name: out for (p, _), out in zip(jobs, _render(data, jobs, max_pixels, max_input_bytes))}


def _render(
    data: bytes | bytearray,
    jobs: list[tuple[Preset, tuple[str, ...]]],
    max_pixels: int | None,
    max_input_bytes: int | None,
) -> list[dict[str, Rendition]]:
    """The one native call behind every render: per job (a preset and its formats), the renditions by format."""
    for _, formats in jobs:
        _check(data, formats, {"max_pixels": max_pixels, "max_input_bytes": max_input_bytes})
    per_job = _core.render_many(
        data,
        jobs=[(p.width, p.height, p.fit, [(fmt, p.quality_for(fmt)) for fmt in formats]) for p, formats in jobs],
        max_pixels=max_pixels,
        max_input_bytes=max_input_bytes,
    )
    return [{raw["format"]: _rendition(raw) for raw in raws} for raws in per_job]


def render(
    data: bytes | bytearray,
    preset: str | Preset,
    *,
    format: str = "jpeg",
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> Rendition:
    """Decode, colour-manage, orient, resize and encode ``data`` for ``preset`` in one native call, with the GIL
    released.

    Raises ``ImageError`` (``DecodeError``, ``UnsupportedFormatError``, ``LimitExceededError``) for bad images and
    ``ValueError`` for bad arguments. Limits default to ``DEFAULT_MAX_PIXELS`` and ``DEFAULT_MAX_INPUT_BYTES``.
    """
    return render_formats(data, preset, (format,), max_pixels=max_pixels, max_input_bytes=max_input_bytes)[format]


def _rendition(raw: _core.RawRendition) -> Rendition:
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
        timings_ms={stage: raw["timings_ms"][stage] for stage in ("decode", "colour", "resize", "orient", "encode")},
    )
