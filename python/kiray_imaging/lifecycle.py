"""What an event may do to an upload's renditions, given what its ``current.json`` says: the ordering rules, as
pure functions (process.py carries them out; rendition_state.py makes each change one compare-and-swap).

What orders events:

1. **S3's sequencer**, when both the event and the state have one. S3 gives every create and delete event of one key
   a sequencer, a later event a greater one (compared as S3 documents: hex, the shorter right-padded with zeros).
2. **A HEAD of the upload**, when one side has none: a Batch Operations task renders the object as it is now and
   carries no sequencer, and a state it wrote has none either. The version that is current now wins.
3. A delete applies only while the upload is **gone** (HEAD: 404, or 403 to a role without ``s3:ListBucket``). In a
   versioned bucket, deleting an older version sends "Object Deleted" while the current one stays; a delete followed
   at once by a re-upload leaves an upload whose own event decides. Either way the delete has nothing to remove.

A version already in the state (same ETag token) is ``SAME``: the event is a duplicate, a retry, or an older upload
of the same bytes; it is repeated idempotently and never moves the state's sequencer back.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from kiray_imaging.rendition_state import RenditionState
from kiray_imaging.s3_events import sequencer_is_newer


class Verdict(enum.Enum):
    APPLY = "apply"
    """This event's version (or deletion) becomes the state."""
    SAME = "same"
    """The state is already this version, or this deletion: repeat what it did, idempotently."""
    STALE = "stale"
    """A newer event has decided already: nothing of this event's may stay."""


def create_verdict(
    state: RenditionState | None, token: str, sequencer: str | None, source_is_this_version: Callable[[], bool]
) -> Verdict:
    """May the version ``token`` (rendered for an event with ``sequencer``, or a task without) become the state?
    ``source_is_this_version`` (a HEAD) is only called when the sequencers cannot decide."""
    if state is None:
        return Verdict.APPLY
    if state.kind != "deleted" and state.token == token:
        return Verdict.SAME
    if sequencer and state.sequencer:
        return Verdict.APPLY if sequencer_is_newer(sequencer, state.sequencer) else Verdict.STALE
    return Verdict.APPLY if source_is_this_version() else Verdict.STALE


def delete_verdict(state: RenditionState | None, sequencer: str | None) -> Verdict:
    """May a deletion (with ``sequencer``) of an upload that is gone now become the state?"""
    if state is None:
        return Verdict.APPLY
    if state.kind == "deleted":
        newer = sequencer and state.sequencer and sequencer_is_newer(sequencer, state.sequencer)
        return Verdict.APPLY if newer else Verdict.SAME
    if sequencer and state.sequencer:
        return Verdict.APPLY if sequencer_is_newer(sequencer, state.sequencer) else Verdict.STALE
    # The upload is gone and nothing orders the two: whatever was rendered is of a version that no longer exists.
    return Verdict.APPLY


def later_sequencer(a: str | None, b: str | None) -> str | None:
    """The later of two sequencers of one key (either may be absent)."""
    if a and b:
        return a if sequencer_is_newer(a, b) else b
    return a or b
