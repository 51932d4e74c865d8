"""Type stubs for the native extension (rust_core/src/python.rs). Use `kiray_imaging.render`, not this module."""

from collections.abc import Mapping
from typing import final

from kiray_imaging.names import Fit, FormatName, SourceFormat, Stage

__version__: str
DEFAULT_MAX_PIXELS: int
DEFAULT_MAX_INPUT_BYTES: int

class ImageError(Exception): ...
class DecodeError(ImageError): ...
class UnsupportedFormatError(ImageError): ...
class LimitExceededError(ImageError): ...

@final
class OutputFormat:
    """One output format: its name, the Content-Type it is served with and the extension of its keys."""

    @property
    def name(self) -> FormatName: ...
    @property
    def content_type(self) -> str: ...
    @property
    def extension(self) -> str: ...

OUTPUT_FORMATS: tuple[OutputFormat, ...]
"""Every output format, from the encoder's own table."""
SOURCE_FORMATS: tuple[SourceFormat, ...]
"""Every format the core reads."""

@final
class Rendition:
    """One encoded rendition and the facts of how it was made."""

    def __new__(
        cls,
        *,
        data: bytes,
        width: int,
        height: int,
        format: FormatName,
        source_format: SourceFormat,
        source_width: int,
        source_height: int,
        orientation: int,
        shrink_on_load: int,
        timings_ms: Mapping[str, float],
        content_type: str | None = None,
    ) -> Rendition: ...
    @property
    def data(self) -> bytes: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def format(self) -> FormatName: ...
    @property
    def content_type(self) -> str: ...
    @property
    def extension(self) -> str:
        """The extension of this format's keys and files, e.g. ``.jpg``."""
    @property
    def source_format(self) -> SourceFormat:
        """What the input was, sniffed from its bytes."""
    @property
    def source_width(self) -> int:
        """The stored size, before EXIF orientation."""
    @property
    def source_height(self) -> int: ...
    @property
    def orientation(self) -> int:
        """The EXIF orientation applied (1–8; 1 when there was none)."""
    @property
    def shrink_on_load(self) -> int:
        """The shrink used while decoding (JPEG DCT scaling, still WebP rescaling: 1, 2, 4 or 8; 1 = full decode)."""
    @property
    def timings_ms(self) -> dict[Stage, float]:
        """Milliseconds per stage: decode, colour, resize, orient, encode (a new dict on each access)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Plan:
    """Where a rendition's pixels come from, and how far a JPEG or still WebP decode may shrink on load."""

    @property
    def crop_left(self) -> float:
        """The source crop, in stored (pre-orientation) full-size pixels."""
    @property
    def crop_top(self) -> float: ...
    @property
    def crop_width(self) -> float: ...
    @property
    def crop_height(self) -> float: ...
    @property
    def out_width(self) -> int:
        """The output size in stored orientation (a quarter turn swaps it when displayed)."""
    @property
    def out_height(self) -> int: ...
    @property
    def shrink_on_load(self) -> int: ...

def plan(
    width: int,
    height: int,
    *,
    box_width: int,
    box_height: int,
    fit: Fit,
    orientation: int = 1,
    eighth_is_cheap: bool = False,
) -> Plan: ...
def render_many(
    data: bytes | bytearray,
    *,
    jobs: list[tuple[int, int, Fit, list[tuple[FormatName, int]]]],
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> list[list[Rendition]]: ...

@final
class Upload:
    """What ``render_upload`` returns: per job its renditions, and the upload's facts when asked for."""

    @property
    def renditions(self) -> list[list[Rendition]]:
        """Per job, one rendition per output; none for a density-2 job the source cannot fill without upscaling."""
    @property
    def placeholder(self) -> bytes | None:
        """The ThumbHash of the whole upright photo."""
    @property
    def fingerprint(self) -> int | None:
        """Its 64-bit "phash-dct64" perceptual fingerprint."""

def render_upload(
    data: bytes | bytearray,
    *,
    jobs: list[tuple[int, int, Fit, list[tuple[FormatName, int]], int]],
    facts: bool = False,
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> Upload: ...
def simd_level() -> str: ...
