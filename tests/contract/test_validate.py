"""validate_event, the helper the pipeline's tests check every emitted event with: both shapes an event takes (the
PutEvents entry we send, the envelope a consumer gets), and a clear refusal of each way an entry can be wrong."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.contract.validate import (
        MAX_ENTRY_BYTES,
        ContractError,
        detail_types,
        entry_size,
        validate_detail,
        validate_event,
    )
else:
    from validate import MAX_ENTRY_BYTES, ContractError, detail_types, entry_size, validate_detail, validate_event

EXAMPLES = Path(__file__).resolve().parent / "examples"


def entry_of(name: str, **changes: Any) -> dict[str, Any]:
    """The PutEvents entry the pipeline would send for an example event."""
    event = json.loads((EXAMPLES / name).read_text())
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "EventBusName": "default",
    }
    return {**entry, **changes}


def test_the_detail_types_are_the_product_names() -> None:
    assert detail_types() == ["Rendition Created", "Rendition Failed", "Renditions Deleted"]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_an_entry_we_would_send_is_valid(name: str) -> None:
    validate_event(entry_of(name))
    validate_event(entry_of(name, Time="2026-11-02T09:14:07Z", Resources=[]))


def test_a_detail_alone_can_be_checked() -> None:
    detail = json.loads(entry_of("renditions-deleted.json")["Detail"])
    validate_detail("Renditions Deleted", detail)
    with pytest.raises(ContractError, match="at detail/keys: 'none' is not of type 'array'"):
        validate_detail("Renditions Deleted", {**detail, "keys": "none"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Source": "kiray.imaging.dev"}, "Source must be 'kiray.imaging', got 'kiray.imaging.dev'"),
        ({"DetailType": "RenditionCreated"}, "unknown detail-type 'RenditionCreated': expected one of"),
        ({"Detail": {"schemaVersion": 1}}, "Detail must be a JSON string, got dict"),
        ({"Detail": "{'schemaVersion': 1}"}, "Detail is not JSON"),
        ({"Detail": "[]"}, "at detail: [] is not of type 'object'"),
        ({"Detail-Type": "Rendition Created"}, "PutEvents entry has keys it does not take: ['Detail-Type']"),
        (
            {"DetailType": "Rendition Failed"},
            "'Rendition Failed' detail breaks the contract (contract/schemas/rendition-failed.json)",
        ),
    ],
)
def test_a_wrong_entry_is_refused_with_what_is_wrong(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError) as refused:
        validate_event(entry_of("rendition-created.json", **changes))
    assert message in str(refused.value)


def test_every_fault_is_listed_not_only_the_first() -> None:
    detail = json.loads(entry_of("rendition-created.json")["Detail"])
    detail["files"][0]["bytes"] = 0
    detail["upload"]["width"] = 0
    with pytest.raises(ContractError) as refused:
        validate_event(entry_of("rendition-created.json", Detail=json.dumps(detail)))
    assert str(refused.value).splitlines()[1:] == [
        "  at detail/files/0/bytes: 0 is less than the minimum of 1",
        "  at detail/upload/width: 0 is less than the minimum of 1",
    ]


def test_neither_an_entry_nor_an_envelope_is_refused() -> None:
    with pytest.raises(ContractError, match="neither a PutEvents entry"):
        validate_event({"source": "kiray.imaging", "detail": {}})


def test_an_envelope_of_an_unknown_detail_type_is_refused() -> None:
    event = json.loads((EXAMPLES / "rendition-failed.json").read_text())
    with pytest.raises(ContractError, match="unknown detail-type 'Rendition Retried'"):
        validate_event({**event, "detail-type": "Rendition Retried"})


def test_entry_size_counts_utf8_bytes_and_time_as_eventbridge_does() -> None:
    assert entry_size("a", "bb", "ccc", ["dddd"], has_time=False) == 10
    assert entry_size("a", "bb", "ccc", [], has_time=True) == 14 + 6
    assert entry_size("kiray.imaging", "Rendition Created", '{"k":"ü"}', [], has_time=False) == 13 + 17 + 10


def oversized_by(extra: int) -> dict[str, Any]:
    """A Rendition Created entry exactly ``extra`` bytes over EventBridge's limit (negative: under it)."""
    entry = entry_of("rendition-created.json")
    detail = json.loads(entry["Detail"])
    detail["replaces"] = ["renditions/x"]
    base = entry_size(entry["Source"], entry["DetailType"], json.dumps(detail), [], has_time=False)
    detail["replaces"] = ["renditions/" + "x" * (MAX_ENTRY_BYTES + extra - base + 1)]
    return {**entry, "Detail": json.dumps(detail)}


def test_an_entry_at_eventbridges_limit_passes_and_one_byte_more_does_not() -> None:
    validate_event(oversized_by(0))
    with pytest.raises(ContractError, match=f"the entry is {MAX_ENTRY_BYTES + 1} bytes, over EventBridge's limit"):
        validate_event(oversized_by(1))


def test_other_test_folders_can_import_it_by_its_full_name() -> None:
    """The pipeline's tests (tests/handlers) import it as tests.contract.validate: the repo root is on pytest's path."""
    module = importlib.import_module("tests.contract.validate")
    assert module.detail_types() == detail_types()
