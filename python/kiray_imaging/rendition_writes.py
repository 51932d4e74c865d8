"""Changing an upload's renditions safely: one function's folder of files for one upload (output_keys.py), the
compare-and-swap of its ``current.json`` (rendition_state.py), and afterwards making the files agree with it.

Why "afterwards" needs care: files and state are separate S3 objects, and S3 has no transaction across objects. A
stale invocation deletes the files it wrote while another invocation, of a newer upload with the same bytes (the
same token), is about to point the state at them; an invocation cleaning up what a change superseded can delete
files that a newer change points at again. So every invocation ends by **settling**: it reads the state again, puts
back any file the state names that is missing (from its own bytes, or by rendering the state's version again) and
deletes any file of its own that the state does not name, until one look finds nothing to do. Whichever invocation
touches a file last then also checks it last, so the files end as the state says (the shuffled-order tests in
tests/handlers/test_lifecycle_races.py hold this).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from kiray_imaging import config
from kiray_imaging.failures import is_missing
from kiray_imaging.lifecycle import Verdict
from kiray_imaging.output_keys import legacy_rendition_key, pointer_key, rendition_folder
from kiray_imaging.presets import Preset
from kiray_imaging.rendition_state import Read, RenditionState, StateChangedError, read, write
from kiray_imaging.s3_client import PutObjectRequest, S3Client, S3Error

_ATTEMPTS = 3
# S3 allows 2 KB of user metadata (names + values, UTF-8); a longer source key is stored as its sha256.
_MAX_SOURCE_KEY_METADATA = 1024

Decide = Callable[[RenditionState | None], tuple[Verdict, RenditionState | None]]
"""Given the state now: the verdict, and the state to write for ``APPLY`` / ``SAME`` (``None`` to leave it)."""
Repair = Callable[[RenditionState], Mapping[str, PutObjectRequest]]
"""Given a state whose files are missing: the writes that put them back (by rendering its version again)."""


class RenditionWriteConflictError(RuntimeError):
    """Other invocations kept changing the state while this one tried: transient, so Lambda retries the event."""


def source_metadata(upload_key: str, etag: str) -> dict[str, str]:
    """What each rendition file records about its upload (read by the orphan sweep and by people). Metadata must be
    ASCII: the key is percent-encoded."""
    metadata = {"source-etag": etag}
    key = quote(upload_key, safe="/")
    if len(key) <= _MAX_SOURCE_KEY_METADATA:
        metadata["source-key"] = key
    else:
        metadata["source-key-sha256"] = hashlib.sha256(upload_key.encode()).hexdigest()
    return metadata


@dataclass(frozen=True)
class Folder:
    """One function's renditions of one upload."""

    s3: S3Client
    settings: config.Settings
    preset: Preset
    upload_key: str

    @property
    def bucket(self) -> str:
        return self.settings.dest_bucket

    @property
    def prefix(self) -> str:
        s = self.settings
        return rendition_folder(self.upload_key, source_prefix=s.source_prefix, dest_prefix=s.dest_prefix,
                                rendition=self.preset.name)  # fmt: skip

    @property
    def state_key(self) -> str:
        s = self.settings
        return pointer_key(self.upload_key, source_prefix=s.source_prefix, dest_prefix=s.dest_prefix,
                           rendition=self.preset.name)  # fmt: skip

    def legacy_keys(self) -> list[str]:
        """Where this upload's renditions were written before versioned keys, in every format the function writes."""
        s = self.settings
        return [legacy_rendition_key(self.upload_key, source_prefix=s.source_prefix, dest_prefix=s.dest_prefix,
                                     rendition=self.preset.name, fmt=fmt) for fmt in s.output_formats]  # fmt: skip

    def read(self) -> Read:
        return read(self.s3, self.bucket, self.state_key)

    def put(self, requests: Iterable[PutObjectRequest]) -> None:
        for request in requests:
            self._check_own(request["Key"])
            self.s3.put_object(**request)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._check_own(key)
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except S3Error as e:
            if is_missing(e):
                return False
            raise
        return True

    def _check_own(self, key: str) -> None:
        # The two functions never touch each other's files: a bug here must fail, not delete a medium.
        own = f"{self.settings.dest_prefix}{self.preset.name}/"
        if not key.startswith(own):
            raise AssertionError(f"{self.preset.name} may only write and delete under {own!r}, not {key!r}")


@dataclass(frozen=True)
class Change:
    verdict: Verdict
    before: RenditionState | None
    after: RenditionState | None
    """What the state is now, as far as this invocation knows: the written state, or the newer one that won."""


def transition(folder: Folder, decide: Decide) -> Change:
    """Reads the state, asks ``decide``, writes what it says if the state is still what was read; reads again and
    decides again after losing a race."""
    for _ in range(_ATTEMPTS):
        current = folder.read()
        verdict, new = decide(current.state)
        if verdict is Verdict.STALE or new is None or new == current.state:
            return Change(verdict, current.state, current.state)
        try:
            write(folder.s3, folder.bucket, folder.state_key, new, current)
        except StateChangedError:
            continue
        return Change(verdict, current.state, new)
    raise RenditionWriteConflictError(
        f"s3://{folder.bucket}/{folder.state_key} kept changing during {_ATTEMPTS} conditional writes"
    )


def settle(folder: Folder, ours: Mapping[str, PutObjectRequest], repair: Repair | None) -> list[str]:
    """Makes the files agree with the state (see the module's docstring). ``ours``: the files this invocation wrote
    (or would write), by key. ``repair``: how to render the state's version again when one of its files is missing
    and not ours. Returns the files the state names that could not be put back (its version is no longer the
    upload's: the newer upload's own event changes the state)."""
    gone: set[str] = set()
    for _ in range(_ATTEMPTS):
        state = folder.read().state
        named = set(state.keys) if state is not None and state.kind == "current" else set()
        gone -= named
        missing = [key for key in sorted(named) if not folder.exists(key)]
        stray = [key for key in ours if key not in named and key not in gone]
        if not missing and not stray:
            return []
        folder.delete(stray)
        gone.update(stray)
        fixes = {key: ours[key] for key in missing if key in ours}
        if state is not None and repair is not None and any(key not in ours for key in missing):
            fixes.update(repair(state))
        unfixable = [key for key in missing if key not in fixes]
        folder.put(fixes[key] for key in missing if key in fixes)
        if unfixable and not stray and len(unfixable) == len(missing):
            return unfixable
    raise RenditionWriteConflictError(f"s3://{folder.bucket}/{folder.prefix} kept changing while settling")
