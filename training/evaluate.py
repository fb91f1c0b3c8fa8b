"""Held-out evaluation of a modulated model: does the estimator rank degradations, do the knobs move
the output the right way, and does restoration beat bicubic? Prints tables, writes ``report.json``
and a labelled contact sheet. This module is the protocol and the command; the measures are in
:mod:`mmrealsr_training.metrics`, the report, its tables and the contact sheet in
:mod:`mmrealsr_training.report`.

Run as ``python -m mmrealsr_training.evaluate --model NAME_OR_PATH --photos DIR --out DIR``.

Fixed protocol (every number below is a constant of this module or of the metrics module, and is copied
into the report):

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
import logging
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from mmrealsr_video import ModulatedModel, load_model
from mmrealsr_video.errors import InputError, OutputError

from .degradations import degrade_fixed
from .metrics import (
    BORDER,
    FLAT_FRACTION,
    FLAT_WINDOW,
    HIGH_PASS_SIGMA,
    MONOTONE_RTOL,
    PSNR_CAP_DB,
    bicubic_upscale,
    crop_border,
    flat_mask,
    high_pass_std,
    is_monotone,
    laplacian_variance,
    luma,
    luma_psnr,
    spearman,
    ssim,
    to_image,
)
from .report import (
    CONTACT_SHEET_IMAGES,
    CONTACT_SHEET_NAME,
    REPORT_NAME,
    EvaluationReport,
    ImageResult,
    SheetRows,
    contact_sheet,
    write_contact_sheet,
    write_report,
)

__all__ = [
    "BLUR_LEVELS",
    "BLUR_LEVELS_NOISE",
    "BORDER",
    "COEFF_STEPS",
    "MID_BLUR",
    "MID_JPEG",
    "MID_NOISE",
    "MONOTONE_RTOL",
    "NOISE_LEVELS",
    "NOISE_LEVELS_BLUR",
    "OTHER_LEVELS",
    "check_crop_settings",
    "evaluate",
    "list_photos",
    "main",
    "mid_level_input",
    "read_crop",
    "run_photo_command",
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
# The measures' own settings (BORDER, MONOTONE_RTOL, HIGH_PASS_SIGMA, FLAT_FRACTION, FLAT_WINDOW,
# PSNR_CAP_DB) are the defaults of .metrics, imported above and copied into every report.

_PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _settings(crop: int, scale: int) -> dict[str, Any]:
    """The protocol's fixed values, copied into the report (its tables read the levels from here)."""
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


def read_crop(path: Path, crop: int) -> torch.Tensor | None:
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


def mid_level_input(hr: torch.Tensor, name: str, scale: int) -> torch.Tensor:
    """The scored input of photograph ``name``: its (1, 3, H, W) crop degraded at the mid level
    (``MID_BLUR``, ``MID_NOISE``, ``MID_JPEG``), its noise field seeded by the name."""
    return degrade_fixed(
        hr, blur_sigma=MID_BLUR, noise_sigma=MID_NOISE, jpeg_quality=MID_JPEG, scale=scale, seed=_seed(name)
    )


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
    residual = tuple(high_pass_std(crop_border(luma(to_image(o, quantize=False))), mask) for o in noise_sweep)
    sharpness = tuple(laplacian_variance(crop_border(luma(to_image(o, quantize=False)))) for o in blur_sweep)
    return noise_sweep, blur_sweep, residual, sharpness


def _evaluate_image(
    model: ModulatedModel, name: str, hr: torch.Tensor, keep_for_sheet: bool
) -> tuple[ImageResult, SheetRows | None]:
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
    y_gt = crop_border(luma(to_image(hr[0])))
    mask = flat_mask(y_gt)
    noise_sweep, blur_sweep, residual, sharpness = _sweeps(model, lr, auto, mask)
    other: list[tuple[bool, bool]] = []
    for b, n, q in OTHER_LEVELS:
        x = degrade_fixed(hr, blur_sigma=b, noise_sigma=n, jpeg_quality=q, scale=scale, seed=seed)
        e = model.estimate(x).float().cpu()[0].clamp(0, 1)
        _, _, res, sharp = _sweeps(model, x, (float(e[0]), float(e[1])), mask)
        other.append((is_monotone(res, increasing=False), is_monotone(sharp, increasing=True)))
    y_model = crop_border(luma(to_image(restored[0])))
    y_bic = crop_border(luma(to_image(bicubic[0])))

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
        rows = SheetRows(name, auto, lr[0], bicubic[0], restored[0], hr[0], noise_sweep, blur_sweep)
    return result, rows


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
    sheet_rows: list[SheetRows] = []
    for path in paths:
        if max_images is not None and len(results) >= max_images:
            break
        hr = read_crop(path, crop)
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
    input_lines = ["input:", f"blur {MID_BLUR} px", f"noise {MID_NOISE:g}", f"JPEG {MID_JPEG}"]
    write_contact_sheet(sheet_path, contact_sheet(sheet_rows, crop, COEFF_STEPS, input_lines))
    report = EvaluationReport(
        model=model.name,
        images=tuple(results),
        settings=_settings(crop, scale),
        contact_sheet=str(sheet_path),
        report_json=str(json_path),
        seconds=time.perf_counter() - start,
    )
    write_report(json_path, report)
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
