"""The renditions Kiray publishes. Sizes, fit and quality are product decisions: change them here, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from kiray_imaging.names import Fit, FormatName


@dataclass(frozen=True)
class Preset:
    name: str
    width: int
    height: int
    fit: Fit
    quality: int
    """JPEG quality, 1–100, on libjpeg's scale (the Annex K tables scaled as libjpeg-turbo, and so sharp, scale them):
    the same number gives the same quantisation as sharp's."""
    webp_quality: int = 80
    """WebP quality (libwebp scale, not comparable to JPEG's), 1–100."""
    scales: tuple[int, ...] = (1,)
    """The densities its files are written at: 1, and 2 for an ``@2x`` file of twice the box for high-density
    screens (made from the same decode, and only when the photo fills that box without upscaling)."""
    facts: bool = False
    """Whether its function also tells the backend the upload's ThumbHash placeholder and fingerprint."""

    def quality_for(self, fmt: FormatName) -> int:
        return self.webp_quality if fmt == "webp" else self.quality

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("expected a preset name, got an empty string")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"expected a box of at least 1x1, got {self.width}x{self.height}")
        if self.fit not in ("cover", "inside"):
            raise ValueError(f"expected fit 'cover' or 'inside', got {self.fit!r}")
        if self.scales not in ((1,), (1, 2)):
            raise ValueError(f"expected scales (1,) or (1, 2), got {self.scales}")
        for name, quality in (("quality", self.quality), ("webp_quality", self.webp_quality)):
            if not 1 <= quality <= 100:
                raise ValueError(f"expected {name} in 1..100, got {quality}")


PRESETS: dict[str, Preset] = {
    # Search-result cards: a fixed 4:3 tile, so cropped to fill; and 800x600 for 2x screens. Its function tells the
    # backend the placeholder and fingerprint (the first rendition a listing page needs).
    "thumbnail": Preset(name="thumbnail", width=400, height=300, fit="cover", quality=80, scales=(1, 2), facts=True),
    # Listing gallery: the whole photo, long side at most 1280 px.
    "medium": Preset(name="medium", width=1280, height=1280, fit="inside", quality=82),
}


def resolve(preset: str | Preset) -> Preset:
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"expected a preset in {sorted(PRESETS)}, got {preset!r}") from None


DEPLOYED_FORMATS: dict[str, tuple[FormatName, ...]] = {"thumbnail": ("jpeg",), "medium": ("jpeg", "webp")}
"""The formats each deployed function writes: its ``OUTPUT_FORMAT`` in serverless.yml (a deployment fact, set there;
tests/serverless/test_template.py holds the two together). Read by the tools that render as the functions do
(``batch``, ``backfill --local``, ``make dev``)."""
