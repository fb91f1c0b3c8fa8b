"""Footage evaluation: does the estimator read video and JPEG compression, and does the model beat bicubic
and Real-ESRGAN's released models (the *anchors*) on the same coded inputs, in the same run? Also the
knobs on real low-quality pictures (contact sheets) and the speed. Prints tables, writes ``report.json``.

Run as ``python -m mmrealsr_training.footage --model NAME_OR_PATH --photos DIR --out DIR [--real DIR]``.

Fixed protocol (every value is a constant of this module, copied into the report):

- **Input.** The centre ``crop`` of each held-out photograph (as :mod:`mmrealsr_training.evaluate`
  reads it), a slight Gaussian blur (``BASE_BLUR`` HR px), area downscaling by the model's scale,
  Gaussian noise of sigma ``BASE_NOISE`` (0-255) seeded by the file name as the evaluation seeds it
  (every level of a ladder has the same noise field), then the coding of the level, 8-bit rounding.
- **Estimation.** An x264 CRF ladder (``CRF_LEVELS``; the image is the P-frame of a 3-frame clip,
  :func:`mmrealsr_training.codecs.code_as_video`) and a JPEG ladder (``JPEG_LEVELS``) on that input;
  per photo the Spearman correlation of the level and the estimated noise coefficient, and, at
  ``MID_CRF``, the spread (standard deviation) of the noise estimate across photos. The estimator
  sees the whole LR crop (``ModulatedModel.estimate``); for a 64-px LR crop (256 HR px at x4) that is
  what the product's analysis does, whose 64-px crops are the whole of so small a frame. The noise
  and blur sigma ladders and the mild synthetic quality figure are
  :func:`mmrealsr_training.evaluate.evaluate`'s own, run on the same photos (its report is written
  to ``OUT/evaluate``).
- **Restoration.** At every CRF level, luma PSNR and SSIM (:mod:`mmrealsr_training.metrics`) of the model
  at its automatic coefficients, of each anchor and of bicubic, on the same input; gains are over
  bicubic. The anchors are x4: for a model of a smaller scale their outputs are area-downscaled to
  the model's scale and compared there. Their outputs are cached on disk (``OUT/teacher-cache`` or
  ``--cache``), keyed by anchor, photo, level and a digest of the input pixels, so a rerun with
  another model runs only the model.
- **Real inputs** (``--real DIR``): each picture, centre-cropped to at most ``REAL_MAX_SIDE`` px, is
  restored by :func:`mmrealsr_video.restore_image` (the product's own analysis gives the automatic
  coefficients) and at the fixed ``STRONG`` setting; a labelled sheet shows input, bicubic, automatic,
  strong and each anchor. ``DIR/sources.json`` (file -> provenance), if present, is copied into the report.
- **Speed.** FLOPs per 640x480 input frame counted by torch (``FlopCounterMode``), and CPU frames/s
  of the generator and of ``realesr-animevideov3`` at ``SPEED_SIZES``, median of ``SPEED_REPEATS``
  runs after a warm-up, measured in turns in one process.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mmrealsr_video import ImageSettings, ModulatedModel, load_model, parse_coefficient, restore_image
from mmrealsr_video.errors import InputError, MMRealSRVideoError, OutputError

from .codecs import VideoCoding
from .degradations import degrade_fixed
from .evaluate import check_crop_settings, evaluate, list_photos, read_crop
from .metrics import bicubic_upscale, crop_border, luma, luma_psnr, spearman, ssim, to_image
from .realesrgan import ANCHORS, load_anchor
from .report import BLUR_GOAL_SPEARMAN, NOISE_GOAL_SPEARMAN, EvaluationReport

__all__ = [
    "ANCHOR_SCALE",
    "BASE_BLUR",
    "BASE_NOISE",
    "CRF_CODEC",
    "CRF_HIGH",
    "CRF_LEVELS",
    "CRF_LOW",
    "DEFAULT_ANCHORS",
    "JPEG_LEVELS",
    "MID_CRF",
    "REAL_MAX_SIDE",
    "SPEED_REPEATS",
    "SPEED_SIZES",
    "STRONG",
    "FootageReport",
    "PhotoResult",
    "RealResult",
    "TeacherCache",
    "footage",
    "footage_input",
    "main",
]

log = logging.getLogger(__name__)

#: The input every ladder starts from: slight blur (HR px), area downscale, Gaussian noise (0-255).
BASE_BLUR = 0.5
BASE_NOISE = 3.0
#: The video ladder: x264 CRF, the image a P-frame of a short clip.
CRF_CODEC = "libx264"
CRF_LEVELS: tuple[int, ...] = (18, 26, 32, 38, 44)
#: The CRF groups whose mean gains are reported and scored.
CRF_LOW: tuple[int, ...] = (18, 26, 32)
CRF_HIGH: tuple[int, ...] = (38, 44)
#: The fixed mid degradation of the spread figure.
MID_CRF = 32
#: The JPEG ladder (quality; larger is better, so the goal is a negative correlation).
JPEG_LEVELS: tuple[int, ...] = (95, 75, 55, 35, 15)
#: Real-ESRGAN's released models compared against, and their scale.
DEFAULT_ANCHORS: tuple[str, ...] = ("realesr-animevideov3", "realesrgan-x4plus")
ANCHOR_SCALE = 4
#: The anchor the margins are measured against.
MARGIN_ANCHOR = "realesr-animevideov3"
#: The fixed strong setting (blur, noise) shown for real inputs.
STRONG: tuple[float, float] = (0.8, 0.9)
#: Real inputs are centre-cropped to at most this many pixels a side (x4plus costs ~2.3 TFLOP at 256 px).
REAL_MAX_SIDE = 256
#: Frame sizes (width, height) of the speed figure, and timed runs after one warm-up.
SPEED_SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 480))
SPEED_REPEATS = 3
SPEED_ANCHOR = "realesr-animevideov3"
#: The held-out photos shown on the CRF contact sheet, and its levels.
CRF_SHEET_IMAGES = 3
CRF_SHEET_LEVELS: tuple[int, ...] = (32, 44)

#: Goals of the issue, checked in the printed summary.
CRF_GOAL_SPEARMAN = 0.9
JPEG_GOAL_SPEARMAN = -0.9
SPREAD_GOAL = 0.08
GAIN_GOAL_DB = 0.5
MARGIN_GOAL_DB = 0.3
MILD_GOAL_DB = 1.0

REPORT_NAME = "report.json"
CRF_SHEET_NAME = "crf_sheet.png"
_REAL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
_SOURCES_NAME = "sources.json"

Scores = dict[str, tuple[float, float]]  # method -> (luma PSNR dB, luma SSIM)
AnchorLoader = Callable[[str, str], nn.Module]


def _settings(crop: int, scale: int, anchors: Sequence[str]) -> dict[str, Any]:
    return {
        "crop_hr": crop,
        "crop_lr": crop // scale,
        "scale": scale,
        "base_blur_sigma_hr_px": BASE_BLUR,
        "downscale": "area",
        "base_noise_sigma255": BASE_NOISE,
        "noise_seed": "crc32 of the photo's file name (as mmrealsr_training.evaluate)",
        "crf_codec": CRF_CODEC,
        "crf_levels": list(CRF_LEVELS),
        "crf_coding": "code_as_video: last frame of a 3-frame clip (I, P, P), motion (0.5, 0.25) px/frame",
        "crf_low": list(CRF_LOW),
        "crf_high": list(CRF_HIGH),
        "mid_crf": MID_CRF,
        "jpeg_levels": list(JPEG_LEVELS),
        "estimator_input": "whole LR crop through ModulatedModel.estimate, clamped to [0, 1]",
        "anchors": list(anchors),
        "anchor_scale": ANCHOR_SCALE,
        "anchor_rescale": "none" if scale == ANCHOR_SCALE else f"area downscale x{ANCHOR_SCALE} -> x{scale}",
        "quality": "luma (BT.601 studio range) PSNR/SSIM, 8-bit rounded, border cropped (metrics.py)",
        "strong_blur_noise": list(STRONG),
        "real_max_side": REAL_MAX_SIDE,
        "speed_sizes": [list(s) for s in SPEED_SIZES],
        "speed_repeats": SPEED_REPEATS,
    }


# --------------------------------------------------------------------------------------------------
# Inputs


def _seed(name: str) -> int:
    # The same seed as mmrealsr_training.evaluate gives a photo, so both commands see one noise field.
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def footage_input(
    hr: torch.Tensor, name: str, scale: int, *, crf: int | None = None, jpeg_quality: int | None = None
) -> torch.Tensor:
    """The protocol's input of one photo at one level: (1, 3, H, W) HR -> (1, 3, H/scale, W/scale).

    Slight blur, area downscale, seeded Gaussian noise, then the x264 CRF (a P-frame) or the JPEG
    quality, if any; 8-bit rounded. Each step is ``degrade_fixed``'s but the downscale.

    Raises:
        InputError: both a CRF and a JPEG quality, or a level out of range.
    """
    if crf is not None and jpeg_quality is not None:
        raise InputError("footage_input: give crf or jpeg_quality, not both")
    blurred = degrade_fixed(hr, blur_sigma=BASE_BLUR, noise_sigma=0.0, scale=1)
    h, w = hr.shape[-2:]
    lr = F.interpolate(blurred, size=(h // scale, w // scale), mode="area")
    video = VideoCoding(CRF_CODEC, crf) if crf is not None else None
    return degrade_fixed(
        lr,
        blur_sigma=0.0,
        noise_sigma=BASE_NOISE,
        jpeg_quality=jpeg_quality,
        video=video,
        scale=1,
        seed=_seed(name),
    )


def _to_u8(x: torch.Tensor) -> NDArray[np.uint8]:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8 RGB, as the metrics round it."""
    return np.asarray(np.round(to_image(x) * 255.0), dtype=np.uint8)


def _from_u8(rgb: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)


def _read_rgb(path: Path) -> NDArray[np.uint8]:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: cannot be read as an image")
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _write_rgb(path: Path, rgb: NDArray[np.uint8]) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OutputError(f"{path}: cannot be written")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# Anchors and their cache


class TeacherCache:
    """The anchors' outputs on disk: ``ROOT/ANCHOR/GROUP/LABEL-DIGEST.png``, 8-bit RGB at x4.

    ``GROUP`` is the photo (or real input), ``LABEL`` the level, ``DIGEST`` a hash of the input's
    pixels, so a changed input (another crop, codec build or protocol) is never served a stale output.
    The anchors are loaded on the first miss only.

    Args:
        root: the cache folder (created when first written).
        names: the anchors, keys of ``realesrgan.ANCHORS``.
        device: where the anchors run.
        loader: ``(name, device) -> module``; ``realesrgan.load_anchor`` by default.
    """

    def __init__(
        self, root: Path, names: Sequence[str], device: str = "cpu", loader: AnchorLoader | None = None
    ) -> None:
        self.root = root
        self.names = tuple(names)
        self.device = device
        self._loader: AnchorLoader = loader or (lambda n, d: load_anchor(n, device=d))
        self._nets: dict[str, nn.Module] = {}
        self.hits = 0
        #: Images the anchors computed (misses), and their forward calls (batches).
        self.computed = 0
        self.calls = 0

    def _path(self, anchor: str, group: str, label: str, lr_u8: NDArray[np.uint8]) -> Path:
        digest = hashlib.sha256(lr_u8.tobytes() + repr(lr_u8.shape).encode()).hexdigest()[:16]
        return self.root / anchor / group / f"{label}-{digest}.png"

    def net(self, anchor: str) -> nn.Module:
        """The anchor's module, loaded once."""
        if anchor not in self._nets:
            log.info("loading anchor %s", anchor)
            self._nets[anchor] = self._loader(anchor, self.device)
        return self._nets[anchor]

    def outputs(
        self, anchor: str, group: str, items: Sequence[tuple[str, torch.Tensor]]
    ) -> list[torch.Tensor]:
        """The anchor's x4 outputs, (3, 4h, 4w) in [0, 1] on 8-bit levels, for ``(label, (3, h, w))`` items.

        Missing ones are computed in one batch per input size and written to the cache.

        Raises:
            OutputError: the cache cannot be written.
        """
        inputs = [(label, _to_u8(x)) for label, x in items]
        paths = [self._path(anchor, group, label, u8) for label, u8 in inputs]
        out: list[torch.Tensor | None] = []
        for p in paths:
            rgb = cv2.imread(str(p), cv2.IMREAD_COLOR) if p.is_file() else None
            out.append(
                None if rgb is None else _from_u8(np.asarray(cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), np.uint8))
            )
        self.hits += sum(o is not None for o in out)
        missing = [i for i, o in enumerate(out) if o is None]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i in missing:
            by_shape.setdefault(inputs[i][1].shape, []).append(i)
        for idx in by_shape.values():
            net = self.net(anchor)
            x = torch.stack([_from_u8(inputs[i][1]) for i in idx]).to(self.device)
            with torch.inference_mode():
                y = net(x).float().cpu().clamp(0, 1)
            self.calls += 1
            self.computed += len(idx)
            for i, yi in zip(idx, y, strict=True):
                rgb = _to_u8(yi)
                try:
                    paths[i].parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise OutputError(f"{paths[i].parent}: cannot create the cache folder ({e})") from None
                _write_rgb(paths[i], rgb)
                out[i] = _from_u8(rgb)
        return [o for o in out if o is not None]


def _at_scale(y: torch.Tensor, scale: int) -> torch.Tensor:
    """An anchor's x4 output (3, 4h, 4w) at the model's scale (area downscaling), on 8-bit levels."""
    if scale == ANCHOR_SCALE:
        return y
    h, w = y.shape[-2] * scale // ANCHOR_SCALE, y.shape[-1] * scale // ANCHOR_SCALE
    return _from_u8(_to_u8(F.interpolate(y[None], size=(h, w), mode="area")[0]))


# --------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class PhotoResult:
    """Every figure measured on one held-out photograph.

    Attributes:
        name: the file name.
        crf_estimates: (blur, noise) estimate at each ``CRF_LEVELS`` level.
        jpeg_estimates: (blur, noise) estimate at each ``JPEG_LEVELS`` level.
        crf_spearman: Spearman(CRF, noise estimate); 0.0 when the estimate did not vary.
        jpeg_spearman: Spearman(JPEG quality, noise estimate); 0.0 likewise.
        crf_scores: per CRF level (as a string key), method -> (luma PSNR, luma SSIM); methods are
            ``bicubic``, ``model`` and the anchors' names.
        subset: ``old10`` for the photos of the first held-out set (manifest source not github),
            ``github`` for the test-set photos added later, ``""`` when the folder has no manifest.
    """

    name: str
    crf_estimates: tuple[tuple[float, float], ...]
    jpeg_estimates: tuple[tuple[float, float], ...]
    crf_spearman: float
    jpeg_spearman: float
    crf_scores: dict[str, Scores]
    subset: str = ""

    def gain(self, method: str, crf: int, index: int) -> float:
        """PSNR (index 0) or SSIM (index 1) gain of ``method`` over bicubic at ``crf``."""
        s = self.crf_scores[str(crf)]
        return s[method][index] - s["bicubic"][index]


@dataclass(frozen=True)
class RealResult:
    """One real low-quality input.

    Attributes:
        name: the file name.
        size: (width, height) after the centre crop.
        cropped_from: (width, height) of the file when it was cropped, else None.
        auto: the product's automatic (blur, noise) for it.
        sheet: the contact sheet's path.
        source: its provenance from ``sources.json``, if listed there.
    """

    name: str
    size: tuple[int, int]
    cropped_from: tuple[int, int] | None
    auto: tuple[float, float]
    sheet: str
    source: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FootageReport:
    """The footage evaluation of one model.

    Attributes:
        model: the model's name.
        settings: the protocol's constants.
        photos: one ``PhotoResult`` per held-out photo.
        synthetic: figures of :func:`mmrealsr_training.evaluate.evaluate` on the same photos.
        real: one ``RealResult`` per real input.
        speed: FLOPs and frames/s (empty when not measured).
        cache: teacher-cache statistics.
        files: paths written.
        seconds: wall time.
    """

    model: str
    settings: dict[str, Any]
    photos: tuple[PhotoResult, ...]
    synthetic: dict[str, Any]
    real: tuple[RealResult, ...] = ()
    speed: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def anchors(self) -> tuple[str, ...]:
        return tuple(self.settings["anchors"])

    def methods(self) -> tuple[str, ...]:
        """``model`` and the anchors, in report order."""
        return ("model", *self.anchors)

    def _photos(self, subset: str | None) -> list[PhotoResult]:
        return [p for p in self.photos if subset is None or p.subset == subset]

    def mean_gain(self, method: str, levels: Sequence[int], index: int, subset: str | None = None) -> float:
        """Mean over photos and ``levels`` of the PSNR (0) or SSIM (1) gain of ``method`` over bicubic."""
        return float(np.mean([p.gain(method, c, index) for p in self._photos(subset) for c in levels]))

    def mean_score(self, method: str, crf: int, index: int) -> float:
        return float(np.mean([p.crf_scores[str(crf)][method][index] for p in self.photos]))

    def estimates_at(self, crf: int) -> NDArray[np.float64]:
        """(photos, 2) estimates at one CRF level."""
        i = CRF_LEVELS.index(crf)
        return np.array([p.crf_estimates[i] for p in self.photos], dtype=np.float64)

    def summary(self) -> dict[str, float]:
        """The headline figures."""
        s: dict[str, float] = {
            "mean_crf_spearman": float(np.mean([p.crf_spearman for p in self.photos])),
            "mean_jpeg_spearman": float(np.mean([p.jpeg_spearman for p in self.photos])),
            "mean_noise_sigma_spearman": float(self.synthetic["mean_noise_spearman"]),
            "mean_blur_sigma_spearman": float(self.synthetic["mean_blur_spearman"]),
            "noise_estimate_std_at_mid_crf": float(self.estimates_at(MID_CRF)[:, 1].std()),
            "noise_estimate_mean_at_mid_crf": float(self.estimates_at(MID_CRF)[:, 1].mean()),
            "mild_synthetic_psnr_gain_db": float(self.synthetic["mean_psnr_gain"]),
        }
        for m in self.methods():
            for group, levels in (("crf18_32", CRF_LOW), ("crf38_44", CRF_HIGH)):
                s[f"{m}_psnr_gain_{group}"] = self.mean_gain(m, levels, 0)
                s[f"{m}_ssim_gain_{group}"] = self.mean_gain(m, levels, 1)
        return s

    @property
    def goals(self) -> dict[str, bool]:
        """Each goal of the issue and whether it is met."""
        s = self.summary()
        low = "-".join(str(v) for v in (CRF_LOW[0], CRF_LOW[-1]))
        high = "-".join(str(v) for v in (CRF_HIGH[0], CRF_HIGH[-1]))
        g = {
            f"x264 CRF: mean Spearman(CRF, noise estimate) >= {CRF_GOAL_SPEARMAN}": s["mean_crf_spearman"]
            >= CRF_GOAL_SPEARMAN,
            f"JPEG: mean Spearman(quality, noise estimate) <= {JPEG_GOAL_SPEARMAN}": s["mean_jpeg_spearman"]
            <= JPEG_GOAL_SPEARMAN,
            f"Gaussian noise sigma: mean Spearman >= {NOISE_GOAL_SPEARMAN}": s["mean_noise_sigma_spearman"]
            >= NOISE_GOAL_SPEARMAN,
            f"blur sigma: mean Spearman >= {BLUR_GOAL_SPEARMAN}": s["mean_blur_sigma_spearman"]
            >= BLUR_GOAL_SPEARMAN,
            f"std of the noise estimate across photos at CRF {MID_CRF} <= {SPREAD_GOAL}": s[
                "noise_estimate_std_at_mid_crf"
            ]
            <= SPREAD_GOAL,
            f"PSNR gain over bicubic at CRF {low} >= +{GAIN_GOAL_DB} dB": s["model_psnr_gain_crf18_32"]
            >= GAIN_GOAL_DB,
        }
        if MARGIN_ANCHOR in self.anchors:
            a = MARGIN_ANCHOR
            g[f"PSNR gain at CRF {low} >= {a}'s + {MARGIN_GOAL_DB} dB"] = (
                s["model_psnr_gain_crf18_32"] >= s[f"{a}_psnr_gain_crf18_32"] + MARGIN_GOAL_DB
            )
            g[f"SSIM gain at CRF {high} > {a}'s"] = (
                s["model_ssim_gain_crf38_44"] > s[f"{a}_ssim_gain_crf38_44"]
            )
        g[f"mild synthetic (evaluate's mid level) PSNR gain >= +{MILD_GOAL_DB} dB"] = (
            s["mild_synthetic_psnr_gain_db"] >= MILD_GOAL_DB
        )
        return g

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain JSON-ready values."""
        d = asdict(self)
        d["summary"] = self.summary()
        subsets = sorted({p.subset for p in self.photos if p.subset})
        d["summary_by_subset"] = {
            sub: {
                f"{m}_psnr_gain_{g}": self.mean_gain(m, lv, 0, sub)
                for m in self.methods()
                for g, lv in (("crf18_32", CRF_LOW), ("crf38_44", CRF_HIGH))
            }
            | {"photos": len(self._photos(sub))}
            for sub in subsets
        }
        d["goals"] = self.goals
        return d

    def format(self) -> str:
        """The report as plain-text tables."""
        s = self.summary()
        w = max([5, *(len(p.name) for p in self.photos)])
        st = self.settings
        out = [
            f"MM-RealSR footage evaluation: model {self.model}, {len(self.photos)} photo(s), "
            f"centre crop {st['crop_hr']} HR px (LR {st['crop_lr']}), {self.seconds:.0f} s",
            f"input: blur {BASE_BLUR:g} px, area x{st['scale']} down, Gaussian noise sigma {BASE_NOISE:g}, "
            f"then {CRF_CODEC} CRF (P-frame) or JPEG; estimator on the whole LR crop",
            "",
            "Estimation: noise estimate per level (mean +- std over photos)",
            "  " + "  ".join(f"CRF {c:>2}" + " " * 8 for c in CRF_LEVELS),
        ]
        crf_n = np.array([[e[1] for e in p.crf_estimates] for p in self.photos])
        jpg_n = np.array([[e[1] for e in p.jpeg_estimates] for p in self.photos])
        out.append(
            "  "
            + "  ".join(f"{m:.3f}+-{sd:.3f}  " for m, sd in zip(crf_n.mean(0), crf_n.std(0), strict=True))
        )
        out.append("  " + "  ".join(f"JPEG {q:>2}" + " " * 7 for q in JPEG_LEVELS))
        out.append(
            "  "
            + "  ".join(f"{m:.3f}+-{sd:.3f}  " for m, sd in zip(jpg_n.mean(0), jpg_n.std(0), strict=True))
        )
        out += [
            "",
            "  per photo: Spearman(CRF, noise est.) and Spearman(JPEG quality, noise est.); noise est. at CRF 18..44",
            f"  {'photo':<{w}}  {'set':>6}  {'CRF rho':>7}  {'JPEG rho':>8}  noise estimate CRF 18 -> 44",
        ]
        for p in self.photos:
            ests = " ".join(f"{e[1]:.3f}" for e in p.crf_estimates)
            out.append(
                f"  {p.name:<{w}}  {p.subset:>6}  {p.crf_spearman:>7.3f}  {p.jpeg_spearman:>8.3f}  {ests}"
            )
        out += [
            f"  {'mean':<{w}}  {'':>6}  {s['mean_crf_spearman']:>7.3f}  {s['mean_jpeg_spearman']:>8.3f}"
            f"   (goals: CRF >= {CRF_GOAL_SPEARMAN}, JPEG <= {JPEG_GOAL_SPEARMAN})",
            f"  Gaussian noise sigma ladder (evaluate.py): mean Spearman {s['mean_noise_sigma_spearman']:.3f}"
            f" (goal >= {NOISE_GOAL_SPEARMAN}); blur sigma ladder: {s['mean_blur_sigma_spearman']:.3f}"
            f" (goal >= {BLUR_GOAL_SPEARMAN})",
            f"  at CRF {MID_CRF}: noise estimate mean {s['noise_estimate_mean_at_mid_crf']:.3f}, "
            f"std across photos {s['noise_estimate_std_at_mid_crf']:.3f} (goal <= {SPREAD_GOAL}); "
            f"blur estimate mean {self.estimates_at(MID_CRF)[:, 0].mean():.3f}, "
            f"std {self.estimates_at(MID_CRF)[:, 0].std():.3f}",
            "",
            "Restoration: luma PSNR / SSIM gain over bicubic, mean over photos (model at automatic coefficients)",
        ]
        if st["anchor_rescale"] != "none":
            out.append(f"  anchors' x4 outputs: {st['anchor_rescale']} (compared at the model's scale)")
        methods = self.methods()
        head = "".join(f"  {m[:22]:>22}" for m in methods)
        out.append(f"  {'level':<9}  {'bicubic PSNR/SSIM':>16}{head}")
        for c in CRF_LEVELS:
            row = "".join(
                f"  {self.mean_gain(m, [c], 0):>+10.2f} / {self.mean_gain(m, [c], 1):>+9.4f}" for m in methods
            )
            out.append(
                f"  {'CRF ' + str(c):<9}  {self.mean_score('bicubic', c, 0):>7.2f} / {self.mean_score('bicubic', c, 1):.4f}{row}"
            )
        for label, levels in (
            (f"CRF {CRF_LOW[0]}-{CRF_LOW[-1]}", CRF_LOW),
            (f"CRF {CRF_HIGH[0]}-{CRF_HIGH[-1]}", CRF_HIGH),
        ):
            row = "".join(
                f"  {self.mean_gain(m, levels, 0):>+10.2f} / {self.mean_gain(m, levels, 1):>+9.4f}"
                for m in methods
            )
            out.append(f"  {label:<9}  {'mean':>16}{row}")
        if MARGIN_ANCHOR in self.anchors:
            a = MARGIN_ANCHOR
            out.append(
                f"  margin over {a}: CRF {CRF_LOW[0]}-{CRF_LOW[-1]} "
                f"{s['model_psnr_gain_crf18_32'] - s[f'{a}_psnr_gain_crf18_32']:+.2f} dB "
                f"(goal >= +{MARGIN_GOAL_DB}); CRF {CRF_HIGH[0]}-{CRF_HIGH[-1]} SSIM "
                f"{s['model_ssim_gain_crf38_44'] - s[f'{a}_ssim_gain_crf38_44']:+.4f} (goal > 0)"
            )
        subsets = sorted({p.subset for p in self.photos if p.subset})
        for sub in subsets:
            n = len(self._photos(sub))
            parts = ", ".join(
                f"{m} {self.mean_gain(m, CRF_LOW, 0, sub):+.2f} / {self.mean_gain(m, CRF_HIGH, 0, sub):+.2f}"
                for m in methods
            )
            out.append(f"  subset {sub} ({n} photos), PSNR gain CRF 18-32 / 38-44: {parts}")
        syn = self.synthetic
        out += [
            "",
            f"Mild synthetic (evaluate.py's mid level: blur {syn['mid_blur_sigma']:g} px, noise {syn['mid_noise_sigma255']:g}, "
            f"JPEG {syn['mid_jpeg_quality']}, bicubic-antialiased x{st['scale']} down):",
            f"  PSNR {syn['mean_psnr_model']:.2f} dB vs bicubic {syn['mean_psnr_bicubic']:.2f}: gain "
            f"{syn['mean_psnr_gain']:+.2f} dB (goal >= +{MILD_GOAL_DB}); SSIM {syn['mean_ssim_model']:.4f} vs "
            f"{syn['mean_ssim_bicubic']:.4f}; noise knob monotone {syn['noise_monotone_fraction']:.0%}, "
            f"blur knob {syn['blur_monotone_fraction']:.0%}",
        ]
        for sub, v in syn.get("by_subset", {}).items():
            out.append(
                f"  subset {sub} ({v['photos']} photos): PSNR gain {v['mean_psnr_gain']:+.2f} dB, "
                f"noise sigma rho {v['mean_noise_spearman']:.3f}, blur sigma rho {v['mean_blur_spearman']:.3f}"
            )
        if self.real:
            out += [
                "",
                f"Real inputs (automatic = the product's analysis; strong = blur {STRONG[0]}, noise {STRONG[1]})",
            ]
            rw = max(4, *(len(r.name) for r in self.real))
            out.append(f"  {'file':<{rw}}  {'size':>9}  {'auto b':>6}  {'auto n':>6}  source")
            for r in self.real:
                src = r.source.get("repository", "") + (":" + r.source["path"] if "path" in r.source else "")
                size = f"{r.size[0]}x{r.size[1]}"
                out.append(f"  {r.name:<{rw}}  {size:>9}  {r.auto[0]:>6.3f}  {r.auto[1]:>6.3f}  {src}")
        if self.speed:
            sp = self.speed
            out += [
                "",
                f"Speed ({sp['threads']} CPU threads, load average {sp['load_average']:.1f} at the start)",
            ]
            for name, f in sp["tflop_640x480"].items():
                out.append(f"  {name:<28} {f:>8.3f} TFLOP per 640x480 input frame")
            for name, by_size in sp["fps"].items():
                cells = ", ".join(f"{k}: {v:.2f} fps" for k, v in by_size.items())
                out.append(f"  {name:<28} {cells}")
        out += ["", "Goals"]
        out += [f"  [{'PASS' if ok else 'FAIL'}] {goal}" for goal, ok in self.goals.items()]
        cache = self.cache
        if cache:
            out += [
                "",
                f"Teacher cache {cache['dir']}: {cache['hits']} hit(s), {cache['computed']} computed in "
                f"{cache['calls']} call(s)",
            ]
        out += [f"{k}: {v}" for k, v in self.files.items()]
        return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# The evaluation


def _scores(y: torch.Tensor, hr: torch.Tensor, y_gt: NDArray[Any]) -> tuple[float, float]:
    return luma_psnr(y, hr), ssim(crop_border(luma(to_image(y))), y_gt)


def _subsets(photos_dir: Path) -> dict[str, str]:
    """File name -> ``old10`` / ``github`` from the photo set's manifest, if there is one."""
    manifest = photos_dir.parent / "manifest.json"
    if not manifest.is_file():
        return {}
    try:
        images = json.loads(manifest.read_text()).get("images", [])
    except (OSError, ValueError):
        return {}
    return {
        Path(str(r.get("file", ""))).name: "github"
        if str(r.get("source", "")).startswith("github:")
        else "old10"
        for r in images
        if isinstance(r, dict)
    }


def _photo(
    model: ModulatedModel, cache: TeacherCache, name: str, hr: torch.Tensor, subset: str
) -> tuple[PhotoResult, dict[int, dict[str, torch.Tensor]]]:
    scale = model.scale
    crf_in = [footage_input(hr, name, scale, crf=c) for c in CRF_LEVELS]
    jpeg_in = [footage_input(hr, name, scale, jpeg_quality=q) for q in JPEG_LEVELS]
    est = model.estimate(torch.cat(crf_in + jpeg_in)).float().cpu().clamp(0, 1).double()
    crf_est = tuple((float(b), float(n)) for b, n in est[: len(CRF_LEVELS)].tolist())
    jpeg_est = tuple((float(b), float(n)) for b, n in est[len(CRF_LEVELS) :].tolist())

    lr = torch.cat(crf_in)
    restored = model.restore(lr, est[: len(CRF_LEVELS)].float()).float().cpu()
    bicubic = bicubic_upscale(lr, scale)
    y_gt = crop_border(luma(to_image(hr[0])))
    stem = Path(name).stem
    anchor_out = {
        a: cache.outputs(a, stem, [(f"crf{c}", x[0]) for c, x in zip(CRF_LEVELS, crf_in, strict=True)])
        for a in cache.names
    }
    scores: dict[str, Scores] = {}
    images: dict[int, dict[str, torch.Tensor]] = {}
    for i, c in enumerate(CRF_LEVELS):
        outs = {"bicubic": bicubic[i], "model": restored[i]}
        outs |= {a: _at_scale(ys[i], scale) for a, ys in anchor_out.items()}
        scores[str(c)] = {m: _scores(y, hr[0], y_gt) for m, y in outs.items()}
        if c in CRF_SHEET_LEVELS:
            images[c] = {"input": lr[i], **outs}
    result = PhotoResult(
        name=name,
        crf_estimates=crf_est,
        jpeg_estimates=jpeg_est,
        crf_spearman=spearman(CRF_LEVELS, [n for _, n in crf_est])[0],
        jpeg_spearman=spearman(JPEG_LEVELS, [n for _, n in jpeg_est])[0],
        crf_scores=scores,
        subset=subset,
    )
    return result, images


def _labelled(rgb: NDArray[np.uint8], label: str) -> NDArray[np.uint8]:
    """A copy of an RGB tile with ``label`` on a black band at its top left."""
    img = np.ascontiguousarray(rgb.copy())
    scale = max(0.4, min(img.shape[:2]) / 700.0)
    thick = 1 if scale < 0.8 else 2
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(img, (0, 0), (min(img.shape[1] - 1, tw + 6), th + base + 6), (0, 0, 0), thickness=-1)
    cv2.putText(img, label, (3, th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return img


def _grid(tiles: Sequence[NDArray[np.uint8]], cols: int) -> NDArray[np.uint8]:
    blank = np.zeros_like(tiles[0])
    padded = list(tiles) + [blank] * (-len(tiles) % cols)
    return np.vstack([np.hstack(padded[i : i + cols]) for i in range(0, len(padded), cols)])


def _crf_sheet(rows: Sequence[tuple[str, int, dict[str, torch.Tensor], torch.Tensor]]) -> NDArray[np.uint8]:
    """Per (photo, CRF level) one row: input (nearest), bicubic, model, anchors, ground truth."""
    lines = []
    for name, crf, outs, hr in rows:
        size = hr.shape[-2:]
        tiles = [
            _labelled(
                _to_u8(F.interpolate(outs["input"][None], size=size, mode="nearest")[0]), f"{name} CRF {crf}"
            )
        ]
        tiles += [_labelled(_to_u8(y), m) for m, y in outs.items() if m != "input"]
        tiles.append(_labelled(_to_u8(hr), "ground truth"))
        lines.append(np.hstack(tiles))
    return np.vstack(lines)


def _real_inputs(real_dir: Path) -> list[Path]:
    if not real_dir.is_dir():
        raise InputError(f"--real {real_dir}: no such folder of real inputs")
    paths = sorted(p for p in real_dir.iterdir() if p.is_file() and p.suffix.lower() in _REAL_SUFFIXES)
    if not paths:
        raise InputError(f"--real {real_dir}: no images ({', '.join(sorted(_REAL_SUFFIXES))}) in it")
    return paths


def _real(
    model_source: str | Path,
    model: ModulatedModel,
    cache: TeacherCache,
    path: Path,
    out: Path,
    device: str,
    source: dict[str, Any],
) -> RealResult:
    rgb = _read_rgb(path)
    h, w = rgb.shape[:2]
    cropped_from = None
    if max(h, w) > REAL_MAX_SIDE:
        ch, cw = min(h, REAL_MAX_SIDE), min(w, REAL_MAX_SIDE)
        top, left = (h - ch) // 2, (w - cw) // 2
        rgb = np.ascontiguousarray(rgb[top : top + ch, left : left + cw])
        cropped_from = (w, h)
        log.info("%s: %dx%d centre-cropped to %dx%d", path.name, w, h, cw, ch)
    work = out / "real" / path.stem
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{work}: cannot create the folder ({e.strerror or e})") from None
    src = work / "input.png"
    _write_rgb(src, rgb)
    auto = restore_image(src, work / "auto.png", ImageSettings(model=model_source, device=device, force=True))
    strong_settings = ImageSettings(
        model=model_source,
        device=device,
        blur=parse_coefficient(STRONG[0]),
        noise=parse_coefficient(STRONG[1]),
        force=True,
    )
    restore_image(src, work / "strong.png", strong_settings)
    x = _from_u8(rgb)
    scale = model.scale
    tiles = [
        _labelled(
            _to_u8(F.interpolate(x[None], scale_factor=scale, mode="nearest")[0]), f"{path.name} input"
        ),
        _labelled(_to_u8(bicubic_upscale(x[None], scale)[0]), "bicubic"),
        _labelled(
            _read_rgb(work / "auto.png"), f"auto b{auto.record.auto_blur:.2f} n{auto.record.auto_noise:.2f}"
        ),
        _labelled(_read_rgb(work / "strong.png"), f"strong b{STRONG[0]:g} n{STRONG[1]:g}"),
    ]
    for a in cache.names:
        (y,) = cache.outputs(a, f"real-{path.stem}", [("input", x)])
        tiles.append(_labelled(_to_u8(_at_scale(y, scale)), a))
    sheet_path = out / "real" / f"{path.stem}_sheet.png"
    _write_rgb(sheet_path, _grid(tiles, 3))
    return RealResult(
        name=path.name,
        size=(rgb.shape[1], rgb.shape[0]),
        cropped_from=cropped_from,
        auto=(auto.record.auto_blur, auto.record.auto_noise),
        sheet=str(sheet_path),
        source=source,
    )


def _flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _speed(model: ModulatedModel, device: str, sizes: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """FLOPs per 640x480 frame (meta tensors: nothing computed) and measured frames/s."""
    load_average = os.getloadavg()[0]
    meta = copy.deepcopy(model.net).to("meta")
    x = torch.empty(1, 3, 480, 640, device="meta")
    c = torch.empty(1, 2, device="meta")
    restore = cast(Callable[[torch.Tensor, torch.Tensor], torch.Tensor], meta.restore)
    estimate = cast(Callable[[torch.Tensor], torch.Tensor], meta.estimate)
    tflop = {
        "model generator": _flops(lambda: restore(x, c)) / 1e12,
        "model estimator (whole frame)": _flops(lambda: estimate(x)) / 1e12,
    }
    for name, spec in ANCHORS.items():
        with torch.device("meta"):
            net = spec.build()
        tflop[name] = _flops(lambda: net(x)) / 1e12  # noqa: B023 (called at once, inside the loop)
    anchor = load_anchor(SPEED_ANCHOR, device=device)
    runners: dict[str, Callable[[torch.Tensor], object]] = {
        "model generator": lambda t: model.restore(t, (0.5, 0.5), tile=0),
        SPEED_ANCHOR: anchor,
    }
    fps: dict[str, dict[str, float]] = {k: {} for k in runners}
    for w, h in sizes:
        frame = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
        times: dict[str, list[float]] = {k: [] for k in runners}
        with torch.inference_mode():
            for run in runners.values():
                run(frame)  # warm-up
            for _ in range(SPEED_REPEATS):  # in turns, so a change of load hits both alike
                for k, run in runners.items():
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    run(frame)
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    times[k].append(time.perf_counter() - t0)
        for k, ts in times.items():
            fps[k][f"{w}x{h}"] = 1.0 / statistics.median(ts)
            log.info("speed %s at %dx%d: %.2f fps", k, w, h, fps[k][f"{w}x{h}"])
    return {
        "tflop_640x480": tflop,
        "fps": fps,
        "device": device,
        "threads": torch.get_num_threads(),
        "load_average": load_average,
        "timing": f"median of {SPEED_REPEATS} after a warm-up, the two networks in turns",
    }


def footage(
    model: str | Path,
    photos_dir: str | Path,
    out_dir: str | Path,
    *,
    real_dir: str | Path | None = None,
    anchors: Sequence[str] = DEFAULT_ANCHORS,
    cache_dir: str | Path | None = None,
    crop: int = 256,
    max_images: int | None = None,
    device: str = "cpu",
    speed_sizes: Sequence[tuple[int, int]] | None = SPEED_SIZES,
    anchor_loader: AnchorLoader | None = None,
) -> FootageReport:
    """Evaluates a model on coded held-out photos against the anchors (see the module docstring).

    Writes ``report.json``, ``crf_sheet.png``, ``evaluate/`` (the held-out evaluation's own report),
    ``real/`` (one contact sheet per real input) and the teacher cache into ``out_dir``.

    Args:
        model: a bundled model's name or a weights file (real inputs are restored through
            :func:`mmrealsr_video.restore_image`, which loads it by this name).
        photos_dir: folder of held-out PNG/JPEG photographs.
        out_dir: output folder (created if missing).
        real_dir: folder of real low-quality images, or None.
        anchors: names of Real-ESRGAN's released models to compare against (may be empty).
        cache_dir: the teacher cache (default ``out_dir/teacher-cache``).
        crop: side of the centre crop in HR pixels; a multiple of the model's scale.
        max_images: at most this many photos (in file-name order).
        device: ``cpu``, ``cuda``...
        speed_sizes: frame sizes (width, height) of the speed figure; None measures no speed.
        anchor_loader: ``(name, device) -> module`` (default ``realesrgan.load_anchor``).

    Returns:
        The report.

    Raises:
        InputError: bad arguments, no photographs, an unknown anchor or a model scale that does not
            divide the anchors'.
        OutputError: ``out_dir`` or the cache cannot be written.
        CheckpointError: the model or an anchor's weights cannot be loaded.
    """
    start = time.perf_counter()
    unknown = [a for a in anchors if a not in ANCHORS]
    if unknown:
        raise InputError(f"footage: unknown anchor(s) {', '.join(unknown)}; choose from {', '.join(ANCHORS)}")
    net = load_model(model, device=device)
    scale = net.scale
    if anchors and ANCHOR_SCALE % scale:
        raise InputError(
            f"footage: the anchors are x{ANCHOR_SCALE} and the model x{scale}; their outputs can only be "
            f"compared at a scale that divides {ANCHOR_SCALE} (pass --anchors none)"
        )
    check_crop_settings("footage", crop, scale, max_images)
    paths = list_photos(photos_dir)
    real_paths = _real_inputs(Path(real_dir)) if real_dir is not None else []
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    cache = TeacherCache(
        Path(cache_dir) if cache_dir is not None else out / "teacher-cache", anchors, device, anchor_loader
    )

    subsets = _subsets(Path(photos_dir))
    photos: list[PhotoResult] = []
    sheet_rows: list[tuple[str, int, dict[str, torch.Tensor], torch.Tensor]] = []
    for path in paths:
        if max_images is not None and len(photos) >= max_images:
            break
        hr = read_crop(path, crop)
        if hr is None:
            continue
        t0 = time.perf_counter()
        result, images = _photo(net, cache, path.name, hr, subsets.get(path.name, ""))
        photos.append(result)
        if len(photos) <= CRF_SHEET_IMAGES:
            sheet_rows += [(path.stem, c, images[c], hr[0]) for c in CRF_SHEET_LEVELS]
        log.info(
            "%s: CRF rho %.3f, JPEG rho %.3f, gain at CRF 18/32/44 %+.2f/%+.2f/%+.2f dB (%.1f s)",
            path.name,
            result.crf_spearman,
            result.jpeg_spearman,
            *(result.gain("model", c, 0) for c in (18, 32, 44)),
            time.perf_counter() - t0,
        )
    if not photos:
        raise InputError(f"{photos_dir}: no photograph is at least {crop}x{crop} px; lower --crop")

    log.info("held-out evaluation (evaluate.py) on the same photos")
    ev: EvaluationReport = evaluate(net, photos_dir, out / "evaluate", crop=crop, max_images=max_images)
    synthetic = {
        **ev.summary(),
        **{k: ev.settings[k] for k in ("mid_blur_sigma", "mid_noise_sigma255", "mid_jpeg_quality")},
    }
    synthetic["report_json"] = ev.report_json
    synthetic["by_subset"] = {
        sub: {
            "photos": len(rs),
            "mean_psnr_gain": float(np.mean([r.psnr_gain for r in rs])),
            "mean_noise_spearman": float(np.mean([r.noise_spearman for r in rs])),
            "mean_blur_spearman": float(np.mean([r.blur_spearman for r in rs])),
        }
        for sub in sorted(set(subsets.values()))
        if (rs := [r for r in ev.images if subsets.get(r.name) == sub])
    }

    real: list[RealResult] = []
    if real_paths:
        sources: dict[str, Any] = {}
        sources_file = Path(str(real_dir)) / _SOURCES_NAME
        if sources_file.is_file():
            try:
                sources = json.loads(sources_file.read_text())
            except (OSError, ValueError) as e:
                raise InputError(f"{sources_file}: not readable JSON ({e})") from None
        for p in real_paths:
            t0 = time.perf_counter()
            real.append(_real(model, net, cache, p, out, device, dict(sources.get(p.name, {}))))
            log.info("%s: auto b%.3f n%.3f (%.1f s)", p.name, *real[-1].auto, time.perf_counter() - t0)

    speed = _speed(net, device, speed_sizes) if speed_sizes else {}

    files = {"report": str(out / REPORT_NAME), "crf contact sheet": str(out / CRF_SHEET_NAME)}
    _write_rgb(out / CRF_SHEET_NAME, _crf_sheet(sheet_rows))
    report = FootageReport(
        model=net.name,
        settings=_settings(crop, scale, anchors),
        photos=tuple(photos),
        synthetic=synthetic,
        real=tuple(real),
        speed=speed,
        cache={"dir": str(cache.root), "hits": cache.hits, "computed": cache.computed, "calls": cache.calls},
        files=files,
        seconds=time.perf_counter() - start,
    )
    try:
        (out / REPORT_NAME).write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    except OSError as e:
        raise OutputError(f"{out / REPORT_NAME}: cannot write the report ({e.strerror or e})") from None
    return report


def _anchor_list(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(a.strip() for a in text.split(",") if a.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: the footage evaluation; prints the tables. Returns the exit status (2 with a
    message on stderr for bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m mmrealsr_training.footage",
        description="Footage evaluation: estimator on x264/JPEG ladders, restoration against bicubic and "
        "Real-ESRGAN's released models on the same coded inputs, real-input contact sheets, speed; "
        "prints tables, writes report.json.",
    )
    parser.add_argument("--model", required=True, help="bundled model name or weights file")
    parser.add_argument("--photos", required=True, type=Path, help="folder of held-out PNG/JPEG photographs")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--real", type=Path, default=None, help="folder of real low-quality images")
    parser.add_argument(
        "--anchors",
        default=",".join(DEFAULT_ANCHORS),
        help=f"comma-separated anchors, or 'none' (default {','.join(DEFAULT_ANCHORS)})",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="teacher cache folder (default OUT/teacher-cache)"
    )
    parser.add_argument("--crop", type=int, default=256, help="centre crop side in HR pixels (default 256)")
    parser.add_argument("--max-images", type=int, default=None, help="at most this many photographs")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1... (default cpu)")
    parser.add_argument("--no-speed", action="store_true", help="skip the FLOPs and frames/s figures")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s"
    )
    try:
        report = footage(
            args.model,
            args.photos,
            args.out,
            real_dir=args.real,
            anchors=_anchor_list(args.anchors),
            cache_dir=args.cache,
            crop=args.crop,
            max_images=args.max_images,
            device=args.device,
            speed_sizes=None if args.no_speed else SPEED_SIZES,
        )
    except (MMRealSRVideoError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
