"""libFuzzer target (atheris) for `kiray_imaging.render`: any input must give a rendition or a typed `ImageError`.

Run through `make fuzz` (fuzz/run.py), which builds the core with coverage instrumentation and preloads libFuzzer so
that coverage of the Rust and C code (libjpeg-turbo, libwebp) guides the mutations; run directly against the normal
build it still works, guided by Python coverage only (what `make test` does, briefly, to keep this file honest).

What counts as a finding, beyond what libFuzzer catches itself (a signal, a timeout, the RSS limit):
- any exception that is not an `ImageError` (PyO3's PanicException, ValueError, ...);
- the plain `ImageError` the core raises for a caught panic ("internal error: ...") — caught so that production
  survives it, but a bug all the same;
- a rendition that breaks the contract: wrong container, outside the preset's box, or bytes copied from the input.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import kiray_imaging
    from kiray_imaging import ImageError, Rendition

# Both production shapes: the thumbnail crops to fill its box, the medium fits inside its box.
CASES = (("thumbnail", "jpeg"), ("medium", "webp"), ("thumbnail", "webp"), ("medium", "jpeg"))
MAGIC = {"jpeg": (b"\xff\xd8\xff",), "webp": (b"RIFF",)}


class ContractError(AssertionError):
    """A rendition came back, but not one the core promises."""


def check(data: bytes, preset: str, fmt: str, rendition: Rendition) -> None:
    box = kiray_imaging.PRESETS[preset]
    if not rendition.data.startswith(MAGIC[fmt]):
        raise ContractError(f"{fmt} rendition starts with {rendition.data[:4]!r}")
    if not (0 < rendition.width <= box.width and 0 < rendition.height <= box.height):
        raise ContractError(f"{rendition.width}x{rendition.height} is outside {preset}'s {box.width}x{box.height}")
    if rendition.data == data:
        raise ContractError("the rendition is the input, byte for byte")


def test_one_input(data: bytes) -> None:
    # The case follows from the length, not a prefix byte: seeds stay plain image files that any tool can open.
    preset, fmt = CASES[len(data) % len(CASES)]
    try:
        rendition = kiray_imaging.render(data, preset, format=fmt)
    except ImageError as e:
        if type(e) is ImageError and str(e).startswith("internal error"):
            raise
        return
    check(data, preset, fmt, rendition)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
