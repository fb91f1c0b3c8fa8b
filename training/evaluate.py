"""Held-out evaluation of a modulated model: does the estimator rank degradations, do the knobs move
the output the right way, and does restoration beat bicubic? Prints tables, writes ``report.json``
and a labelled contact sheet.

Run as ``python -m mmrealsr_training.evaluate --model NAME_OR_PATH --photos DIR --out DIR``.

Fixed protocol (every number below is a module constant and is copied into the report):

- Each photograph is centre-cropped to ``crop`` HR pixels (default 256 -> 64 px LR at x4); photos
  smaller than the crop are skipped with a warning. Degradations come from
  ``mmrealsr_training.degradations.degrade_fixed``; the noise seed of an image is derived from its file name,
  and every level of a sweep uses the same seed (the same noise pattern, scaled).
- **Estimation.** Noise: Gaussian sigma 0, 5, 10, 15, 20, 25, 30 (0-255 scale) with blur sigma
  fixed at 0.5 HR px, no JPEG. Blur: Gaussian sigma 0.2 to 3.0 HR px in 7 even steps with no noise
  and no JPEG. Per image, the Spearman rank correlation between the true sigma and the estimated
  coefficient; an estimate that does not vary (range <= 1e-6) has no ranking and is scored 0.0 (and
  flagged), never NaN.
- **Modulation** and **quality** use one mid-level degradation: blur sigma 1.2 HR px, Gaussian noise
  sigma 10, JPEG quality 75. The noise coefficient is swept 0 -> 1 in 11 steps with blur at its
  automatic value; the output's residual noise is the standard deviation of its luma high-pass
  (luma minus its Gaussian blur, sigma 2 HR px) over flat regions, the 25% of pixels with the
  lowest local standard deviation (9x9 window) in the ground truth's luma. The blur coefficient is
  swept likewise with noise at auto; sharpness is the variance of the 3x3 Laplacian of the output's
  luma. A sweep is *monotone* when every step moves the right way or back by at most 1e-4 relative
  (``MONOTONE_RTOL``) and the last value differs from the first by more than that tolerance in the
  right direction (a knob that does nothing is not monotone). The same two sweeps are also run and
  reported (not scored) at the ``OTHER_LEVELS`` inputs, milder, harsher, noise-free and JPEG-free,
  to show whether the knobs keep their direction away from the scored level.
- **Quality**: PSNR and SSIM on the luma (Y of BT.601 YCbCr, studio range, as in SR benchmarks),
  outputs clamped and rounded to 8 bits, 4 HR px cropped from every border; automatic coefficients
  against bicubic upscaling of the same LR input. PSNR of identical images is capped at 100 dB.
  SSIM is scikit-image's with Gaussian weights (sigma 1.5), as in Wang et al. 2004.

All metrics see outputs clamped to [0, 1] and cropped by ``BORDER`` pixels; the quality figures
also round them to 8 bits, the modulation sweeps do not (rounding would add jitter of its own to
steps that change the output only slightly).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.models.loader import ModulatedModel, load_model

from .degradations import degrade_fixed

__all__ = [
    "BLUR_GOAL_SPEARMAN",
    "BLUR_LEVELS",
    "BLUR_LEVELS_NOISE",
    "BORDER",
    "COEFF_STEPS",
    "CONTACT_SHEET_NAME",
    "CONTACT_SHEET_VALUES",
    "MID_BLUR",
    "MID_JPEG",
    "MID_NOISE",
    "MONOTONE_RTOL",
    "NOISE_GOAL_SPEARMAN",
    "NOISE_LEVELS",
    "NOISE_LEVELS_BLUR",
    "PSNR_GAIN_GOAL_DB",
    "REPORT_NAME",
    "EvaluationReport",
    "ImageResult",
    "bicubic_upscale",
    "check_crop_settings",
    "evaluate",
    "high_pass_std",
    "is_monotone",
    "laplacian_variance",
    "list_photos",
    "luma",
    "luma_psnr",
    "main",
    "mid_level_input",
    "psnr",
    "run_photo_command",
    "spearman",
    "ssim",
]

log = logging.getLogger(__name__)

#: Noise sweep for the estimator: Gaussian sigma on the 0-255 scale, blur fixed, no JPEG.
NOISE_LEVELS: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
#: The fixed blur sigma (HR px) of the noise sweep.
NOISE_LEVELS_BLUR = 0.5
#: Blur sweep for the estimator: Gaussian sigma in HR pixels, noise fixed, no JPEG.
BLUR_LEVELS: tuple[float, ...] = tuple(round(float(v), 4) for v in np.linspace(0.2, 3.0, 7))
#: The fixed noise sigma (0-255) of the blur sweep.
BLUR_LEVELS_NOISE = 0.0
#: The mid-level degradation for the modulation sweeps and quality figures.
MID_BLUR = 1.2
MID_NOISE = 10.0
MID_JPEG = 75
#: Further inputs (blur sigma, noise sigma, JPEG quality or None) whose knob sweeps are reported
#: too, as a check that monotonicity holds away from the one scored level; not a goal.
OTHER_LEVELS: tuple[tuple[float, float, int | None], ...] = (
    (0.6, 5.0, 90),
    (2.0, 20.0, 60),
    (1.2, 0.0, None),
    (0.5, 25.0, None),
)
#: Coefficient values of the modulation sweeps.
COEFF_STEPS: tuple[float, ...] = tuple(round(float(v), 4) for v in np.linspace(0.0, 1.0, 11))
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
#: Goals of the issue, checked in the printed summary.
NOISE_GOAL_SPEARMAN = 0.9
BLUR_GOAL_SPEARMAN = 0.8
PSNR_GAIN_GOAL_DB = 1.5
#: Coefficient values shown in the contact sheet's sweep rows (a subset of ``COEFF_STEPS``).
CONTACT_SHEET_VALUES: tuple[float, ...] = (0.0, 0.2, 0.5, 0.8, 1.0)
CONTACT_SHEET_IMAGES = 3
CONTACT_SHEET_NAME = "contact_sheet.png"
REPORT_NAME = "report.json"

_PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg"}

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------------------------------
# Metrics (numpy, one image at a time; images are (H, W, 3) RGB or (H, W) luma in [0, 1])


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


# --------------------------------------------------------------------------------------------------
# Report


@dataclass(frozen=True)
class ImageResult:
    """Every figure measured on one held-out photograph.

    Attributes:
        name: the file name.
        noise_estimates: the estimated noise coefficient at each of ``NOISE_LEVELS``.
        blur_estimates: the estimated blur coefficient at each of ``BLUR_LEVELS``.
        noise_spearman: Spearman(true noise sigma, noise estimate); 0.0 when undefined.
        blur_spearman: Spearman(true blur sigma, blur estimate); 0.0 when undefined.
        noise_spearman_defined: False when the noise estimate did not vary.
        blur_spearman_defined: False when the blur estimate did not vary.
        auto_coeffs: the (blur, noise) estimate of the mid-level input.
        noise_sweep_residual: residual noise of the output at each of ``COEFF_STEPS`` (noise knob).
        noise_sweep_monotone: whether it falls monotonically.
        blur_sweep_sharpness: Laplacian variance of the output at each of ``COEFF_STEPS`` (blur knob).
        blur_sweep_monotone: whether it rises monotonically.
        psnr_model: luma PSNR (dB) of the restored mid-level input (automatic coefficients).
        ssim_model: luma SSIM of the same.
        psnr_bicubic: luma PSNR (dB) of bicubic upscaling of the same input.
        ssim_bicubic: luma SSIM of the same.
        other_levels_monotone: (noise knob, blur knob) monotone at each of ``OTHER_LEVELS``.
    """

    name: str
    noise_estimates: tuple[float, ...]
    blur_estimates: tuple[float, ...]
    noise_spearman: float
    blur_spearman: float
    noise_spearman_defined: bool
    blur_spearman_defined: bool
    auto_coeffs: tuple[float, float]
    noise_sweep_residual: tuple[float, ...]
    noise_sweep_monotone: bool
    blur_sweep_sharpness: tuple[float, ...]
    blur_sweep_monotone: bool
    psnr_model: float
    ssim_model: float
    psnr_bicubic: float
    ssim_bicubic: float
    other_levels_monotone: tuple[tuple[bool, bool], ...] = ()

    @property
    def psnr_gain(self) -> float:
        """PSNR of the model minus that of bicubic, in dB."""
        return self.psnr_model - self.psnr_bicubic


def _settings(crop: int, scale: int) -> dict[str, Any]:
    return {
        "crop_hr": crop,
        "crop_lr": crop // scale,
        "scale": scale,
        "border_hr": BORDER,
        "noise_levels_sigma255": list(NOISE_LEVELS),
        "noise_levels_fixed_blur_sigma": NOISE_LEVELS_BLUR,
        "blur_levels_sigma_hr_px": list(BLUR_LEVELS),
        "blur_levels_fixed_noise_sigma255": BLUR_LEVELS_NOISE,
        "mid_blur_sigma": MID_BLUR,
        "mid_noise_sigma255": MID_NOISE,
        "mid_jpeg_quality": MID_JPEG,
        "coeff_steps": list(COEFF_STEPS),
        "other_levels_blur_noise_jpeg": [list(v) for v in OTHER_LEVELS],
        "monotone_rtol": MONOTONE_RTOL,
        "high_pass_sigma_hr_px": HIGH_PASS_SIGMA,
        "flat_fraction": FLAT_FRACTION,
        "flat_window": FLAT_WINDOW,
        "quality_channel": "Y (BT.601, studio range), 8-bit rounded",
        "psnr_cap_db": PSNR_CAP_DB,
        "spearman_when_constant": 0.0,
    }


@dataclass(frozen=True)
class EvaluationReport:
    """The held-out evaluation of one model: per-image figures, their summaries, where files went.

    Attributes:
        model: the model's name (bundled name or file name).
        images: one ``ImageResult`` per evaluated photograph, in file-name order.
        settings: the protocol's fixed values (levels, degradations, tolerances).
        contact_sheet: path of the contact sheet PNG.
        report_json: path of ``report.json``.
        seconds: wall-clock time of the evaluation.
    """

    model: str
    images: tuple[ImageResult, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    contact_sheet: str = ""
    report_json: str = ""
    seconds: float = 0.0

    @property
    def mean_noise_spearman(self) -> float:
        """Mean over images of the noise Spearman correlation."""
        return float(np.mean([r.noise_spearman for r in self.images]))

    @property
    def mean_blur_spearman(self) -> float:
        """Mean over images of the blur Spearman correlation."""
        return float(np.mean([r.blur_spearman for r in self.images]))

    @property
    def noise_monotone_fraction(self) -> float:
        """Share of images whose noise-knob sweep lowers residual noise monotonically."""
        return float(np.mean([r.noise_sweep_monotone for r in self.images]))

    @property
    def blur_monotone_fraction(self) -> float:
        """Share of images whose blur-knob sweep raises sharpness monotonically."""
        return float(np.mean([r.blur_sweep_monotone for r in self.images]))

    @property
    def mean_psnr_model(self) -> float:
        """Mean luma PSNR of the model (dB)."""
        return float(np.mean([r.psnr_model for r in self.images]))

    @property
    def mean_psnr_bicubic(self) -> float:
        """Mean luma PSNR of bicubic (dB)."""
        return float(np.mean([r.psnr_bicubic for r in self.images]))

    @property
    def mean_ssim_model(self) -> float:
        """Mean luma SSIM of the model."""
        return float(np.mean([r.ssim_model for r in self.images]))

    @property
    def mean_ssim_bicubic(self) -> float:
        """Mean luma SSIM of bicubic."""
        return float(np.mean([r.ssim_bicubic for r in self.images]))

    @property
    def mean_psnr_gain(self) -> float:
        """Mean over images of the PSNR gain over bicubic (dB)."""
        return float(np.mean([r.psnr_gain for r in self.images]))

    @property
    def goals(self) -> dict[str, bool]:
        """Each goal of the issue and whether it is met."""
        return {
            f"noise spearman >= {NOISE_GOAL_SPEARMAN}": self.mean_noise_spearman >= NOISE_GOAL_SPEARMAN,
            f"blur spearman >= {BLUR_GOAL_SPEARMAN}": self.mean_blur_spearman >= BLUR_GOAL_SPEARMAN,
            "noise sweep monotone on all images": self.noise_monotone_fraction == 1.0,
            "blur sweep monotone on all images": self.blur_monotone_fraction == 1.0,
            f"PSNR gain over bicubic >= {PSNR_GAIN_GOAL_DB} dB": self.mean_psnr_gain >= PSNR_GAIN_GOAL_DB,
        }

    def summary(self) -> dict[str, float]:
        """The headline figures."""
        return {
            "mean_noise_spearman": self.mean_noise_spearman,
            "mean_blur_spearman": self.mean_blur_spearman,
            "noise_monotone_fraction": self.noise_monotone_fraction,
            "blur_monotone_fraction": self.blur_monotone_fraction,
            "mean_psnr_model": self.mean_psnr_model,
            "mean_psnr_bicubic": self.mean_psnr_bicubic,
            "mean_psnr_gain": self.mean_psnr_gain,
            "mean_ssim_model": self.mean_ssim_model,
            "mean_ssim_bicubic": self.mean_ssim_bicubic,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain JSON-ready values."""
        d = asdict(self)
        for img, r in zip(d["images"], self.images, strict=True):
            img["psnr_gain"] = r.psnr_gain
        d["summary"] = self.summary()
        d["goals"] = self.goals
        return d

    def format(self) -> str:
        """The report as plain-text tables."""
        s = self.settings
        w = max([5, *(len(r.name) for r in self.images)])
        noise_levels = ", ".join(f"{v:g}" for v in NOISE_LEVELS)
        blur_levels = ", ".join(f"{v:g}" for v in BLUR_LEVELS)
        out = [
            f"MM-RealSR held-out evaluation: model {self.model}, {len(self.images)} image(s), "
            f"centre crop {s.get('crop_hr')} HR px (LR {s.get('crop_lr')}), {self.seconds:.1f} s",
            "",
            "Estimation: Spearman rank correlation of the true sigma and the estimated coefficient",
            f"  noise sweep: sigma {noise_levels} (0-255); blur {NOISE_LEVELS_BLUR:g} px, no JPEG",
            f"  blur sweep:  sigma {blur_levels} (HR px); noise {BLUR_LEVELS_NOISE:g}, no JPEG",
            "  * = the estimate did not vary: no ranking, scored 0",
            f"  {'image':<{w}}  {'noise rho':>9}  {'blur rho':>9}"
            f"  {'noise est. lo..hi':>17}  {'blur est. lo..hi':>17}",
        ]
        for r in self.images:
            out.append(
                f"  {r.name:<{w}}  {r.noise_spearman:>8.3f}{' ' if r.noise_spearman_defined else '*'}"
                f"  {r.blur_spearman:>8.3f}{' ' if r.blur_spearman_defined else '*'}"
                f"  {r.noise_estimates[0]:>9.3f}..{r.noise_estimates[-1]:.3f}"
                f"  {r.blur_estimates[0]:>9.3f}..{r.blur_estimates[-1]:.3f}"
            )
        out += [
            f"  {'mean':<{w}}  {self.mean_noise_spearman:>8.3f}   {self.mean_blur_spearman:>8.3f}"
            f"   (goals: noise >= {NOISE_GOAL_SPEARMAN}, blur >= {BLUR_GOAL_SPEARMAN})",
            "",
            f"Modulation: input blur {MID_BLUR:g} px, noise {MID_NOISE:g}, JPEG {MID_JPEG}; "
            f"each knob 0 -> 1 in {len(COEFF_STEPS)} steps, the other at auto",
            "  residual noise = std of the luma high-pass in flat regions (should fall);",
            "  sharpness = variance of the luma Laplacian (should rise);",
            f"  monotone = every step the right way within {MONOTONE_RTOL:g} relative, and not flat",
            f"  {'image':<{w}}  {'auto b':>6}  {'auto n':>6}  {'residual noise 0 -> 1':>21}  {'mono':>4}"
            f"  {'sharpness 0 -> 1':>21}  {'mono':>4}",
        ]
        for r in self.images:
            res, sharp = r.noise_sweep_residual, r.blur_sweep_sharpness
            out.append(
                f"  {r.name:<{w}}  {r.auto_coeffs[0]:>6.3f}  {r.auto_coeffs[1]:>6.3f}"
                f"  {res[0]:>9.5f} -> {res[-1]:<8.5f}  {_yn(r.noise_sweep_monotone):>4}"
                f"  {sharp[0]:>9.6f} -> {sharp[-1]:<8.6f}  {_yn(r.blur_sweep_monotone):>4}"
            )
        out += [
            f"  monotone: noise knob on {self.noise_monotone_fraction:.0%} of the images, "
            f"blur knob on {self.blur_monotone_fraction:.0%} (goal: all)",
            "  at other input levels (reported, not scored): images monotone, noise knob / blur knob",
        ]
        n = len(self.images)
        for i, (b, ns, q) in enumerate(OTHER_LEVELS):
            flags = [r.other_levels_monotone[i] for r in self.images if len(r.other_levels_monotone) > i]
            if not flags:
                continue
            jpeg = f"JPEG {q}" if q is not None else "no JPEG"
            out.append(
                f"    blur {b:g} px, noise {ns:g}, {jpeg}: "
                f"{sum(f[0] for f in flags)}/{n} / {sum(f[1] for f in flags)}/{n}"
            )
        out += [
            "",
            f"Quality: luma (Y) PSNR/SSIM, {BORDER} px border cropped; automatic coefficients vs bicubic",
            f"  {'image':<{w}}  {'PSNR':>7}  {'bicubic':>7}  {'gain':>6}  {'SSIM':>6}  {'bicubic':>7}",
        ]
        for r in self.images:
            out.append(
                f"  {r.name:<{w}}  {r.psnr_model:>7.2f}  {r.psnr_bicubic:>7.2f}  {r.psnr_gain:>+6.2f}"
                f"  {r.ssim_model:>6.4f}  {r.ssim_bicubic:>7.4f}"
            )
        out += [
            f"  {'mean':<{w}}  {self.mean_psnr_model:>7.2f}  {self.mean_psnr_bicubic:>7.2f}"
            f"  {self.mean_psnr_gain:>+6.2f}  {self.mean_ssim_model:>6.4f}  {self.mean_ssim_bicubic:>7.4f}"
            f"   (goal: gain >= +{PSNR_GAIN_GOAL_DB} dB)",
            "",
            "Goals",
        ]
        out += [f"  [{'PASS' if ok else 'FAIL'}] {goal}" for goal, ok in self.goals.items()]
        if self.contact_sheet:
            out += ["", f"Contact sheet: {self.contact_sheet}"]
        if self.report_json:
            out.append(f"Report: {self.report_json}")
        return "\n".join(out)


def _yn(b: bool) -> str:
    return "yes" if b else "NO"


# --------------------------------------------------------------------------------------------------
# Evaluation


def list_photos(photos_dir: str | Path) -> list[Path]:
    """The PNG/JPEG files of a folder, sorted by name.

    Raises:
        InputError: the folder does not exist or holds no photographs.
    """
    d = Path(photos_dir)
    if not d.is_dir():
        raise InputError(f"{d}: no such folder of photographs")
    paths = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in _PHOTO_SUFFIXES)
    if not paths:
        raise InputError(f"{d}: no photographs (.png, .jpg, .jpeg) in it")
    return paths


def _read_crop(path: Path, crop: int) -> torch.Tensor | None:
    """The centre ``crop`` x ``crop`` RGB crop as (1, 3, crop, crop) in [0, 1]; None if too small."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: cannot be read as an image")
    h, w = bgr.shape[:2]
    if h < crop or w < crop:
        log.warning("%s: %dx%d is smaller than the %d px crop; skipped", path.name, w, h, crop)
        return None
    top, left = (h - crop) // 2, (w - crop) // 2
    rgb = cv2.cvtColor(bgr[top : top + crop, left : left + crop], cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def _seed(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _to_image(t: torch.Tensor, *, quantize: bool = True) -> FloatArray:
    """(3, H, W) tensor -> (H, W, 3) float64, clamped, and rounded to 8 bits as pixels would be."""
    a = t.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
    return np.round(a * 255.0) / 255.0 if quantize else a


def _crop_border(a: NDArray[Any]) -> NDArray[Any]:
    return a[BORDER:-BORDER, BORDER:-BORDER] if BORDER > 0 else a


def mid_level_input(hr: torch.Tensor, name: str, scale: int) -> torch.Tensor:
    """The scored input of photograph ``name``: its (1, 3, H, W) crop degraded at the mid level
    (``MID_BLUR``, ``MID_NOISE``, ``MID_JPEG``), its noise field seeded by the name."""
    return degrade_fixed(
        hr, blur_sigma=MID_BLUR, noise_sigma=MID_NOISE, jpeg_quality=MID_JPEG, scale=scale, seed=_seed(name)
    )


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The quality figure's baseline: bicubic upscaling of (B, 3, h, w) by ``scale``."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


def luma_psnr(image: torch.Tensor, hr: torch.Tensor) -> float:
    """The quality figure's PSNR (dB) of ``image`` against the ground truth ``hr``, both (3, H, W):
    luma of the outputs clamped and rounded to 8 bits, ``BORDER`` px cut from every side."""
    return psnr(_crop_border(luma(_to_image(image))), _crop_border(luma(_to_image(hr))))


def _sweep(model: ModulatedModel, lr: torch.Tensor, auto: tuple[float, float], index: int) -> torch.Tensor:
    """Restores ``lr`` at every ``COEFF_STEPS`` value of coefficient ``index``, the other at auto."""
    coeffs = torch.tensor([auto] * len(COEFF_STEPS), dtype=torch.float64)
    coeffs[:, index] = torch.tensor(COEFF_STEPS, dtype=torch.float64)
    return model.restore(lr.expand(len(COEFF_STEPS), -1, -1, -1), coeffs).float().cpu()


def _sweeps(
    model: ModulatedModel, lr: torch.Tensor, auto: tuple[float, float], mask: NDArray[Any]
) -> tuple[torch.Tensor, torch.Tensor, tuple[float, ...], tuple[float, ...]]:
    """Both knob sweeps of ``lr`` and their measures: (noise sweep, blur sweep, residual, sharpness)."""
    noise_sweep = _sweep(model, lr, auto, 1)
    blur_sweep = _sweep(model, lr, auto, 0)
    residual = tuple(
        high_pass_std(_crop_border(luma(_to_image(o, quantize=False))), mask) for o in noise_sweep
    )
    sharpness = tuple(
        laplacian_variance(_crop_border(luma(_to_image(o, quantize=False)))) for o in blur_sweep
    )
    return noise_sweep, blur_sweep, residual, sharpness


@dataclass
class _SheetRows:
    name: str
    auto: tuple[float, float]
    lr: torch.Tensor
    bicubic: torch.Tensor
    restored: torch.Tensor
    gt: torch.Tensor
    noise_sweep: torch.Tensor
    blur_sweep: torch.Tensor


def _evaluate_image(
    model: ModulatedModel, name: str, hr: torch.Tensor, keep_for_sheet: bool
) -> tuple[ImageResult, _SheetRows | None]:
    scale = model.scale
    seed = _seed(name)

    # Estimation: one batch of every level of both sweeps.
    noisy = [
        degrade_fixed(hr, blur_sigma=NOISE_LEVELS_BLUR, noise_sigma=s, scale=scale, seed=seed)
        for s in NOISE_LEVELS
    ]
    blurry = [
        degrade_fixed(hr, blur_sigma=s, noise_sigma=BLUR_LEVELS_NOISE, scale=scale, seed=seed)
        for s in BLUR_LEVELS
    ]
    est = model.estimate(torch.cat(noisy + blurry)).float().cpu().numpy().astype(np.float64)
    noise_est = tuple(float(v) for v in est[: len(NOISE_LEVELS), 1])
    blur_est = tuple(float(v) for v in est[len(NOISE_LEVELS) :, 0])
    noise_rho, noise_ok = spearman(NOISE_LEVELS, noise_est)
    blur_rho, blur_ok = spearman(BLUR_LEVELS, blur_est)

    # Modulation and quality: one mid-level input.
    lr = mid_level_input(hr, name, scale)
    a = model.estimate(lr).float().cpu()[0].clamp(0, 1)  # half-precision rounding may overshoot
    auto = (float(a[0]), float(a[1]))
    restored = model.restore(lr, torch.tensor([auto], dtype=torch.float64)).float().cpu()
    bicubic = bicubic_upscale(lr, scale)
    y_gt = _crop_border(luma(_to_image(hr[0])))
    mask = flat_mask(y_gt)
    noise_sweep, blur_sweep, residual, sharpness = _sweeps(model, lr, auto, mask)
    other: list[tuple[bool, bool]] = []
    for b, n, q in OTHER_LEVELS:
        x = degrade_fixed(hr, blur_sigma=b, noise_sigma=n, jpeg_quality=q, scale=scale, seed=seed)
        e = model.estimate(x).float().cpu()[0].clamp(0, 1)
        _, _, res, sharp = _sweeps(model, x, (float(e[0]), float(e[1])), mask)
        other.append((is_monotone(res, increasing=False), is_monotone(sharp, increasing=True)))
    y_model = _crop_border(luma(_to_image(restored[0])))
    y_bic = _crop_border(luma(_to_image(bicubic[0])))

    result = ImageResult(
        name=name,
        noise_estimates=noise_est,
        blur_estimates=blur_est,
        noise_spearman=noise_rho,
        blur_spearman=blur_rho,
        noise_spearman_defined=noise_ok,
        blur_spearman_defined=blur_ok,
        auto_coeffs=auto,
        noise_sweep_residual=residual,
        noise_sweep_monotone=is_monotone(residual, increasing=False),
        blur_sweep_sharpness=sharpness,
        blur_sweep_monotone=is_monotone(sharpness, increasing=True),
        psnr_model=luma_psnr(restored[0], hr[0]),
        ssim_model=ssim(y_model, y_gt),
        psnr_bicubic=luma_psnr(bicubic[0], hr[0]),
        ssim_bicubic=ssim(y_bic, y_gt),
        other_levels_monotone=tuple(other),
    )
    rows = None
    if keep_for_sheet:
        rows = _SheetRows(name, auto, lr[0], bicubic[0], restored[0], hr[0], noise_sweep, blur_sweep)
    return result, rows


def _tile(t: torch.Tensor, size: int, label: str) -> NDArray[np.uint8]:
    """A labelled ``size`` x ``size`` BGR uint8 tile (nearest-resized if needed)."""
    img = np.round(_to_image(t) * 255.0).astype(np.uint8)
    if img.shape[0] != size or img.shape[1] != size:
        img = np.asarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    img = np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), dtype=np.uint8)
    font_scale = max(0.3, size / 640.0)
    thickness = 1
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    cv2.rectangle(img, (0, 0), (min(size - 1, tw + 4), th + base + 4), (0, 0, 0), thickness=-1)
    cv2.putText(
        img, label, (2, th + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), thickness, cv2.LINE_AA
    )
    return img


def _text_tile(size: int, lines: list[str]) -> NDArray[np.uint8]:
    img = np.full((size, size, 3), 32, np.uint8)
    font_scale = max(0.3, size / 640.0)
    step = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0][1] * 2
    for i, text in enumerate(lines):
        pos = (4, step * (i + 1))
        cv2.putText(img, text, pos, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (220, 220, 220), 1, cv2.LINE_AA)
    return img


def _contact_sheet(rows: list[_SheetRows], size: int) -> NDArray[np.uint8]:
    """Per image three rows of five tiles: input / bicubic / auto / GT, the noise sweep, the blur sweep."""
    cols = len(CONTACT_SHEET_VALUES)
    idx = [COEFF_STEPS.index(v) for v in CONTACT_SHEET_VALUES]
    blank = _text_tile(size, ["input:", f"blur {MID_BLUR} px", f"noise {MID_NOISE:g}", f"JPEG {MID_JPEG}"])
    out: list[NDArray[np.uint8]] = []
    for r in rows:
        top = [
            _tile(F.interpolate(r.lr[None], size=(size, size), mode="nearest")[0], size, f"{r.name} input"),
            _tile(r.bicubic, size, "bicubic"),
            _tile(r.restored, size, f"auto b{r.auto[0]:.2f} n{r.auto[1]:.2f}"),
            _tile(r.gt, size, "ground truth"),
        ]
        top += [blank] * (cols - len(top))
        noise = [_tile(r.noise_sweep[i], size, f"noise {COEFF_STEPS[i]:.1f} (b auto)") for i in idx]
        blur = [_tile(r.blur_sweep[i], size, f"blur {COEFF_STEPS[i]:.1f} (n auto)") for i in idx]
        out += [np.hstack(top), np.hstack(noise), np.hstack(blur)]
    return np.vstack(out)


def evaluate(
    model: ModulatedModel,
    photos_dir: str | Path,
    out_dir: str | Path,
    *,
    crop: int = 256,
    max_images: int | None = None,
) -> EvaluationReport:
    """Evaluates a model on held-out photographs (see the module docstring for the protocol).

    Writes ``contact_sheet.png`` (three rows of five ``crop``-px tiles for each of the first
    ``CONTACT_SHEET_IMAGES`` images) and ``report.json`` into ``out_dir``.

    Args:
        model: the model to evaluate (its own estimator gives the automatic coefficients).
        photos_dir: folder of PNG/JPEG ground-truth photographs.
        out_dir: folder for the contact sheet and the JSON report (created if missing).
        crop: side of the centre crop in HR pixels; a multiple of ``model.scale``.
        max_images: evaluate at most this many photographs (in file-name order).

    Returns:
        The report.

    Raises:
        InputError: bad crop or max_images, no photographs, or none large enough for the crop.
        OutputError: ``out_dir`` cannot be written.
    """
    start = time.perf_counter()
    scale = model.scale
    check_crop_settings("evaluate", crop, scale, max_images)
    paths = list_photos(photos_dir)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create the output folder ({e.strerror or e})") from None

    results: list[ImageResult] = []
    sheet_rows: list[_SheetRows] = []
    for path in paths:
        if max_images is not None and len(results) >= max_images:
            break
        hr = _read_crop(path, crop)
        if hr is None:
            continue
        result, rows = _evaluate_image(model, path.name, hr, len(sheet_rows) < CONTACT_SHEET_IMAGES)
        results.append(result)
        if rows is not None:
            sheet_rows.append(rows)
        log.info(
            "%s: noise rho %.3f, blur rho %.3f, PSNR %.2f dB (bicubic %.2f)",
            path.name,
            result.noise_spearman,
            result.blur_spearman,
            result.psnr_model,
            result.psnr_bicubic,
        )
    if not results:
        raise InputError(f"{photos_dir}: no photograph is at least {crop}x{crop} px; lower --crop")

    sheet_path = out / CONTACT_SHEET_NAME
    json_path = out / REPORT_NAME
    if not cv2.imwrite(str(sheet_path), _contact_sheet(sheet_rows, crop)):
        raise OutputError(f"{sheet_path}: cannot write the contact sheet")
    report = EvaluationReport(
        model=model.name,
        images=tuple(results),
        settings=_settings(crop, scale),
        contact_sheet=str(sheet_path),
        report_json=str(json_path),
        seconds=time.perf_counter() - start,
    )
    try:
        json_path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    except OSError as e:
        raise OutputError(f"{json_path}: cannot write the report ({e.strerror or e})") from None
    return report


def check_crop_settings(who: str, crop: int, scale: int, max_images: int | None) -> None:
    """Raises InputError, naming ``who``, for a crop the protocol cannot use or a max_images below 1."""
    if crop <= 2 * BORDER + 8 or crop % scale:
        raise InputError(
            f"{who}: crop must be a multiple of the model's scale ({scale}) and above {2 * BORDER + 8}; "
            f"got {crop}"
        )
    if max_images is not None and max_images < 1:
        raise InputError(f"{who}: max_images must be at least 1; got {max_images}")


class _Report(Protocol):
    def format(self) -> str: ...


def run_photo_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    score: Callable[[ModulatedModel, argparse.Namespace], _Report],
) -> int:
    """The body of a command that scores a model on held-out photographs: adds the shared options
    (--model, --photos, --crop, --max-images, --device, -q) to ``parser``, which holds the command's own,
    loads the model, runs ``score`` and prints its report. Returns the exit status (2 with a message
    on stderr for bad input)."""
    parser.add_argument("--model", required=True, help="bundled model name or weights file")
    parser.add_argument("--photos", required=True, type=Path, help="folder of held-out PNG/JPEG photographs")
    parser.add_argument("--crop", type=int, default=256, help="centre crop side in HR pixels (default 256)")
    parser.add_argument("--max-images", type=int, default=None, help="at most this many photographs")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1... (default cpu)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-image progress on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s"
    )
    try:
        report = score(load_model(args.model, device=args.device), args)
    except (InputError, OutputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.format())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: evaluate a model on held-out photographs and print the tables."""
    parser = argparse.ArgumentParser(
        prog="python -m mmrealsr_training.evaluate",
        description="Evaluate a modulated model on held-out photographs: estimator ranking, knob "
        "monotonicity, PSNR/SSIM against bicubic; prints tables, writes report.json and contact_sheet.png.",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="folder for report.json and contact_sheet.png"
    )
    return run_photo_command(
        parser,
        argv,
        lambda model, a: evaluate(model, a.photos, a.out, crop=a.crop, max_images=a.max_images),
    )


if __name__ == "__main__":
    sys.exit(main())
