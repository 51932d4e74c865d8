"""Checks an event against the contract (contract/schemas/, the source of truth the TypeScript types are generated
from). The pipeline's tests call ``validate_event`` on every event they see it emit, so an event that breaks the
contract fails our tests rather than the backend. From another test folder::

    from tests.contract.validate import ContractError, validate_event
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[2] / "contract" / "schemas"
SOURCE = "kiray.imaging"
# EventBridge's limit on one PutEvents entry, counted as it documents (see entry_size).
MAX_ENTRY_BYTES = 256 * 1024
# What boto3's put_events accepts in an entry.
_ENTRY_KEYS = frozenset({"Time", "Source", "Resources", "DetailType", "Detail", "EventBusName", "TraceHeader"})


class ContractError(ValueError):
    """An event that is not what the contract promises; the message names each field that is wrong."""


def schema(name: str) -> dict[str, Any]:
    """One schema of contract/schemas/ by file name, e.g. ``rendition-created.json``."""
    return _schemas()[name]


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(SCHEMAS.glob("*.json"))}


@cache
def registry() -> Registry[Any]:
    """Every schema under its ``$id``, so their ``$ref``s to one another resolve without touching the network."""
    resources = [(s["$id"], Resource.from_contents(s)) for s in _schemas().values()]
    return Registry().with_resources(resources)


@dataclass(frozen=True)
class _Kind:
    envelope: str  # the union's member for this detail-type, e.g. https://…/event.json#/$defs/renditionCreatedEvent
    detail: str  # the detail's schema, e.g. https://…/rendition-created.json


@cache
def _kinds() -> dict[str, _Kind]:
    """Each detail-type, read from the envelope union (event.json): the mapping lives in the schemas alone."""
    union = schema("event.json")
    resolver = registry().resolver(base_uri=union["$id"])
    kinds = {}
    for member in union["oneOf"]:
        properties = resolver.lookup(member["$ref"]).contents["properties"]
        kinds[properties["detail-type"]["const"]] = _Kind(
            urljoin(union["$id"], member["$ref"]), urljoin(union["$id"], properties["detail"]["$ref"])
        )
    return kinds


def detail_types() -> list[str]:
    """The detail-types of the contract: "Rendition Created", …"""
    return sorted(_kinds())


def _kind(detail_type: object) -> _Kind:
    if not isinstance(detail_type, str) or detail_type not in _kinds():
        raise ContractError(f"unknown detail-type {detail_type!r}: expected one of {detail_types()}")
    return _kinds()[detail_type]


@cache
def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry())


def _check(ref: str, instance: object, what: str, prefix: list[str]) -> None:
    errors = sorted(_validator(ref).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"  at {'/'.join([*prefix, *map(str, e.absolute_path)]) or 'the event'}: {e.message}" for e in errors]
        raise ContractError(
            f"{what} breaks the contract (contract/schemas/{ref.rsplit('/', 1)[-1]}):\n" + "\n".join(lines)
        )


def validate_detail(detail_type: str, detail: object) -> None:
    """Raises ``ContractError`` unless ``detail`` is a valid detail of ``detail_type`` (e.g. "Rendition Created")."""
    _check(_kind(detail_type).detail, detail, f"{detail_type!r} detail", ["detail"])


def entry_size(source: str, detail_type: str, detail: str, resources: list[str], *, has_time: bool) -> int:
    """The size EventBridge counts for a PutEvents entry: Time (14 bytes when set), Source, DetailType, Detail and
    each Resource, in UTF-8."""
    parts = [source, detail_type, detail, *resources]
    return (14 if has_time else 0) + sum(len(p.encode()) for p in parts)


def _check_size(size: int) -> None:
    if size > MAX_ENTRY_BYTES:
        raise ContractError(f"the entry is {size} bytes, over EventBridge's limit of {MAX_ENTRY_BYTES}")


def validate_event(event: Mapping[str, Any]) -> None:
    """Raises ``ContractError`` unless ``event`` is a valid kiray.imaging event, given either as the PutEvents entry
    we send (``Source``, ``DetailType``, ``Detail`` as a JSON string) or as the EventBridge envelope a consumer
    receives (``source``, ``detail-type``, ``detail`` as an object)."""
    if "DetailType" in event:
        _validate_entry(event)
    elif "detail-type" in event:
        _validate_envelope(event)
    else:
        raise ContractError(
            "neither a PutEvents entry (Source, DetailType, Detail) nor an EventBridge envelope (source, detail-type,"
            f" detail): keys are {sorted(event)}"
        )


def _validate_entry(entry: Mapping[str, Any]) -> None:
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise ContractError(f"PutEvents entry has keys it does not take: {unknown}")
    if entry.get("Source") != SOURCE:
        raise ContractError(f"Source must be {SOURCE!r}, got {entry.get('Source')!r}")
    detail_type, text = entry["DetailType"], entry.get("Detail")
    _kind(detail_type)
    if not isinstance(text, str):
        raise ContractError(f"Detail must be a JSON string, got {type(text).__name__}")
    try:
        detail = json.loads(text)
    except json.JSONDecodeError as e:
        raise ContractError(f"Detail is not JSON: {e}") from None
    validate_detail(detail_type, detail)
    resources = entry.get("Resources", [])
    _check_size(entry_size(SOURCE, detail_type, text, resources, has_time="Time" in entry))


def _validate_envelope(envelope: Mapping[str, Any]) -> None:
    detail_type = envelope["detail-type"]
    # The union's member for this detail-type, not the union: oneOf alone would only say "matches none of them".
    _check(_kind(detail_type).envelope, dict(envelope), f"{detail_type!r} event", [])
    # The entry it came from, as its detail serialised most compactly: a lower bound of what was sent.
    detail = json.dumps(envelope["detail"], ensure_ascii=False, separators=(",", ":"))
    _check_size(entry_size(envelope["source"], detail_type, detail, envelope["resources"], has_time=True))


MOTO_ACCOUNT = "123456789012"


def as_eventbridge_delivers(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """An envelope read back through moto's EventBridge, with the ``account`` real EventBridge always sets and moto
    leaves out (moto's own account id), so that ``validate_event`` checks the rest as the backend will see it."""
    return {"account": MOTO_ACCOUNT, **envelope}
