"""kiray-imaging: listing-photo renditions from a Rust core.

>>> from kiray_imaging import render
>>> thumb = render(photo_bytes, "thumbnail")   # doctest: +SKIP
>>> thumb.width, thumb.height, thumb.content_type  # doctest: +SKIP
(400, 300, 'image/jpeg')
"""

from kiray_imaging._core import (
    DEFAULT_MAX_INPUT_BYTES,
    DEFAULT_MAX_PIXELS,
    DecodeError,
    ImageError,
    LimitExceededError,
    UnsupportedFormatError,
    simd_level,
)
from kiray_imaging._core import __version__ as __version__
from kiray_imaging.presets import PRESETS, Preset
from kiray_imaging.rendering import (
    FORMATS,
    Plan,
    Rendition,
    Upload,
    plan,
    render,
    render_formats,
    render_presets,
    render_upload,
)

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "PRESETS",
    "DecodeError",
    "ImageError",
    "LimitExceededError",
    "Plan",
    "Preset",
    "Rendition",
    "UnsupportedFormatError",
    "Upload",
    "plan",
    "render",
    "render_formats",
    "render_presets",
    "render_upload",
    "simd_level",
]
