"""Where a rendition of a source object is written. Deterministic, so a retry overwrites rather than duplicates."""

from __future__ import annotations

import hashlib
import posixpath

from kiray_imaging._core import OUTPUT_FORMATS

EXTENSIONS: dict[str, str] = {f.name: f.extension for f in OUTPUT_FORMATS}
MAX_KEY_BYTES = 1024
"""S3's limit on a key, in UTF-8 bytes."""
_DIGEST_CHARS = 64


def rendition_key(source_key: str, *, source_prefix: str, dest_prefix: str, rendition: str, fmt: str) -> str:
    """``uploads/l42/front.JPG`` → ``renditions/thumbnail/l42/front.jpg``.

    A source key near S3's 1024-byte limit can give a longer rendition key (the destination prefix and rendition
    name are longer than ``uploads/``). Such a key keeps as much of its readable start as fits, cut on a character
    boundary, and ends in ``-<sha256 of the key relative to the source prefix>``: still deterministic, and distinct
    for distinct sources."""
    if not source_key.startswith(source_prefix):
        raise ValueError(f"expected a key under {source_prefix!r}, got {source_key!r}")
    relative = source_key[len(source_prefix) :]
    stem, _ext = posixpath.splitext(relative)
    head, ext = f"{dest_prefix}{rendition}/", EXTENSIONS[fmt]
    key = f"{head}{stem}{ext}"
    if len(key.encode()) <= MAX_KEY_BYTES:
        return key
    budget = MAX_KEY_BYTES - len(head.encode()) - len(ext) - 1 - _DIGEST_CHARS
    if budget < 0:
        raise ValueError(f"destination prefix {dest_prefix!r} leaves no room for a key")
    readable = stem.encode()[:budget].decode("utf-8", errors="ignore")
    digest = hashlib.sha256(relative.encode()).hexdigest()
    return f"{head}{readable}-{digest}{ext}"
