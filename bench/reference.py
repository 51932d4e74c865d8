"""The reference rendition every peer is scored against: as faithful as we know how to make it, whatever it costs.

Full decode with Pillow (first frame), EXIF orientation, embedded ICC profile → sRGB with LittleCMS, alpha flattened
onto white (what every JPEG rendition does), 16-bit samples kept beyond 8 bits, then a float Lanczos resize of
each channel. The result is float32 HxWx3 sRGB in 0..255, never quantised or re-encoded.

The crop depends on the *output* size, not the preset's box: peers legitimately round a dimension differently by a
pixel, and each is scored against a reference of exactly its own shape.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from kiray_imaging.presets import Preset, resolve

# Part of every cache key: bump it whenever the pipeline below changes what it produces.
REFERENCE_VERSION = 1
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / ".cache"

_SRGB = ImageCms.createProfile("sRGB")
_INTENT_NAMES = {
    ImageCms.Intent.RELATIVE_COLORIMETRIC: "relative colorimetric",
    ImageCms.Intent.PERCEPTUAL: "perceptual",
}

RGBArray = NDArray[np.float32]
Box = tuple[float, float, float, float]


class ReferenceError(Exception):
    """No reference can be made for this input (Pillow cannot decode it)."""


@dataclass(frozen=True)
class Decoded:
    """A source image ready to resize: oriented, sRGB, flattened, as float ("F") planes in 0..255."""

    sha256: str
    planes: tuple[Image.Image, ...]
    """One plane for a grey source (expanded to RGB after the resize, three times cheaper), else R, G, B."""
    notes: tuple[str, ...]
    """What the decode had to do beyond the obvious, for the report (ICC conversion, 16-bit, alpha, frames...)."""

    @property
    def size(self) -> tuple[int, int]:
        return self.planes[0].size


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _png16_rawmode(image: ImageFile.ImageFile) -> str | None:
    """The rawmode of a 16-bit PNG that Pillow reads as 8-bit ("RGB;16B" into mode RGB), else None."""
    if image.format != "PNG" or len(image.tile) != 1:
        return None
    args = image.tile[0].args
    rawmode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else None
    if isinstance(rawmode, str) and rawmode.endswith(";16B"):
        return rawmode
    return None


def _png16_low_bytes(data: bytes, rawmode: str) -> ImageFile.ImageFile | None:
    """The low byte of every 16-bit PNG sample, as an image shaped like Pillow's usual (high-byte) decode.

    Pillow keeps only the high byte of 16-bit RGB(A) PNGs. Decoding the same stream once more with the little-endian
    rawmode makes its unpacker take the *other* byte of each big-endian pair, after the same PNG unfiltering, so
    high * 256 + low is the exact 16-bit sample. None where Pillow has no such unpacker (16-bit grey + alpha).
    """
    image = Image.open(io.BytesIO(data))
    tile = image.tile[0]
    low_rawmode = rawmode[: -len(";16B")] + ";16L"
    args = tile.args
    new_args: tuple[object, ...] | str = low_rawmode if isinstance(args, str) else (low_rawmode, *(args or ())[1:])
    image.tile = [ImageFile._Tile(tile.codec_name, tile.extents, tile.offset, new_args)]
    try:
        image.load()
    except (ValueError, OSError):
        return None
    return image


def _to_srgb(colour: Image.Image, icc: bytes, notes: list[str]) -> Image.Image:
    """`colour` (L, RGB or CMYK) converted from its embedded profile to sRGB; unconverted, with a note, if the profile
    is unusable."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(source).strip() or "unnamed"
    except (OSError, ImageCms.PyCMSError) as e:
        notes.append(f"unreadable ICC profile ignored ({e})")
        return colour
    # Relative colorimetric keeps in-gamut colours exact (what a colour-managed viewer shows); profiles that only
    # carry perceptual tables (some CMYK ones) get perceptual rather than nothing.
    intents = [ImageCms.Intent.RELATIVE_COLORIMETRIC, ImageCms.Intent.PERCEPTUAL]
    supported = [i for i in intents if ImageCms.isIntentSupported(source, i, ImageCms.Direction.INPUT) == 1]
    for intent in supported or intents:
        try:
            converted = ImageCms.profileToProfile(colour, source, _SRGB, renderingIntent=intent, outputMode="RGB")
        except ImageCms.PyCMSError:
            continue
        assert converted is not None  # not in place, so an image always comes back
        notes.append(f"ICC '{description}' → sRGB ({_INTENT_NAMES[intent]})")
        return converted
    notes.append(f"ICC '{description}' could not be applied to a {colour.mode} image; ignored")
    return colour


def _eight_bit_planes(
    image: Image.Image, icc: bytes | None, notes: list[str]
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """Colour (HxW grey or HxWx3 sRGB) and alpha (HxW, 0..1, or None) of an image Pillow holds at 8 bits."""
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("P", "PA"):
        # Through RGBA so a transparent palette entry or tRNS chunk becomes real alpha.
        image = image.convert("RGBA" if image.mode == "PA" or image.has_transparency_data else "RGB")
    elif image.mode in ("La", "RGBa"):
        image = image.convert(image.mode.upper())
    elif image.mode == "RGBX":
        image = image.convert("RGB")

    alpha: NDArray[np.float32] | None = None
    colour = image
    if image.mode in ("LA", "RGBA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        colour = image.convert(image.mode[:-1])

    if icc and colour.mode in ("L", "RGB", "CMYK"):
        colour = _to_srgb(colour, icc, notes)
    if colour.mode == "CMYK":
        notes.append("CMYK without a usable ICC profile: Pillow's naive CMYK → RGB")
    if colour.mode not in ("L", "RGB"):
        colour = colour.convert("RGB")
    return np.asarray(colour, dtype=np.float32), alpha


def decode(data: bytes) -> Decoded:
    """Decodes `data` into float planes ready for `render`; raises ReferenceError when Pillow cannot read it."""
    try:
        source = Image.open(io.BytesIO(data))
        # Before load(), which empties the tile list that says how the samples are stored.
        rawmode = _png16_rawmode(source)
        source.load()
    except UnidentifiedImageError as e:
        raise ReferenceError("Pillow cannot identify the format") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ReferenceError(f"Pillow cannot decode it: {e}") from e

    notes: list[str] = []
    frames = getattr(source, "n_frames", 1)
    if frames > 1:
        notes.append(f"first of {frames} frames")
    orientation = source.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation}")
    icc = source.info.get("icc_profile")

    low = _png16_low_bytes(data, rawmode) if rawmode and not icc else None
    if rawmode and low is None:
        notes.append("16-bit PNG read at 8 bits" + (" (colour-managed at 8 bits)" if icc else ""))

    # Both decodes carry the same EXIF, so they turn the same way.
    image = ImageOps.exif_transpose(source)
    alpha: NDArray[np.float32] | None
    if low is not None:
        sixteen = np.asarray(image, dtype=np.float32) * 256.0
        sixteen += np.asarray(ImageOps.exif_transpose(low), dtype=np.float32)
        colour = sixteen[..., :3] / 257.0
        alpha = sixteen[..., 3] / 65535.0 if sixteen.shape[2] == 4 else None
        notes.append("16-bit samples kept")
    elif image.mode.startswith("I;16") or image.mode == "I":
        grey16 = np.asarray(image, dtype=np.float32)
        if icc:
            notes.append("16-bit grey colour-managed at 8 bits")
            grey8 = Image.fromarray(np.clip(np.rint(grey16 / 257.0), 0, 255).astype(np.uint8))
            colour, alpha = _eight_bit_planes(grey8, icc, notes)
        else:
            colour, alpha = grey16 / 257.0, None
            notes.append("16-bit samples kept")
    elif image.mode == "F":
        colour, alpha = np.asarray(image, dtype=np.float32), None
    else:
        colour, alpha = _eight_bit_planes(image, icc, notes)

    if alpha is not None:
        if float(alpha.min()) < 1.0:
            notes.append("alpha flattened onto white")
        a = alpha if colour.ndim == 2 else alpha[..., None]
        colour = colour * a + 255.0 * (1.0 - a)

    if colour.ndim == 2:
        planes: tuple[Image.Image, ...] = (Image.fromarray(np.ascontiguousarray(colour, dtype=np.float32)),)
    else:
        planes = tuple(Image.fromarray(np.ascontiguousarray(colour[..., i], dtype=np.float32)) for i in range(3))
    return Decoded(sha256=sha256(data), planes=planes, notes=tuple(notes))


def crop_box(source: tuple[int, int], fit: str, output: tuple[int, int]) -> Box:
    """The source rectangle an output of size `output` shows: all of it for ``inside``; for ``cover``, the largest
    centred rectangle of the output's aspect ratio."""
    sw, sh = source
    ow, oh = output
    if fit == "inside":
        return (0.0, 0.0, float(sw), float(sh))
    if fit != "cover":
        raise ValueError(f"expected fit 'cover' or 'inside', got {fit!r}")
    if sw * oh > sh * ow:
        crop_w = sh * ow / oh
        x0 = (sw - crop_w) / 2
        return (x0, 0.0, x0 + crop_w, float(sh))
    crop_h = sw * oh / ow
    y0 = (sh - crop_h) / 2
    return (0.0, y0, float(sw), y0 + crop_h)


def render(decoded: Decoded, fit: str, size: tuple[int, int]) -> RGBArray:
    """The reference of `decoded` at `size` (width, height) for `fit`: float32 HxWx3 sRGB in 0..255."""
    box = crop_box(decoded.size, fit, size)
    planes = [
        np.asarray(plane.resize(size, Image.Resampling.LANCZOS, box=box), dtype=np.float32) for plane in decoded.planes
    ]
    if len(planes) == 1:
        planes *= 3
    # Lanczos rings past black and white; any real output is clipped there too.
    result: RGBArray = np.clip(np.stack(planes, axis=-1), 0.0, 255.0).astype(np.float32)
    return result


@dataclass(frozen=True)
class _Failure:
    reason: str


class References:
    """Reference renditions cached on disk by content hash, preset and size, so a re-run skips the full decodes.

    The last decode is also kept in memory: a report asks for every preset and every peer's size of one file in a
    row, and a 16 MP decode with colour management is most of the cost.
    """

    def __init__(self, cache_dir: Path | None = DEFAULT_CACHE_DIR) -> None:
        self.cache_dir = cache_dir
        self._last: tuple[str, Decoded | _Failure] | None = None

    def _decoded(self, data: bytes, digest: str) -> Decoded:
        if self._last is None or self._last[0] != digest:
            try:
                result: Decoded | _Failure = decode(data)
            except ReferenceError as e:
                result = _Failure(str(e))
            self._last = (digest, result)
            if isinstance(result, Decoded):
                self._store_notes(digest, result.notes)
        cached = self._last[1]
        if isinstance(cached, _Failure):
            raise ReferenceError(cached.reason)
        return cached

    def _path(self, name: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / name

    def _store_notes(self, digest: str, notes: tuple[str, ...]) -> None:
        path = self._path(f"{digest}-v{REFERENCE_VERSION}.notes.json")
        if path is not None:
            _write_atomic(path, json.dumps(list(notes)).encode())

    def notes(self, data: bytes) -> tuple[str, ...]:
        """What the reference decode of `data` involved (decoding it only if the cache does not know)."""
        digest = sha256(data)
        path = self._path(f"{digest}-v{REFERENCE_VERSION}.notes.json")
        if path is not None and path.is_file():
            return tuple(str(n) for n in json.loads(path.read_text()))
        return self._decoded(data, digest).notes

    def get(self, data: bytes, preset: Preset | str, width: int, height: int) -> RGBArray:
        """The reference of `data` for `preset`, at exactly `width` x `height`. Raises ReferenceError."""
        p = resolve(preset)
        digest = sha256(data)
        path = self._path(f"{digest}-{p.name}-{p.fit}-{width}x{height}-v{REFERENCE_VERSION}.npy")
        if path is not None and path.is_file():
            cached = np.load(path)
            if cached.shape == (height, width, 3) and cached.dtype == np.float32:
                result: RGBArray = cached
                return result
        result = render(self._decoded(data, digest), p.fit, (width, height))
        if path is not None:
            buf = io.BytesIO()
            np.save(buf, result)
            _write_atomic(path, buf.getvalue())
        return result


def _write_atomic(path: Path, content: bytes) -> None:
    # Via a temporary name: an interrupted run must not leave a truncated array that a later run trusts.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def reference(
    data: bytes, preset: Preset | str, width: int, height: int, *, cache_dir: Path | None = DEFAULT_CACHE_DIR
) -> RGBArray:
    """The reference rendition of `data` for `preset` at `width` x `height` (float32 HxWx3, sRGB, 0..255)."""
    return References(cache_dir).get(data, preset, width, height)
