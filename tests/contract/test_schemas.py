"""The schemas themselves: valid draft 2020-12, every field described, every reference resolving; the example events
of the contract valid, and each rule the schemas promise refusing what breaks it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft202012Validator

if TYPE_CHECKING:
    from tests.contract.validate import SCHEMAS, ContractError, registry, schema, validate_event
else:
    from validate import SCHEMAS, ContractError, registry, schema, validate_event

EXAMPLES = Path(__file__).resolve().parent / "examples"
SCHEMA_FILES = sorted(p.name for p in SCHEMAS.glob("*.json"))
VALID = sorted(p.name for p in EXAMPLES.glob("*.json"))
INVALID = sorted(p.name for p in (EXAMPLES / "invalid").glob("*.json"))


def example(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return event


def union() -> Draft202012Validator:
    """The envelope union itself (event.json), as a consumer validating what it receives would use it."""
    return Draft202012Validator(schema("event.json"), registry=registry())


def subschemas(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside a schema, with where it is."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key not in ("const", "enum", "examples", "default"):
                yield from subschemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from subschemas(value, f"{path}/{i}")


def test_the_contract_has_its_three_details_and_the_envelope() -> None:
    assert set(SCHEMA_FILES) == {
        "common.json",
        "event.json",
        "rendition-created.json",
        "rendition-failed.json",
        "renditions-deleted.json",
    }


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_each_schema_is_valid_draft_2020_12(name: str) -> None:
    s = schema(name)
    Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["$id"].endswith(f"/schemas/{name}")
    assert s["title"]
    assert s["description"]


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_property_and_definition_is_described(name: str) -> None:
    """The descriptions become the doc comments of the TypeScript types: a field without one is undocumented there."""
    s = schema(name)
    resolver = registry().resolver(base_uri=s["$id"])
    missing = []
    for path, node in subschemas(s):
        if {"if", "then", "else"} & set(path.split("/")):
            continue  # a condition on fields declared (and described) beside it
        described = {**node.get("properties", {}), **node.get("$defs", {})}
        for field, sub in described.items():
            target = resolver.lookup(sub["$ref"]).contents if "$ref" in sub and "description" not in sub else sub
            if not target.get("description"):
                missing.append(f"{path}/{field}")
    assert not missing, f"{name}: no description for {missing}"


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_reference_resolves(name: str) -> None:
    s = schema(name)
    resolver = registry().resolver(base_uri=s["$id"])
    refs = [node["$ref"] for _, node in subschemas(s) if "$ref" in node]
    for ref in refs:
        resolver.lookup(ref)  # raises on a reference to nothing
    assert refs or name == "common.json"


@pytest.mark.parametrize("name", VALID)
def test_the_contract_examples_are_valid(name: str) -> None:
    event = example(name)
    validate_event(event)
    assert not list(union().iter_errors(event))


def test_there_is_an_example_of_each_detail_type() -> None:
    assert sorted(example(name)["detail-type"] for name in VALID) == [
        "Rendition Created",
        "Rendition Failed",
        "Renditions Deleted",
    ]


@pytest.mark.parametrize("name", INVALID)
def test_the_invalid_examples_are_refused_for_their_reason(name: str) -> None:
    case = example(f"invalid/{name}")
    with pytest.raises(ContractError) as refused:
        validate_event(case["event"])
    assert case["expect"] in str(refused.value), case["why"]
    assert list(union().iter_errors(case["event"]))


Mutation = Callable[[dict[str, Any]], None]


def set_at(path: str, value: Any) -> Mutation:
    """Sets the field at a slash-separated path of the event (list indices as numbers)."""

    def mutate(event: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        node: Any = event
        for p in parents:
            node = node[p]
        node[last] = value

    return mutate


def drop(path: str) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = event
        for p in parents:
            node = node[int(p) if p.isdigit() else p]
        del node[last]

    return mutate


CREATED, FAILED, DELETED = "rendition-created.json", "rendition-failed.json", "renditions-deleted.json"

# What the contract leaves open, or optional: events that must pass.
ACCEPTED: dict[str, tuple[str, list[Mutation]]] = {
    "medium without placeholder or fingerprint": (
        CREATED,
        [set_at("detail/rendition", "medium"), drop("detail/placeholder"), drop("detail/fingerprint")],
    ),
    "no versionId, sequencer or replaces (unversioned bucket, a backfill, a first version)": (
        CREATED,
        [drop("detail/upload/versionId"), drop("detail/upload/sequencer"), drop("detail/replaces")],
    ),
    "a medium's WebP file": (
        CREATED,
        [set_at("detail/files/1/format", "webp"), set_at("detail/files/1/contentType", "image/webp")],
    ),
    "a multipart upload's ETag": (CREATED, [set_at("detail/upload/etag", "d41d8cd98f00b204e9800998ecf8427e-12")]),
    "a padded ThumbHash": (CREATED, [set_at("detail/placeholder/thumbHash", "KCkqKywtLi8wMTIzNDU2Nzg5Ojs=")]),
    "an error class not known yet": (FAILED, [set_at("detail/error/class", "ThrottlingException")]),
    "a KMS error class": (FAILED, [set_at("detail/error/class", "KMS.DisabledException")]),
    "a failure before S3 told the ETag": (FAILED, [drop("detail/upload/etag")]),
    "a deleted upload that never had renditions": (DELETED, [set_at("detail/keys", [])]),
    "a field EventBridge or moto adds to the envelope": (DELETED, [set_at("ingestion-time", 1.7e9)]),
    "a replayed event": (DELETED, [set_at("replay-name", "backfill-2026-11")]),
}

# Each rule the schemas promise, broken once: (example, mutations, a fragment of the error it must give).
REFUSED: dict[str, tuple[str, list[Mutation], str]] = {
    "a thumbnail without its placeholder": (
        CREATED,
        [drop("detail/placeholder")],
        "at detail: 'placeholder' is a required property",
    ),
    "a thumbnail without its fingerprint": (
        CREATED,
        [drop("detail/fingerprint")],
        "at detail: 'fingerprint' is a required property",
    ),
    "no files": (CREATED, [set_at("detail/files", [])], "at detail/files: [] should be non-empty"),
    "a JPEG sent as image/webp": (
        CREATED,
        [set_at("detail/files/0/contentType", "image/webp")],
        "at detail/files/0/contentType: 'image/jpeg' was expected",
    ),
    "a PNG file": (CREATED, [set_at("detail/files/0/format", "png")], "at detail/files/0/format: 'png' is not one of"),
    "a 3x file": (CREATED, [set_at("detail/files/1/scale", 3)], "at detail/files/1/scale: 3 is not one of [1, 2]"),
    "a zero-width file": (CREATED, [set_at("detail/files/0/width", 0)], "at detail/files/0/width: 0 is less than"),
    "a fractional height": (
        CREATED,
        [set_at("detail/upload/height", 3168.5)],
        "at detail/upload/height: 3168.5 is not of type 'integer'",
    ),
    "an upload in a format we never take": (
        CREATED,
        [set_at("detail/upload/format", "heic")],
        "at detail/upload/format: 'heic' is not one of",
    ),
    "a quoted ETag": (
        CREATED,
        [set_at("detail/upload/etag", '"9b2cf535f27731c974343645a3985328"')],
        "at detail/upload/etag: '\"9b2cf535f27731c974343645a3985328\"' does not match",
    ),
    "a ThumbHash in base64url": (
        CREATED,
        [set_at("detail/placeholder/thumbHash", "1QcSHQRnh493V4dIh4eXh1h4kJU_")],
        "at detail/placeholder/thumbHash: '1QcSHQRnh493V4dIh4eXh1h4kJU_' does not match",
    ),
    "another fingerprint algorithm": (
        CREATED,
        [set_at("detail/fingerprint/algorithm", "dhash")],
        "at detail/fingerprint/algorithm: 'phash-dct64' was expected",
    ),
    "an undocumented field in a file": (
        CREATED,
        [set_at("detail/files/0/content_type", "image/jpeg")],
        "at detail/files/0: Additional properties are not allowed ('content_type' was unexpected)",
    ),
    "an undocumented field in the detail": (
        DELETED,
        [set_at("detail/deletedAt", "2026-11-02T09:14:07Z")],
        "at detail: Additional properties are not allowed ('deletedAt' was unexpected)",
    ),
    "a later schemaVersion": (FAILED, [set_at("detail/schemaVersion", 2)], "at detail/schemaVersion: 1 was expected"),
    "a message with a stack trace": (
        FAILED,
        [set_at("detail/error/message", "Traceback (most recent call last):\n  File …")],
        "at detail/error/message: 'Traceback (most recent call last):\\n  File …' does not match",
    ),
    "a message for nobody": (
        FAILED,
        [set_at("detail/error/message", "")],
        "at detail/error/message: '' should be non-empty",
    ),
    "a sentence as the error class": (
        FAILED,
        [set_at("detail/error/class", "Unsupported format!")],
        "at detail/error/class: 'Unsupported format!' does not match",
    ),
    "a deletion without its keys": (DELETED, [drop("detail/keys")], "at detail: 'keys' is a required property"),
    "a deleted key twice": (
        DELETED,
        [set_at("detail/keys", ["renditions/medium/l7/front.jpg/9b2cf535f27731c9.jpg"] * 2)],
        "at detail/keys: ['renditions/medium/l7/front.jpg/9b2cf535f27731c9.jpg', "
        "'renditions/medium/l7/front.jpg/9b2cf535f27731c9.jpg'] has non-unique elements",
    ),
    "an empty upload key": (DELETED, [set_at("detail/upload/key", "")], "at detail/upload/key: ''"),
    "a detail under another detail-type": (
        CREATED,
        [set_at("detail-type", "Rendition Failed")],
        "at detail: 'error' is a required property",
    ),
    "another source": (DELETED, [set_at("source", "kiray.other")], "at source: 'kiray.imaging' was expected"),
    "an envelope without its id": (DELETED, [drop("id")], "at the event: 'id' is a required property"),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_what_the_contract_leaves_open_is_accepted(case: str) -> None:
    name, mutations = ACCEPTED[case]
    event = copy.deepcopy(example(name))
    for mutate in mutations:
        mutate(event)
    validate_event(event)
    assert not list(union().iter_errors(event))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_promise_broken_is_refused(case: str) -> None:
    name, mutations, expected = REFUSED[case]
    event = copy.deepcopy(example(name))
    for mutate in mutations:
        mutate(event)
    with pytest.raises(ContractError) as refused:
        validate_event(event)
    assert expected in str(refused.value)
    assert list(union().iter_errors(event))
