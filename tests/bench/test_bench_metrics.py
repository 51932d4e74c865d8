"""SSIM and PSNR (bench/metrics.py): the numbers the fidelity gate stands on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from bench import metrics


def _photo_like(seed: int = 0, size: tuple[int, int] = (96, 64)) -> NDArray[np.float64]:
    """Seeded smooth noise with edges: enough structure for blur and shifts to matter."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(size[1] // 8, size[0] // 8, 3)).astype(np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float64)


def _blurred(image: NDArray[np.float64], radius: float) -> NDArray[np.float64]:
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return np.asarray(pil.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float64)


def _brute_force_ssim(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """The paper's definition, window by window with the full 2-D Gaussian: slow, obviously right."""
    g = metrics.gaussian_window()
    w2 = np.outer(g, g)
    n = g.size
    c1 = (metrics.K1 * 255) ** 2
    c2 = (metrics.K2 * 255) ** 2
    values = []
    for i in range(x.shape[0] - n + 1):
        for j in range(x.shape[1] - n + 1):
            a = x[i : i + n, j : j + n]
            b = y[i : i + n, j : j + n]
            mu_a = float((w2 * a).sum())
            mu_b = float((w2 * b).sum())
            var_a = float((w2 * (a - mu_a) ** 2).sum())
            var_b = float((w2 * (b - mu_b) ** 2).sum())
            cov = float((w2 * (a - mu_a) * (b - mu_b)).sum())
            values.append(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_gaussian_window_is_normalised_symmetric_and_peaked() -> None:
    g = metrics.gaussian_window()
    assert g.shape == (11,)
    assert g.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(g, g[::-1])
    assert int(np.argmax(g)) == 5
    # σ = 1.5: the centre tap against its neighbour is exp(1 / (2 · 1.5²)).
    assert g[5] / g[4] == pytest.approx(math.exp(1 / 4.5))


def test_identical_images_score_one_and_infinite_psnr() -> None:
    image = _photo_like()
    assert metrics.ssim(image, image.copy()) == pytest.approx(1.0, abs=1e-12)
    assert metrics.psnr(image, image.copy()) == math.inf


def test_blur_lowers_ssim_and_more_blur_lowers_it_more() -> None:
    image = _photo_like(1)
    slight = metrics.ssim(image, _blurred(image, 0.8))
    strong = metrics.ssim(image, _blurred(image, 2.5))
    assert 0 < strong < slight < 1.0
    assert metrics.psnr(image, _blurred(image, 2.5)) < metrics.psnr(image, _blurred(image, 0.8))


def test_a_one_pixel_shift_lowers_ssim() -> None:
    image = _photo_like(2)
    shifted = np.roll(image, 1, axis=1)
    assert metrics.ssim(image, shifted) < 0.99


def test_constant_images_follow_the_luminance_term_exactly() -> None:
    # No variance anywhere, so SSIM is (2·μx·μy + C1) / (μx² + μy² + C1): a value worked out by hand.
    a = np.full((16, 16, 3), 100.0)
    b = np.full((16, 16, 3), 110.0)
    c1 = (0.01 * 255) ** 2
    assert metrics.ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), rel=1e-12)


def test_separable_filtering_matches_the_2d_definition() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, size=(20, 24))
    y = np.clip(x + rng.normal(0, 12, size=x.shape), 0, 255)
    assert metrics.ssim(x, y) == pytest.approx(_brute_force_ssim(x, y), rel=1e-9)


def test_ssim_is_measured_on_bt601_luma() -> None:
    red = np.zeros((12, 12, 3))
    red[..., 0] = 255
    assert metrics.luma(red)[0, 0] == pytest.approx(0.299 * 255)
    # A hue change that keeps luma is invisible to SSIM on luma, by design; PSNR on RGB sees it.
    grey = np.full((12, 12, 3), 128.0)
    tinted = grey + np.array([0.587 * 10, -0.299 * 10, 0.0])
    assert metrics.ssim(grey, tinted) == pytest.approx(1.0)
    assert metrics.psnr(grey, tinted) < 50


def test_psnr_of_a_uniform_error() -> None:
    a = np.zeros((8, 8, 3))
    assert metrics.psnr(a, a + 10) == pytest.approx(10 * math.log10(255**2 / 100))


def test_mismatched_or_tiny_images_are_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        metrics.ssim(np.zeros((20, 20, 3)), np.zeros((20, 21, 3)))
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((10, 40, 3)), np.zeros((10, 40, 3)))
    with pytest.raises(ValueError, match="differ"):
        metrics.psnr(np.zeros((2, 2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="HxWx3"):
        metrics.luma(np.zeros((4, 4, 4)))
