"""`render_presets`: several presets from one decode. The preset that sets the shrink gets exactly what
`render_formats` gives it; a smaller one gets the same size and nearly the same pixels; orientation, formats and
errors as the one-preset calls."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageChops, ImageStat

from kiray_imaging import DecodeError, render, render_formats, render_presets

if TYPE_CHECKING:
    from tests import images
else:
    import images

BOTH = {"thumbnail": ("jpeg",), "medium": ("jpeg", "webp")}


def _progressive_photo() -> bytes:
    # 4000x3000 progressive: alone, the thumbnail decodes at 1/8 from the DC scans; the medium needs 1/2. Detail
    # coarse enough for a 400x300 thumbnail to show it (finer detail would alias differently from each decode).
    detail = images.noise((500, 375), seed=7).resize((4000, 3000), Image.Resampling.BICUBIC)
    return images.jpeg(detail, progressive=True, quality=90)


def _mean_difference(a: bytes, b: bytes) -> float:
    with Image.open(io.BytesIO(a)) as x, Image.open(io.BytesIO(b)) as y:
        return sum(ImageStat.Stat(ImageChops.difference(x.convert("RGB"), y.convert("RGB"))).mean) / 3


def test_one_decode_serves_both_presets() -> None:
    data = _progressive_photo()
    out = render_presets(data, BOTH)
    assert list(out) == ["thumbnail", "medium"]
    assert list(out["medium"]) == ["jpeg", "webp"]
    medium = render_formats(data, "medium", ("jpeg", "webp"))
    assert out["medium"]["jpeg"].data == medium["jpeg"].data
    assert out["medium"]["webp"].data == medium["webp"].data

    alone = render(data, "thumbnail")
    shared = out["thumbnail"]["jpeg"]
    assert (alone.shrink_on_load, shared.shrink_on_load) == (8, 2)
    assert (shared.width, shared.height) == (alone.width, alone.height) == (400, 300)
    assert _mean_difference(shared.data, alone.data) < 3.0
    # One decode: every rendition reports that same decode.
    decodes = {r.timings_ms["decode"] for renditions in out.values() for r in renditions.values()}
    assert len(decodes) == 1


@pytest.mark.parametrize("order", [("thumbnail", "medium"), ("medium", "thumbnail")])
def test_the_order_of_presets_changes_nothing(order: tuple[str, str]) -> None:
    # The last preset takes the decoded pixels, the others borrow them; a 900x600 source is the medium as it is
    # (nothing to resize, so the pixels themselves are handed on or copied).
    data = images.jpeg(images.noise((900, 600), seed=3))
    out = render_presets(data, {name: ("jpeg",) for name in order})
    for name in order:
        assert out[name]["jpeg"].data == render(data, name).data, name


def test_orientation_applies_to_every_preset() -> None:
    data = images.oriented(images.arrow_picture((1600, 1200)), 6, "JPEG")
    out = render_presets(data, {"thumbnail": ("jpeg",), "medium": ("jpeg",)})
    for name, size in (("thumbnail", (400, 300)), ("medium", (1280, 960))):
        r = out[name]["jpeg"]
        assert (r.width, r.height, r.orientation) == (*size, 6)
        # The thumbnail alone decodes at 1/2, here at full size with the medium: close, not equal.
        assert _mean_difference(r.data, render(data, name).data) < 1.0


def test_errors_are_those_of_one_preset() -> None:
    with pytest.raises(ValueError, match="at least one preset"):
        render_presets(b"x", {})
    with pytest.raises(ValueError, match="at least one format"):
        render_presets(b"x", {"thumbnail": ()})
    with pytest.raises(ValueError, match="expected a preset in"):
        render_presets(b"x", {"poster": ("jpeg",)})
    with pytest.raises(DecodeError):
        render_presets(b"\xff\xd8\xff\xe0 not a jpeg", BOTH)
