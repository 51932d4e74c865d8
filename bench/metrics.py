"""Full-reference image metrics: SSIM on luma and PSNR on RGB, numpy only.

SSIM follows Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 2004: an 11x11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, statistics taken
only where the whole window fits (MATLAB's ``filter2(..., 'valid')``), and the mean of the SSIM map. Unlike the
authors' ssim.m wrapper we do not downsample first: renditions are compared at their delivered size, where every
pixel is seen.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

WINDOW_SIZE = 11
SIGMA = 1.5
K1 = 0.01
K2 = 0.03
DYNAMIC_RANGE = 255.0

# ITU-R BT.601 luma weights: what JPEG's YCbCr uses, so SSIM looks at the channel the encoders spend most bits on.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

FloatArray = NDArray[np.float64]


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = SIGMA) -> FloatArray:
    """The 1-D normalised Gaussian; the 2-D window is its outer product, which is why filtering can be separable."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    result: FloatArray = g / g.sum()
    return result


def luma(image: NDArray[np.floating] | NDArray[np.integer]) -> FloatArray:
    """BT.601 luma of an HxWx3 RGB array; an HxW array is taken to be luma already."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        return a
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an HxW or HxWx3 array, got shape {a.shape}")
    r, g, b = LUMA_WEIGHTS
    result: FloatArray = r * a[..., 0] + g * a[..., 1] + b * a[..., 2]
    return result


def _filter_valid(image: FloatArray, window: FloatArray) -> FloatArray:
    """Correlates with the separable window over positions where it fits entirely (the window is symmetric, so this
    is also the convolution)."""
    n = window.size
    h, w = image.shape
    rows = np.zeros((h, w - n + 1), dtype=np.float64)
    for k in range(n):
        rows += window[k] * image[:, k : k + w - n + 1]
    out = np.zeros((h - n + 1, w - n + 1), dtype=np.float64)
    for k in range(n):
        out += window[k] * rows[k : k + h - n + 1, :]
    return out


def ssim_map(x: FloatArray, y: FloatArray) -> FloatArray:
    """The local SSIM index of two same-sized single-channel images, one value per full window position."""
    if x.shape != y.shape:
        raise ValueError(f"images differ in size: {x.shape} vs {y.shape}")
    if x.ndim != 2 or min(x.shape) < WINDOW_SIZE:
        raise ValueError(f"expected 2-D images of at least {WINDOW_SIZE}x{WINDOW_SIZE}, got shape {x.shape}")
    window = gaussian_window()
    c1 = (K1 * DYNAMIC_RANGE) ** 2
    c2 = (K2 * DYNAMIC_RANGE) ** 2
    mu_x = _filter_valid(x, window)
    mu_y = _filter_valid(y, window)
    # float64 throughout: E[x²] − E[x]² cancels catastrophically in float32 on flat 8-bit areas.
    var_x = _filter_valid(x * x, window) - mu_x * mu_x
    var_y = _filter_valid(y * y, window) - mu_y * mu_y
    cov = _filter_valid(x * y, window) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    result: FloatArray = numerator / denominator
    return result


def ssim(a: NDArray[np.floating] | NDArray[np.integer], b: NDArray[np.floating] | NDArray[np.integer]) -> float:
    """Mean SSIM of two same-sized images (HxWx3 RGB, compared on BT.601 luma, or HxW luma), values in 0..255."""
    return float(ssim_map(luma(a), luma(b)).mean())


def psnr(a: NDArray[np.floating] | NDArray[np.integer], b: NDArray[np.floating] | NDArray[np.integer]) -> float:
    """PSNR in dB over all channels of two same-shaped images in 0..255; ``inf`` when they are identical."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DYNAMIC_RANGE**2 / mse)
