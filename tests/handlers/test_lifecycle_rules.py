"""The ordering rules on their own (lifecycle.py): which event may change an upload's state."""

from __future__ import annotations

import pytest

from kiray_imaging.lifecycle import Verdict, create_verdict, delete_verdict, later_sequencer
from kiray_imaging.rendition_state import RenditionState

A, B = "a" * 32, "b" * 32  # ETags: tokens aaaa… and bbbb…


def current(etag: str, sequencer: str | None) -> RenditionState:
    return RenditionState("current", "uploads/x.jpg", etag, sequencer)


def tombstone(sequencer: str | None) -> RenditionState:
    return RenditionState("deleted", "uploads/x.jpg", None, sequencer)


def never() -> bool:
    raise AssertionError("the sequencers decide: no HEAD needed")


@pytest.mark.parametrize(
    ("state", "token", "sequencer", "head", "verdict"),
    [
        (None, "a" * 16, "05", never, Verdict.APPLY),
        (current(A, "05"), "a" * 16, "04", never, Verdict.SAME),  # an older event of the same bytes
        (current(A, "05"), "a" * 16, None, never, Verdict.SAME),  # a backfill of the current version
        (current(A, "05"), "b" * 16, "06", never, Verdict.APPLY),
        (current(A, "05"), "b" * 16, "04", never, Verdict.STALE),
        (current(A, "05"), "b" * 16, "05", never, Verdict.STALE),  # not newer than itself
        (tombstone("07"), "a" * 16, "06", never, Verdict.STALE),  # deleted after this upload
        (tombstone("07"), "a" * 16, "08", never, Verdict.APPLY),  # uploaded again after the delete
        (current(A, None), "b" * 16, "06", lambda: True, Verdict.APPLY),  # a task wrote the state: HEAD decides
        (current(A, None), "b" * 16, "06", lambda: False, Verdict.STALE),
        (current(A, "05"), "b" * 16, None, lambda: True, Verdict.APPLY),  # a task of the current version
        (current(A, "05"), "b" * 16, None, lambda: False, Verdict.STALE),
        (tombstone(None), "a" * 16, "01", lambda: False, Verdict.STALE),
    ],
)
def test_create(state: RenditionState | None, token: str, sequencer: str | None, head: object,
                verdict: Verdict) -> None:  # fmt: skip
    assert create_verdict(state, token, sequencer, head) is verdict  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "sequencer", "verdict"),
    [
        (None, "05", Verdict.APPLY),  # nothing rendered: a tombstone, so a late create renders nothing
        (current(A, "05"), "06", Verdict.APPLY),
        (current(A, "05"), "04", Verdict.STALE),  # a newer upload was rendered; its own delete will come
        (current(A, None), "04", Verdict.APPLY),  # unordered, and the upload is gone
        (current(B, "05"), None, Verdict.APPLY),
        (tombstone("05"), "05", Verdict.SAME),  # a duplicate
        (tombstone("05"), "04", Verdict.SAME),
        (tombstone("05"), "06", Verdict.APPLY),  # a later delete moves the tombstone's order on
    ],
)
def test_delete(state: RenditionState | None, sequencer: str | None, verdict: Verdict) -> None:
    assert delete_verdict(state, sequencer) is verdict


def test_later_sequencer() -> None:
    assert later_sequencer("05", "06") == "06"
    assert later_sequencer("06", "05") == "06"
    assert later_sequencer(None, "05") == "05"
    assert later_sequencer("05", None) == "05"
    assert later_sequencer(None, None) is None


def test_a_state_document_round_trips_and_refuses_what_is_not_one() -> None:
    from kiray_imaging.rendition_state import FileFacts, StateDocumentError

    state = RenditionState("current", "uploads/ü.jpg", A, "05", files=(FileFacts("k", "jpeg", "image/jpeg", 4, 3, 9),),
                           superseded=("old",), facts={"width": 4})  # fmt: skip
    assert RenditionState.from_bytes(state.to_bytes()) == state
    for bad in (b"not json", b"[]", b'{"v": 2, "state": "current", "upload": {"key": "k"}}', b'{"v": 1}'):
        with pytest.raises(StateDocumentError):
            RenditionState.from_bytes(bad)
