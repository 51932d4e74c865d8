"""Settings come from the environment serverless.yml sets; mistakes are caught at cold start."""

from __future__ import annotations

import pytest

from kiray_imaging.config import ConfigError, load

BASE = {"SOURCE_BUCKET": "b", "DEST_BUCKET": "b"}


def test_defaults_and_prefix_normalisation() -> None:
    s = load({**BASE, "SOURCE_PREFIX": "/incoming", "DEST_PREFIX": "out"})
    assert (s.source_prefix, s.dest_prefix) == ("incoming/", "out/")
    assert s.output_formats == ("jpeg",)
    assert load({**BASE, "SOURCE_PREFIX": "u/", "DEST_PREFIX": "r/", "OUTPUT_FORMAT": "JPEG, webp"}).output_formats == (
        "jpeg",
        "webp",
    )
    assert s.max_input_bytes == 50 * 1024 * 1024
    assert s.max_pixels == 50_000_000
    assert "immutable" in s.cache_control


def test_missing_buckets_are_named() -> None:
    with pytest.raises(ConfigError, match="SOURCE_BUCKET, DEST_BUCKET"):
        load({})


@pytest.mark.parametrize(("source", "dest"), [("uploads/", "uploads/renditions/"), ("", "renditions/"), ("a/", "a/")])
def test_overlapping_prefixes_in_one_bucket_are_refused(source: str, dest: str) -> None:
    # Renditions written where uploads are read would re-trigger the functions forever.
    with pytest.raises(ConfigError, match="overlap"):
        load({**BASE, "SOURCE_PREFIX": source, "DEST_PREFIX": dest})


def test_same_prefix_in_another_bucket_is_fine() -> None:
    s = load({"SOURCE_BUCKET": "a", "DEST_BUCKET": "b", "SOURCE_PREFIX": "x/", "DEST_PREFIX": "x/"})
    assert s.dest_bucket == "b"


@pytest.mark.parametrize(
    ("name", "value"),
    [("MAX_PIXELS", "0"), ("MAX_INPUT_BYTES", "ten"), ("OUTPUT_FORMAT", "bmp"), ("OUTPUT_FORMAT", "jpeg,jpeg")],
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load({**BASE, "SOURCE_PREFIX": "u/", "DEST_PREFIX": "r/", name: value})


def test_a_destination_prefix_too_long_for_s3_keys_is_refused() -> None:
    # Rendition keys need room for the rendition name and a sha256 within S3's 1024 bytes (output_keys).
    load({**BASE, "SOURCE_PREFIX": "u/", "DEST_PREFIX": "r" * 511})
    with pytest.raises(ConfigError, match="DEST_PREFIX: at most 512 bytes"):
        load({**BASE, "SOURCE_PREFIX": "u/", "DEST_PREFIX": "ü" * 256})
