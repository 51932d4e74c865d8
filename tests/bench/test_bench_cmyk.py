"""bench/cmyk.py on one photo, ours only (sharp's side runs in `make quality`): the report's arithmetic, and the
claim it exists to show — an unprofiled CMYK photo comes out closer to its original through our fallback press
profile than through the naive (1 − C)(1 − K)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import cmyk


def test_delta_e_of_known_colours() -> None:
    white, black = np.full((1, 1, 3), 255.0), np.zeros((1, 1, 3))
    assert cmyk.srgb_to_lab(white)[0, 0] == pytest.approx([100, 0, 0], abs=0.05)
    assert cmyk.srgb_to_lab(black)[0, 0] == pytest.approx([0, 0, 0], abs=0.05)
    # sRGB red is L* 53.2, a* 80.1, b* 67.2 (D65).
    assert cmyk.srgb_to_lab(np.array([[[255.0, 0.0, 0.0]]]))[0, 0] == pytest.approx([53.24, 80.09, 67.20], abs=0.1)
    # SSIM needs an 11x11 window.
    white_image, black_image = np.full((16, 16, 3), 255.0), np.zeros((16, 16, 3))
    assert cmyk.score(white_image, white_image).delta_e == 0
    assert cmyk.score(white_image, black_image).delta_e == pytest.approx(100, abs=0.05)
    assert cmyk.score(white_image, black_image).mae == 255


def test_the_fallback_beats_the_naive_conversion_on_a_real_photo(corpus: Path, tmp_path: Path) -> None:
    rows = cmyk.evaluate([corpus / "Wine_by_Jakub_Mede.jpg"], ["ours"], tmp_path, lambda _: None)

    presses = [press for _, press, _ in rows]
    assert presses == [p.name for p in cmyk.presses()]
    assert any("SWOP" in p for p in presses), "Ghostscript's default_cmyk.icc: the press independent of ours"
    for _, press, results in rows:
        assert results["ours"].delta_e < results[cmyk.NAIVE].delta_e - 2, (press, results)
    assert "| Wine_by_Jakub_Mede.jpg |" in cmyk.table(rows)
