"""The record of a held-out evaluation (:mod:`mmrealsr_training.evaluate`): the figures of each photograph,
their summaries against the goals, the plain-text tables, ``report.json``, and the labelled contact sheet of
inputs, outputs and knob sweeps. The protocol's levels are read from the report's ``settings``, which the
evaluation fills, so that a report says what it measured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from mmrealsr_video.errors import OutputError

from .metrics import to_image

__all__ = [
    "BLUR_GOAL_SPEARMAN",
    "CONTACT_SHEET_IMAGES",
    "CONTACT_SHEET_NAME",
    "CONTACT_SHEET_VALUES",
    "NOISE_GOAL_SPEARMAN",
    "PSNR_GAIN_GOAL_DB",
    "REPORT_NAME",
    "EvaluationReport",
    "ImageResult",
    "SheetRows",
    "contact_sheet",
    "write_contact_sheet",
    "write_report",
]

#: Goals of the issue, checked in the printed summary.
NOISE_GOAL_SPEARMAN = 0.9
BLUR_GOAL_SPEARMAN = 0.8
PSNR_GAIN_GOAL_DB = 1.5
#: Coefficient values shown in the contact sheet's sweep rows (a subset of the sweeps' steps).
CONTACT_SHEET_VALUES: tuple[float, ...] = (0.0, 0.2, 0.5, 0.8, 1.0)
CONTACT_SHEET_IMAGES = 3
CONTACT_SHEET_NAME = "contact_sheet.png"
REPORT_NAME = "report.json"


@dataclass(frozen=True)
class ImageResult:
    """Every figure measured on one held-out photograph.

    Attributes:
        name: the file name.
        noise_estimates: the estimated noise coefficient at each of the protocol's noise levels.
        blur_estimates: the estimated blur coefficient at each of the protocol's blur levels.
        noise_spearman: Spearman(true noise sigma, noise estimate); 0.0 when undefined.
        blur_spearman: Spearman(true blur sigma, blur estimate); 0.0 when undefined.
        noise_spearman_defined: False when the noise estimate did not vary.
        blur_spearman_defined: False when the blur estimate did not vary.
        auto_coeffs: the (blur, noise) estimate of the mid-level input.
        noise_sweep_residual: residual noise of the output at each coefficient step (noise knob).
        noise_sweep_monotone: whether it falls monotonically.
        blur_sweep_sharpness: Laplacian variance of the output at each coefficient step (blur knob).
        blur_sweep_monotone: whether it rises monotonically.
        psnr_model: luma PSNR (dB) of the restored mid-level input (automatic coefficients).
        ssim_model: luma SSIM of the same.
        psnr_bicubic: luma PSNR (dB) of bicubic upscaling of the same input.
        ssim_bicubic: luma SSIM of the same.
        other_levels_monotone: (noise knob, blur knob) monotone at each of the other input levels.
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


@dataclass(frozen=True)
class EvaluationReport:
    """The held-out evaluation of one model: per-image figures, their summaries, where files went.

    Attributes:
        model: the model's name (bundled name or file name).
        images: one ``ImageResult`` per evaluated photograph, in file-name order.
        settings: the protocol's fixed values (levels, degradations, tolerances), as
            ``mmrealsr_training.evaluate`` fills them; ``format`` reads the levels from here.
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
        """The report as plain-text tables.

        Raises:
            KeyError: ``settings`` lacks a level of the protocol (a report not made by ``evaluate``).
        """
        s = self.settings
        w = max([5, *(len(r.name) for r in self.images)])
        noise_levels = ", ".join(f"{v:g}" for v in s["noise_levels_sigma255"])
        blur_levels = ", ".join(f"{v:g}" for v in s["blur_levels_sigma_hr_px"])
        mid_blur, mid_noise, mid_jpeg = s["mid_blur_sigma"], s["mid_noise_sigma255"], s["mid_jpeg_quality"]
        out = [
            f"MM-RealSR held-out evaluation: model {self.model}, {len(self.images)} image(s), "
            f"centre crop {s.get('crop_hr')} HR px (LR {s.get('crop_lr')}), {self.seconds:.1f} s",
            "",
            "Estimation: Spearman rank correlation of the true sigma and the estimated coefficient",
            f"  noise sweep: sigma {noise_levels} (0-255); blur {s['noise_levels_fixed_blur_sigma']:g} px, no JPEG",
            f"  blur sweep:  sigma {blur_levels} (HR px); noise {s['blur_levels_fixed_noise_sigma255']:g}, no JPEG",
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
            f"Modulation: input blur {mid_blur:g} px, noise {mid_noise:g}, JPEG {mid_jpeg}; "
            f"each knob 0 -> 1 in {len(s['coeff_steps'])} steps, the other at auto",
            "  residual noise = std of the luma high-pass in flat regions (should fall);",
            "  sharpness = variance of the luma Laplacian (should rise);",
            f"  monotone = every step the right way within {s['monotone_rtol']:g} relative, and not flat",
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
        for i, (b, ns, q) in enumerate(s["other_levels_blur_noise_jpeg"]):
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
            f"Quality: luma (Y) PSNR/SSIM, {s['border_hr']} px border cropped; automatic coefficients vs bicubic",
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


@dataclass(frozen=True)
class SheetRows:
    """What the contact sheet shows of one photograph: (3, H, W) tensors of the LR input, bicubic, the
    restoration at the automatic coefficients ``auto`` and the ground truth, and (N, 3, H, W) knob sweeps."""

    name: str
    auto: tuple[float, float]
    lr: torch.Tensor
    bicubic: torch.Tensor
    restored: torch.Tensor
    gt: torch.Tensor
    noise_sweep: torch.Tensor
    blur_sweep: torch.Tensor


def _tile(t: torch.Tensor, size: int, label: str) -> NDArray[np.uint8]:
    """A labelled ``size`` x ``size`` BGR uint8 tile (nearest-resized if needed)."""
    img = np.round(to_image(t) * 255.0).astype(np.uint8)
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


def contact_sheet(
    rows: Sequence[SheetRows], size: int, coeff_steps: Sequence[float], input_lines: list[str]
) -> NDArray[np.uint8]:
    """Per image three rows of five tiles: input / bicubic / auto / GT, the noise sweep, the blur sweep.

    Args:
        rows: the photographs to show.
        size: side of a tile in pixels.
        coeff_steps: the coefficient of each step of the sweeps (must contain ``CONTACT_SHEET_VALUES``).
        input_lines: text of the spare tiles of the first row (what the input's degradation was).

    Returns:
        The sheet, BGR uint8.
    """
    cols = len(CONTACT_SHEET_VALUES)
    steps = list(coeff_steps)
    idx = [steps.index(v) for v in CONTACT_SHEET_VALUES]
    blank = _text_tile(size, input_lines)
    out: list[NDArray[np.uint8]] = []
    for r in rows:
        top = [
            _tile(F.interpolate(r.lr[None], size=(size, size), mode="nearest")[0], size, f"{r.name} input"),
            _tile(r.bicubic, size, "bicubic"),
            _tile(r.restored, size, f"auto b{r.auto[0]:.2f} n{r.auto[1]:.2f}"),
            _tile(r.gt, size, "ground truth"),
        ]
        top += [blank] * (cols - len(top))
        noise = [_tile(r.noise_sweep[i], size, f"noise {steps[i]:.1f} (b auto)") for i in idx]
        blur = [_tile(r.blur_sweep[i], size, f"blur {steps[i]:.1f} (n auto)") for i in idx]
        out += [np.hstack(top), np.hstack(noise), np.hstack(blur)]
    return np.vstack(out)


def write_contact_sheet(path: Path, sheet: NDArray[np.uint8]) -> None:
    """Writes a contact sheet as PNG.

    Raises:
        OutputError: it cannot be written.
    """
    if not cv2.imwrite(str(path), sheet):
        raise OutputError(f"{path}: cannot write the contact sheet")


def write_report(path: Path, report: EvaluationReport) -> None:
    """Writes ``report.to_dict()`` as JSON (no NaN or infinity: every figure is finite by construction).

    Raises:
        OutputError: it cannot be written.
    """
    try:
        path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    except OSError as e:
        raise OutputError(f"{path}: cannot write the report ({e.strerror or e})") from None
