"""Where the renditions of an upload are written: one folder per upload and rendition, named by the upload's whole
key (extension included), holding one file per version, size and format, and ``current.json``.

    uploads/l7/front.jpg, ETag 9b2cf535f27731c974343645a3985328
      → renditions/thumbnail/l7/front.jpg/9b2cf535f27731c9.jpg       (thumbnail, 400x300)
        renditions/medium/l7/front.jpg/9b2cf535f27731c9.jpg          (medium JPEG)
        renditions/medium/l7/front.jpg/9b2cf535f27731c9.webp         (medium WebP)
        renditions/<rendition>/l7/front.jpg/current.json             (which version is current; rendition_state.py)

The file name starts with the **version token**: the first 16 hex digits of the upload's ETag, so a replaced upload
always gets new keys (and ``Cache-Control: immutable`` stays true), the same version always the same keys (retries
and duplicate events overwrite, never add), and ``front.jpg`` and ``front.png`` never share a key. The backend can
compute a key from the ETag its own upload returned, or read ``current.json``; it never needs to list the bucket.

A key that would pass S3's 1024 bytes keeps as much of its readable start as fits and ends in
``-<sha256 of the key below the source prefix>``: still deterministic, and distinct for distinct uploads.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass

from kiray_imaging._core import OUTPUT_FORMATS

EXTENSIONS: dict[str, str] = {f.name: f.extension for f in OUTPUT_FORMATS}
MAX_KEY_BYTES = 1024
"""S3's limit on a key, in UTF-8 bytes."""
TOKEN_CHARS = 16
"""64 bits of the ETag: no two versions of one key collide in practice."""
POINTER = "current.json"
_DIGEST_CHARS = 64
# Room kept for the last part of a key in an upload's folder: a token, a size variant such as "@2x" (up to 8
# characters), an extension (up to 8), or POINTER.
_LEAF_BYTES = TOKEN_CHARS + 8 + 8
_HEX = re.compile(r"[0-9a-f]+")
_LEAF = re.compile(r"(?P<token>[0-9a-f]{16})(?P<variant>@[0-9a-z]{1,7})?(?P<ext>\.[0-9a-z]{1,7})")


def version_token(etag: str) -> str:
    """The version part of a rendition's name: the first 16 hex digits of the ETag (quotes and a multipart ``-N``
    left out). An ETag that is not hex (some S3-compatible stores) is hashed first."""
    digits = etag.strip().strip('"').split("-", 1)[0].lower()
    if len(digits) >= TOKEN_CHARS and _HEX.fullmatch(digits):
        return digits[:TOKEN_CHARS]
    return hashlib.sha256(etag.encode()).hexdigest()[:TOKEN_CHARS]


def rendition_folder(source_key: str, *, source_prefix: str, dest_prefix: str, rendition: str) -> str:
    """``uploads/l42/front.JPG`` → ``renditions/thumbnail/l42/front.JPG/``: every rendition of that upload, and its
    ``current.json``, are in here."""
    if not source_key.startswith(source_prefix):
        raise ValueError(f"expected a key under {source_prefix!r}, got {source_key!r}")
    relative = source_key[len(source_prefix) :]
    head = f"{dest_prefix}{rendition}/"
    folder = f"{head}{relative}/"
    if len(folder.encode()) + _LEAF_BYTES <= MAX_KEY_BYTES:
        return folder
    budget = MAX_KEY_BYTES - _LEAF_BYTES - len(head.encode()) - len("-/") - _DIGEST_CHARS
    if budget < 0:
        raise ValueError(f"destination prefix {dest_prefix!r} leaves no room for a key")
    readable = relative.encode()[:budget].decode("utf-8", errors="ignore")
    return f"{head}{readable}-{hashlib.sha256(relative.encode()).hexdigest()}/"


def file_name(token: str, fmt: str, variant: str = "") -> str:
    """``9b2cf535f27731c9.jpg``; ``variant`` names another size of the same rendition, e.g. ``@2x``."""
    return f"{token}{variant}{EXTENSIONS[fmt]}"


def scale_variant(scale: int) -> str:
    """The ``variant`` of a file at ``scale``: none for 1, ``@2x`` for 2 (the names srcset users know)."""
    return "" if scale == 1 else f"@{scale}x"


def rendition_key(
    source_key: str, *, source_prefix: str, dest_prefix: str, rendition: str, fmt: str, token: str, variant: str = ""
) -> str:
    folder = rendition_folder(source_key, source_prefix=source_prefix, dest_prefix=dest_prefix, rendition=rendition)
    return folder + file_name(token, fmt, variant)


def pointer_key(source_key: str, *, source_prefix: str, dest_prefix: str, rendition: str) -> str:
    folder = rendition_folder(source_key, source_prefix=source_prefix, dest_prefix=dest_prefix, rendition=rendition)
    return folder + POINTER


def legacy_rendition_key(source_key: str, *, source_prefix: str, dest_prefix: str, rendition: str, fmt: str) -> str:
    """Where renditions were written before versioned keys (``renditions/thumbnail/l42/front.jpg``, the extension
    replaced): what a migration removes (docs/backfills.md). Two uploads that differ only by extension shared it."""
    relative = source_key[len(source_prefix) :]
    stem, _ext = posixpath.splitext(relative)
    head, ext = f"{dest_prefix}{rendition}/", EXTENSIONS[fmt]
    key = f"{head}{stem}{ext}"
    if len(key.encode()) <= MAX_KEY_BYTES:
        return key
    budget = MAX_KEY_BYTES - len(head.encode()) - len(ext) - 1 - _DIGEST_CHARS
    readable = stem.encode()[: max(budget, 0)].decode("utf-8", errors="ignore")
    return f"{head}{readable}-{hashlib.sha256(relative.encode()).hexdigest()}{ext}"


@dataclass(frozen=True)
class RenditionFile:
    """A key under the destination prefix, read back (by the orphan sweep)."""

    rendition: str
    folder: str
    token: str | None
    """``None`` for ``current.json``."""
    variant: str = ""


def parse_rendition_key(key: str, dest_prefix: str) -> RenditionFile | None:
    """What a key under ``dest_prefix`` is in today's scheme: one version's file, or an upload's ``current.json``;
    ``None`` for anything else (a key of the pre-versioned scheme, say)."""
    if not key.startswith(dest_prefix):
        return None
    rendition, _, rest = key[len(dest_prefix) :].partition("/")
    folder, _, leaf = rest.rpartition("/")
    if not rendition or not folder:
        return None
    prefix = f"{dest_prefix}{rendition}/{folder}/"
    if leaf == POINTER:
        return RenditionFile(rendition, prefix, None)
    match = _LEAF.fullmatch(leaf)
    if match is None or match["ext"] not in EXTENSIONS.values():
        return None
    return RenditionFile(rendition, prefix, match["token"], match["variant"] or "")
