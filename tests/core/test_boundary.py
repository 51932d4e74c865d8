"""The native boundary declared once: the `Rendition` record, the output-format table, the source formats and the
geometry plan come from the core (rust_core/src/python.rs); the `Literal` types of `kiray_imaging.names` and the
Python tables derived from them must agree with it."""

from __future__ import annotations

import dataclasses
import io
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from PIL import Image

from kiray_imaging import _core, names, output_keys, plan, render, render_formats
from kiray_imaging.config import ConfigError, load
from kiray_imaging.presets import DEPLOYED_FORMATS, PRESETS
from kiray_imaging.rendering import FORMATS, Rendition

if TYPE_CHECKING:
    from tests import images
else:
    import images


def test_the_literal_types_are_the_cores_tables() -> None:
    assert typing.get_args(names.FormatName) == tuple(f.name for f in _core.OUTPUT_FORMATS) == FORMATS
    assert typing.get_args(names.SourceFormat) == _core.SOURCE_FORMATS
    assert typing.get_args(names.Fit) == ("cover", "inside")
    rendition = render(images.jpeg(images.noise((640, 480))), "thumbnail")
    assert tuple(rendition.timings_ms) == typing.get_args(names.Stage)


def test_every_table_of_formats_is_read_from_the_core() -> None:
    table = {f.name: (f.content_type, f.extension) for f in _core.OUTPUT_FORMATS}
    assert table == {"jpeg": ("image/jpeg", ".jpg"), "webp": ("image/webp", ".webp")}
    assert {name: ext for name, (_, ext) in table.items()} == output_keys.EXTENSIONS
    for formats in DEPLOYED_FORMATS.values():
        assert set(formats) <= set(FORMATS)
    with pytest.raises(ConfigError, match=r"expected distinct formats from \('jpeg', 'webp'\)"):
        load({"SOURCE_BUCKET": "b", "DEST_BUCKET": "b", "SOURCE_PREFIX": "u/", "OUTPUT_FORMAT": "avif"})


def test_a_rendition_is_one_frozen_record() -> None:
    r = render_formats(images.jpeg(images.noise((1200, 900))), "medium", ("jpeg", "webp"))
    jpeg, webp = r["jpeg"], r["webp"]
    assert isinstance(jpeg, Rendition)
    assert Rendition is _core.Rendition
    assert (jpeg.format, jpeg.content_type, jpeg.extension) == ("jpeg", "image/jpeg", ".jpg")
    assert (webp.format, webp.content_type, webp.extension) == ("webp", "image/webp", ".webp")
    assert jpeg.data.startswith(b"\xff\xd8\xff")
    assert webp.data[8:12] == b"WEBP"
    with pytest.raises(AttributeError):
        cast(Any, jpeg).width = 1
    timings = jpeg.timings_ms
    timings["decode"] = -1.0
    assert jpeg.timings_ms["decode"] >= 0, "the record hands out copies"
    assert "bytes=" in repr(jpeg)
    assert "data" not in repr(jpeg)
    assert jpeg == jpeg
    assert jpeg != webp


def test_a_rendition_built_in_python_is_checked_like_one_the_core_made() -> None:
    fields = dict(data=b"x", width=1, height=1, format="jpeg", source_format="png", source_width=2, source_height=2,
                  orientation=1, shrink_on_load=1, timings_ms={"decode": 1.5})  # fmt: skip
    made = Rendition(**cast(Any, fields))
    assert (made.content_type, made.timings_ms) == ("image/jpeg", {"decode": 1.5})
    assert made == Rendition(**cast(Any, fields), content_type="image/jpeg")
    for wrong, message in (
        ({"format": "gif"}, r"expected format in \('jpeg', 'webp'\), got 'gif'"),
        ({"source_format": "heic"}, "expected source_format in"),
        ({"timings_ms": {"upload": 1.0}}, "expected timings of stages"),
        ({"content_type": "image/png"}, "expected content_type 'image/jpeg'"),
    ):
        with pytest.raises(ValueError, match=message):
            Rendition(**cast(Any, fields | wrong))


@dataclasses.dataclass(frozen=True)
class _Photo:
    name: str
    progressive: bool


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize(
    "photo",
    [_Photo("Dragonfly_by_Bolly.jpg", True), _Photo("Wine_by_Jakub_Mede.jpg", True),
     _Photo("Grey_plasma_gray.jpg", False), _Photo("derived_phone_pug_p3.jpg", False)],
    ids=lambda p: p.name,
)  # fmt: skip
def test_the_plan_is_what_the_core_does(corpus: Path, photo: _Photo, preset: str) -> None:
    data = (corpus / photo.name).read_bytes()
    r = render(data, preset)
    orientation = r.orientation
    p = plan(r.source_width, r.source_height, preset, orientation=orientation, eighth_is_cheap=photo.progressive)
    displayed = (p.out_height, p.out_width) if orientation in (5, 6, 7, 8) else (p.out_width, p.out_height)
    assert displayed == (r.width, r.height)
    assert p.shrink_on_load == r.shrink_on_load
    assert p.crop_left >= 0
    assert p.crop_left + p.crop_width <= r.source_width + 1e-9
    assert p.crop_top >= 0
    assert p.crop_top + p.crop_height <= r.source_height + 1e-9


def test_the_plan_turns_the_box_for_a_quarter_turn() -> None:
    upright = plan(4000, 3000, "thumbnail")
    turned = plan(4000, 3000, "thumbnail", orientation=6)
    assert (upright.out_width, upright.out_height) == (400, 300)
    assert (turned.out_width, turned.out_height) == (300, 400)
    data = images.oriented(images.noise((800, 600)), 6, "JPEG")
    stored = Image.open(io.BytesIO(data))
    r = render(data, "thumbnail")
    assert (stored.width, stored.height, r.source_width, r.orientation) == (600, 800, 600, 6)
    p = plan(stored.width, stored.height, "thumbnail", orientation=6)
    assert (p.out_height, p.out_width) == (r.width, r.height)
    with pytest.raises(ValueError, match="expected fit 'cover' or 'inside'"):
        _core.plan(10, 10, box_width=5, box_height=5, fit=cast(Any, "fill"))
    with pytest.raises(ValueError, match="expected sizes ≥ 1"):
        _core.plan(0, 10, box_width=5, box_height=5, fit="cover")
