"""The closed sets of names that cross the native boundary, as types. The core's tables are the values
(``_core.OUTPUT_FORMATS``, ``_core.SOURCE_FORMATS``); tests/core/test_boundary.py holds these to them."""

from __future__ import annotations

from typing import Literal

FormatName = Literal["jpeg", "webp"]
"""An output format."""
SourceFormat = Literal["jpeg", "png", "webp", "gif", "avif"]
"""A format the core reads, sniffed from the bytes."""
Fit = Literal["cover", "inside"]
"""``cover`` fills the box and crops the overflow around the centre; ``inside`` keeps the whole picture."""
Stage = Literal["decode", "colour", "resize", "orient", "encode"]
"""The stages of a render, as ``Rendition.timings_ms`` names them."""
