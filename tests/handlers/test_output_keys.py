"""Rendition keys: one folder per upload (its whole key), one file per version (the ETag's token), S3's 1024 bytes."""

from __future__ import annotations

import hashlib

import pytest

from kiray_imaging.output_keys import (
    MAX_KEY_BYTES,
    legacy_rendition_key,
    parse_rendition_key,
    pointer_key,
    rendition_folder,
    rendition_key,
    version_token,
)

ETAG = "9b2cf535f27731c974343645a3985328"
KWARGS = {"source_prefix": "uploads/", "dest_prefix": "renditions/", "rendition": "thumbnail"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("uploads/l42/front.JPG", "renditions/thumbnail/l42/front.JPG/9b2cf535f27731c9.jpg"),
        ("uploads/l42/front", "renditions/thumbnail/l42/front/9b2cf535f27731c9.jpg"),
        ("uploads/a.b/c.d.png", "renditions/thumbnail/a.b/c.d.png/9b2cf535f27731c9.jpg"),
        ("uploads/l42/living room ü.webp", "renditions/thumbnail/l42/living room ü.webp/9b2cf535f27731c9.jpg"),
    ],
)
def test_rendition_key_is_deterministic(source: str, expected: str) -> None:
    assert rendition_key(source, **KWARGS, fmt="jpeg", token=version_token(ETAG)) == expected


def test_sources_that_differ_only_by_extension_never_share_a_key() -> None:
    token = version_token(ETAG)
    jpg = rendition_key("uploads/l7/front.jpg", **KWARGS, fmt="jpeg", token=token)
    png = rendition_key("uploads/l7/front.png", **KWARGS, fmt="jpeg", token=token)
    assert jpg != png
    assert pointer_key("uploads/l7/front.jpg", **KWARGS) != pointer_key("uploads/l7/front.png", **KWARGS)


@pytest.mark.parametrize(
    ("etag", "token"),
    [
        ('"9b2cf535f27731c974343645a3985328"', "9b2cf535f27731c9"),  # quoted, as HEAD gives it
        ("9B2CF535F27731C974343645A3985328", "9b2cf535f27731c9"),
        ("d41d8cd98f00b204e9800998ecf8427e-12", "d41d8cd98f00b204"),  # multipart
    ],
)
def test_the_version_token_is_the_etags_start(etag: str, token: str) -> None:
    assert version_token(etag) == token


def test_an_etag_that_is_not_hex_still_gives_a_deterministic_token() -> None:
    token = version_token("not-an-md5")
    assert token == version_token("not-an-md5")
    assert len(token) == 16
    assert set(token) <= set("0123456789abcdef")
    assert token != version_token("another")


def test_a_new_version_gets_new_keys() -> None:
    one = rendition_key("uploads/l7/front.jpg", **KWARGS, fmt="jpeg", token=version_token(ETAG))
    two = rendition_key("uploads/l7/front.jpg", **KWARGS, fmt="jpeg", token=version_token("0" * 32))
    assert one != two
    assert one.rsplit("/", 1)[0] == two.rsplit("/", 1)[0]  # one folder per upload


def test_key_outside_the_source_prefix_is_a_bug() -> None:
    with pytest.raises(ValueError, match="under 'uploads/'"):
        rendition_folder("elsewhere/x.jpg", source_prefix="uploads/", dest_prefix="r/", rendition="medium")


@pytest.mark.parametrize("filler", ["a", "ü", "東", "🏠"])  # 1 to 4 bytes in UTF-8: cut on a character boundary
def test_keys_over_1024_bytes_keep_a_readable_start_and_end_in_a_hash(filler: str) -> None:
    source = "uploads/l42/" + filler * ((1024 - len("uploads/l42/")) // len(filler.encode()))  # S3's longest keys
    relative = source[len("uploads/") :]
    folder = rendition_folder(source, **KWARGS)
    digest = hashlib.sha256(relative.encode()).hexdigest()
    assert folder.startswith("renditions/thumbnail/l42/" + filler)
    assert folder.endswith(f"-{digest}/")
    for key in (
        rendition_key(source, **KWARGS, fmt="webp", token=version_token(ETAG), variant="@2x"),
        pointer_key(source, **KWARGS),
    ):
        assert key.startswith(folder)
        assert len(key.encode()) <= MAX_KEY_BYTES
    assert rendition_folder(source, **KWARGS) == folder  # deterministic


def test_keys_that_fit_are_left_readable() -> None:
    # The longest relative key whose folder still leaves room for any file name: kept as it is.
    room = MAX_KEY_BYTES - len("renditions/thumbnail/") - len("/") - 32
    source = "uploads/" + "a" * room
    assert rendition_folder(source, **KWARGS) == "renditions/thumbnail/" + "a" * room + "/"
    assert rendition_folder(source + "a", **KWARGS).endswith(hashlib.sha256(b"a" * (room + 1)).hexdigest() + "/")


def test_long_keys_that_differ_only_at_the_end_stay_apart() -> None:
    a, b = "uploads/" + "x" * 1011 + "a.jpg", "uploads/" + "x" * 1011 + "b.jpg"
    assert rendition_folder(a, **KWARGS) != rendition_folder(b, **KWARGS)
    assert rendition_folder(a, **KWARGS)[:900] == rendition_folder(b, **KWARGS)[:900]


def test_a_destination_prefix_that_leaves_no_room_is_a_bug() -> None:
    with pytest.raises(ValueError, match="no room"):
        rendition_folder("uploads/" + "x" * 1000, **{**KWARGS, "dest_prefix": "r" * 1000 + "/"})


def test_keys_read_back() -> None:
    key = rendition_key("uploads/l7/front.jpg", **KWARGS, fmt="webp", token="9b2cf535f27731c9", variant="@2x")
    parsed = parse_rendition_key(key, "renditions/")
    assert parsed is not None
    assert (parsed.rendition, parsed.folder, parsed.token, parsed.variant) == (
        "thumbnail", "renditions/thumbnail/l7/front.jpg/", "9b2cf535f27731c9", "@2x",
    )  # fmt: skip
    state = parse_rendition_key("renditions/medium/l7/front.jpg/current.json", "renditions/")
    assert state is not None
    assert (state.rendition, state.token) == ("medium", None)
    # The keys of the scheme before versioned keys are not of this one.
    assert parse_rendition_key("renditions/thumbnail/l7/front.jpg", "renditions/") is None
    assert parse_rendition_key("uploads/l7/front.jpg", "renditions/") is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("uploads/l42/front.JPG", "renditions/thumbnail/l42/front.jpg"),
        ("uploads/l42/front", "renditions/thumbnail/l42/front.jpg"),
        ("uploads/a.b/c.d.png", "renditions/thumbnail/a.b/c.d.jpg"),
    ],
)
def test_the_keys_before_versioned_keys_are_known_for_the_migration(source: str, expected: str) -> None:
    assert legacy_rendition_key(source, **KWARGS, fmt="jpeg") == expected
    long_source = "uploads/" + "ü" * 508
    legacy = legacy_rendition_key(long_source, **KWARGS, fmt="webp")
    assert len(legacy.encode()) <= MAX_KEY_BYTES
    assert legacy.endswith("-" + hashlib.sha256(("ü" * 508).encode()).hexdigest() + ".webp")
