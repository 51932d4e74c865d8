from __future__ import annotations

import hashlib

import pytest

from kiray_imaging.output_keys import rendition_key


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("uploads/l42/front.JPG", "renditions/thumbnail/l42/front.jpg"),
        ("uploads/l42/front", "renditions/thumbnail/l42/front.jpg"),
        ("uploads/a.b/c.d.png", "renditions/thumbnail/a.b/c.d.jpg"),
        ("uploads/l42/living room ü.webp", "renditions/thumbnail/l42/living room ü.jpg"),
    ],
)
def test_rendition_key_is_deterministic(source: str, expected: str) -> None:
    kwargs = {"source_prefix": "uploads/", "dest_prefix": "renditions/", "rendition": "thumbnail", "fmt": "jpeg"}
    assert rendition_key(source, **kwargs) == expected


def test_key_outside_the_source_prefix_is_a_bug() -> None:
    with pytest.raises(ValueError, match="under 'uploads/'"):
        rendition_key("elsewhere/x.jpg", source_prefix="uploads/", dest_prefix="r/", rendition="medium", fmt="jpeg")


KWARGS = {"source_prefix": "uploads/", "dest_prefix": "renditions/", "rendition": "thumbnail", "fmt": "jpeg"}


def test_keys_that_fit_are_left_readable() -> None:
    # renditions/thumbnail/ is 14 bytes longer than uploads/; .jpg replaces an extension of up to the same length.
    source = "uploads/" + "a" * (1024 - len("renditions/thumbnail/") - len(".jpg")) + ".png"
    key = rendition_key(source, **KWARGS)
    assert len(key.encode()) == 1024
    assert key == "renditions/thumbnail/" + source[len("uploads/") : -len(".png")] + ".jpg"


@pytest.mark.parametrize("filler", ["a", "ü", "東", "🏠"])  # 1 to 4 bytes in UTF-8: cut on a character boundary
def test_keys_over_1024_bytes_keep_a_readable_start_and_end_in_a_hash(filler: str) -> None:
    source = "uploads/l42/" + filler * ((1024 - len("uploads/l42/")) // len(filler.encode()))  # S3's longest keys
    relative = source[len("uploads/") :]
    key = rendition_key(source, **KWARGS)
    assert len(key.encode()) <= 1024
    assert len(key.encode()) > 1024 - 4  # as much readable text as fits
    digest = hashlib.sha256(relative.encode()).hexdigest()
    assert key.startswith("renditions/thumbnail/l42/" + filler)
    assert key.endswith(f"-{digest}.jpg")
    assert rendition_key(source, **KWARGS) == key  # deterministic
    assert rendition_key(source, **{**KWARGS, "fmt": "webp"}).endswith(f"-{digest}.webp")


def test_long_keys_that_differ_only_at_the_end_stay_apart() -> None:
    a, b = "uploads/" + "x" * 1011 + "a.jpg", "uploads/" + "x" * 1011 + "b.jpg"
    assert rendition_key(a, **KWARGS) != rendition_key(b, **KWARGS)
    assert rendition_key(a, **KWARGS)[:900] == rendition_key(b, **KWARGS)[:900]


def test_a_destination_prefix_that_leaves_no_room_is_a_bug() -> None:
    with pytest.raises(ValueError, match="no room"):
        rendition_key("uploads/" + "x" * 1000, **{**KWARGS, "dest_prefix": "r" * 1000 + "/"})
