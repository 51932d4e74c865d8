"""Writing renditions to disk (the ``render`` and ``batch`` commands): whole files or none."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 less the umask). Reading the umask means setting
    it, so call this once, before any thread starts."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """``data`` at ``path`` with ``mode``: a crash or a full disk never leaves a half-written file there."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file owner-only (0600).
            os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
