"""Type stubs for the native extension (rust_core/src/python.rs). Use `kiray_imaging.render`, not this module."""

from typing import TypedDict

__version__: str
DEFAULT_MAX_PIXELS: int
DEFAULT_MAX_INPUT_BYTES: int

class ImageError(Exception): ...
class DecodeError(ImageError): ...
class UnsupportedFormatError(ImageError): ...
class LimitExceededError(ImageError): ...

class StageTimings(TypedDict):
    decode: float
    colour: float
    resize: float
    orient: float
    encode: float

class RawRendition(TypedDict):
    data: bytes
    width: int
    height: int
    format: str
    content_type: str
    source_format: str
    source_width: int
    source_height: int
    orientation: int
    shrink_on_load: int
    timings_ms: StageTimings

def render_many(
    data: bytes | bytearray,
    *,
    jobs: list[tuple[int, int, str, list[tuple[str, int]]]],
    max_pixels: int | None = None,
    max_input_bytes: int | None = None,
) -> list[list[RawRendition]]: ...
def simd_level() -> str: ...
