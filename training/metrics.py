"""The image measures of the held-out evaluation (:mod:`mmrealsr_training.evaluate`): luma, PSNR, SSIM,
sharpness, residual noise in flat regions, the monotonicity and rank checks of a sweep, and the quality
figure's bicubic baseline and luma PSNR. Numpy, one image at a time; images are (H, W, 3) RGB or (H, W)
luma in [0, 1] unless a function says it takes tensors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

__all__ = [
    "BORDER",
    "CONSTANT_ESTIMATE_RANGE",
    "FLAT_FRACTION",
    "FLAT_WINDOW",
    "HIGH_PASS_SIGMA",
    "MONOTONE_RTOL",
    "PSNR_CAP_DB",
    "FloatArray",
    "bicubic_upscale",
    "crop_border",
    "flat_mask",
    "high_pass_std",
    "is_monotone",
    "laplacian_variance",
    "luma",
    "luma_psnr",
    "psnr",
    "spearman",
    "ssim",
    "to_image",
]

#: Relative tolerance of the monotonicity check.
MONOTONE_RTOL = 1e-4
#: HR pixels cropped from every border before any metric.
BORDER = 4
#: The high-pass for residual noise: luma minus its Gaussian blur of this sigma (HR px).
HIGH_PASS_SIGMA = 2.0
#: Flat regions: the lowest share of the ground truth's local std, over a square window.
FLAT_FRACTION = 0.25
FLAT_WINDOW = 9
#: PSNR reported for identical images (instead of infinity, so that the JSON stays valid).
PSNR_CAP_DB = 100.0
#: An estimate whose range over a sweep is at most this has no ranking (Spearman scored 0).
CONSTANT_ESTIMATE_RANGE = 1e-6

FloatArray = NDArray[np.float64]


def luma(rgb: NDArray[Any]) -> FloatArray:
    """Y of BT.601 YCbCr in studio range (16-235)/255, the SR benchmarks' luma.

    Args:
        rgb: (H, W, 3) RGB in [0, 1].

    Returns:
        (H, W) float64 in [16/255, 235/255].
    """
    x = np.asarray(rgb, dtype=np.float64)
    return (16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def psnr(a: NDArray[Any], b: NDArray[Any], *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, capped at ``PSNR_CAP_DB`` for identical images."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse <= 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(data_range**2 / mse))


def ssim(a: NDArray[Any], b: NDArray[Any], *, data_range: float = 1.0) -> float:
    """SSIM of two single-channel images (Gaussian window, sigma 1.5, as in Wang et al. 2004)."""
    return float(
        structural_similarity(
            np.asarray(a, np.float64),
            np.asarray(b, np.float64),
            data_range=data_range,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def laplacian_variance(y: NDArray[Any]) -> float:
    """Sharpness: the variance of the 3x3 Laplacian of a single-channel image."""
    lap = cv2.Laplacian(np.asarray(y, np.float64), cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT)
    return float(lap.var())


def flat_mask(
    y_gt: NDArray[Any], *, fraction: float = FLAT_FRACTION, window: int = FLAT_WINDOW
) -> NDArray[np.bool_]:
    """The flattest ``fraction`` of the pixels of a clean single-channel image (lowest local std)."""
    y = np.asarray(y_gt, np.float64)
    mean = cv2.blur(y, (window, window), borderType=cv2.BORDER_REFLECT)
    sq = cv2.blur(y * y, (window, window), borderType=cv2.BORDER_REFLECT)
    local_std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    # Ties at the threshold (e.g. a constant image) keep every tied pixel, so the mask is never empty.
    return np.asarray(local_std <= np.quantile(local_std, fraction))


def high_pass_std(
    y: NDArray[Any], mask: NDArray[np.bool_] | None = None, *, sigma: float = HIGH_PASS_SIGMA
) -> float:
    """Residual noise: the std of (image - Gaussian blur of it) over ``mask`` (all pixels if None)."""
    y = np.asarray(y, np.float64)
    hp = y - cv2.GaussianBlur(y, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    values = hp[mask] if mask is not None else hp.ravel()
    return float(values.std()) if values.size else 0.0


def is_monotone(values: Sequence[float], *, increasing: bool, rtol: float = MONOTONE_RTOL) -> bool:
    """Whether a sweep moves one way, with a relative tolerance, and actually moves.

    Each step may go back by at most ``rtol`` times the larger magnitude of its two ends, and the
    last value must differ from the first by more than that tolerance in the given direction (so
    a constant sweep is not monotone).

    Args:
        values: the measured figure at each step of the sweep.
        increasing: True if the figure should rise along the sweep, False if it should fall.
        rtol: relative tolerance.

    Returns:
        True if monotone (and not flat).
    """
    v = [float(x) if increasing else -float(x) for x in values]
    if len(v) < 2 or not all(math.isfinite(x) for x in v):
        return False

    def tol(a: float, b: float) -> float:
        return rtol * max(abs(a), abs(b)) + 1e-15

    if any(b < a - tol(a, b) for a, b in itertools.pairwise(v)):
        return False
    return v[-1] > v[0] + tol(v[0], v[-1])


def spearman(truth: Sequence[float], estimate: Sequence[float]) -> tuple[float, bool]:
    """Spearman rank correlation, 0.0 when the estimate does not vary.

    Returns:
        (rho, defined): ``defined`` is False when either side is constant (range <=
        ``CONSTANT_ESTIMATE_RANGE``); rho is then 0.0 (no ranking), never NaN.
    """
    t = np.asarray(truth, np.float64)
    e = np.asarray(estimate, np.float64)
    if t.size < 2 or np.ptp(t) <= 0 or np.ptp(e) <= CONSTANT_ESTIMATE_RANGE:
        return 0.0, False
    rho = float(spearmanr(t, e).statistic)
    return (rho, True) if math.isfinite(rho) else (0.0, False)


def to_image(t: torch.Tensor, *, quantize: bool = True) -> FloatArray:
    """(3, H, W) tensor -> (H, W, 3) float64, clamped, and rounded to 8 bits as pixels would be."""
    a = t.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
    return np.round(a * 255.0) / 255.0 if quantize else a


def crop_border(a: NDArray[Any]) -> NDArray[Any]:
    """``a`` without ``BORDER`` pixels on every side (first two axes)."""
    return a[BORDER:-BORDER, BORDER:-BORDER] if BORDER > 0 else a


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The quality figure's baseline: bicubic upscaling of (B, 3, h, w) by ``scale``."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


def luma_psnr(image: torch.Tensor, hr: torch.Tensor) -> float:
    """The quality figure's PSNR (dB) of ``image`` against the ground truth ``hr``, both (3, H, W):
    luma of the outputs clamped and rounded to 8 bits, ``BORDER`` px cut from every side."""
    return psnr(crop_border(luma(to_image(image))), crop_border(luma(to_image(hr))))
