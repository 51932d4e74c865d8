"""Where a rendition of a source object is written. Deterministic, so a retry overwrites rather than duplicates."""

from __future__ import annotations

import posixpath

EXTENSIONS = {"jpeg": ".jpg", "webp": ".webp"}


def rendition_key(source_key: str, *, source_prefix: str, dest_prefix: str, rendition: str, fmt: str) -> str:
    """``uploads/l42/front.JPG`` → ``renditions/thumbnail/l42/front.jpg``."""
    if not source_key.startswith(source_prefix):
        raise ValueError(f"expected a key under {source_prefix!r}, got {source_key!r}")
    relative = source_key[len(source_prefix) :]
    stem, _ext = posixpath.splitext(relative)
    return f"{dest_prefix}{rendition}/{stem}{EXTENSIONS[fmt]}"
