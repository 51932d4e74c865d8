from __future__ import annotations

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
