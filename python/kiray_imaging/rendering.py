"""`render()` and its siblings: bytes and plain options in, `Rendition`s (bytes and facts) out, in one native call.

The record, the format table and the geometry are the core's own (rust_core/src/python.rs, `_core.pyi`): this
module only names presets and checks arguments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kiray_imaging import _core
from kiray_imaging._core import OUTPUT_FORMATS, Plan, Rendition
from kiray_imaging.names import FormatName, SourceFormat
from kiray_imaging.presets import Preset, resolve

__all__ = ["FORMATS", "OUTPUT_FORMATS", "Plan", "Rendition", "Upload", "output_format", "plan", "render",
           "render_formats", "render_presets", "render_upload"]  # fmt: skip

FORMATS: tuple[FormatName, ...] = tuple(f.name for f in OUTPUT_FORMATS)
"""The output formats' names, from the encoder's table."""


def output_format(name: str) -> FormatName:
    """``name`` as an output format, or ``ValueError``."""
    for fmt in FORMATS:
        if fmt == name:
            return fmt
    raise ValueError(f"expected format in {FORMATS}, got {name!r}")


def _check(data: bytes | bytearray, formats: tuple[str, ...], limits: dict[str, int | None]) -> None:
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    if not formats:
        raise ValueError("expected at least one format, got none")
    for fmt in formats:
        output_format(fmt)
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
    formats: Iterable[str] = ("jpeg",),
    *,
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> dict[str, Rendition]:
    """Like ``render`` but encodes every format in ``formats`` from one decode and resize (e.g. the medium as
    both JPEG and WebP). Returns the renditions by format name."""
    return _render(data, [(resolve(preset), tuple(formats))], max_pixels, max_input_bytes)[0]


def render_presets(
    data: bytes | bytearray,
    presets: Mapping[str, Iterable[str]],
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
    checked = []
    for preset, formats in jobs:
        _check(data, formats, {"max_pixels": max_pixels, "max_input_bytes": max_input_bytes})
        checked.append((preset, [output_format(fmt) for fmt in formats]))
    per_job = _core.render_many(
        data,
        jobs=[(p.width, p.height, p.fit, [(fmt, p.quality_for(fmt)) for fmt in formats]) for p, formats in checked],
        max_pixels=max_pixels,
        max_input_bytes=max_input_bytes,
    )
    return [{r.format: r for r in renditions} for renditions in per_job]


@dataclass(frozen=True)
class Upload:
    """What a function makes of one upload: its preset's files, and what the render learnt of the photo."""

    files: Mapping[tuple[int, FormatName], Rendition]
    """By (scale, format): scale 1 always; scale 2 (twice the box, the ``@2x`` file) when the preset asks for it and
    the photo fills that box without upscaling."""
    placeholder: bytes | None
    """The ThumbHash of the whole upright photo (raw bytes; events carry it base64), when the preset has ``facts``."""
    fingerprint: int | None
    """Its 64-bit "phash-dct64" perceptual fingerprint (not a cryptographic hash), when the preset has ``facts``."""

    @property
    def _any(self) -> Rendition:
        return next(iter(self.files.values()))

    @property
    def width(self) -> int:
        """The photo's width as displayed (after EXIF orientation)."""
        r = self._any
        return r.source_height if r.orientation in (5, 6, 7, 8) else r.source_width

    @property
    def height(self) -> int:
        r = self._any
        return r.source_width if r.orientation in (5, 6, 7, 8) else r.source_height

    @property
    def source_format(self) -> SourceFormat:
        return self._any.source_format


def render_upload(
    data: bytes | bytearray,
    preset: str | Preset,
    formats: Iterable[str] = ("jpeg",),
    *,
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> Upload:
    """What a function writes for ``preset``: every format at every scale of the preset, and its facts (placeholder,
    fingerprint) when it has them, all from one decode. Raises as ``render`` does."""
    p = resolve(preset)
    fmts = tuple(formats)
    _check(data, fmts, {"max_pixels": max_pixels, "max_input_bytes": max_input_bytes})
    outputs = [(output_format(fmt), p.quality_for(output_format(fmt))) for fmt in fmts]
    made = _core.render_upload(
        data,
        jobs=[(p.width * scale, p.height * scale, p.fit, outputs, scale) for scale in p.scales],
        facts=p.facts,
        max_pixels=max_pixels,
        max_input_bytes=max_input_bytes,
    )
    files = {(scale, r.format): r for scale, renditions in zip(p.scales, made.renditions) for r in renditions}
    return Upload(files, made.placeholder, made.fingerprint)


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


def plan(width: int, height: int, preset: str | Preset, *, orientation: int = 1, eighth_is_cheap: bool = False) -> Plan:
    """The core's own plan for a ``width``×``height`` stored image: the source crop, the output size and the shrink
    a JPEG decode may take on load. For tools that must decode and crop exactly as the core does (the benchmarks'
    peers). ``eighth_is_cheap``: the decoder makes a 1/8 image cheaply (a progressive JPEG's DC scans)."""
    p = resolve(preset)
    return _core.plan(width, height, box_width=p.width, box_height=p.height, fit=p.fit, orientation=orientation,
                      eighth_is_cheap=eighth_is_cheap)  # fmt: skip
