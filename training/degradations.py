"""MM-RealSR training-data synthesis: Real-ESRGAN's second-order degradation, rendered as controlled copies.

Every random choice for a batch is drawn once into a :class:`SynthesisPlan`; each LR copy is then rendered
from that plan at chosen strengths, so the copies differ only where they are meant to (blur for
``more_blur``, noise and compression (JPEG or a video codec's CRF / quantiser) for ``more_noise``,
everything at its worst for ``max_anchor``). :func:`synthesize` does it all for a batch;
:func:`degrade_fixed` is a controlled single-level degradation for evaluation.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mmrealsr_video.errors import InputError

from ._kernels import GAUSSIAN_KINDS, Kernel, fft_filter, gaussian_kernel_1d, kernel_stack
from .codecs import CODECS, VideoCoding, code_as_video, code_clip, codec_available, translate

__all__ = [
    "AXIS_ANCHORS",
    "COPY_NAMES",
    "DEGRADED_COPIES",
    "KERNEL_KINDS",
    "RESIZE_MODES",
    "SHARED_COPY",
    "BlurChoice",
    "CopyDegradation",
    "DegradationConfig",
    "JpegChoice",
    "Kernel",
    "Noise",
    "NoiseChoice",
    "Resize",
    "SamplePlan",
    "SynthesisPlan",
    "VideoChoice",
    "VideoClip",
    "degrade_fixed",
    "render",
    "resolve",
    "sample_plan",
    "synthesize",
    "usm_sharpen",
]

_log = logging.getLogger(__name__)

KERNEL_KINDS = GAUSSIAN_KINDS
RESIZE_MODES = ("area", "bilinear", "bicubic")
#: The copies rendered from a plan.
DEGRADED_COPIES = ("base", "more_blur", "more_noise", "max_anchor")
#: Every LR copy :func:`synthesize` returns.
COPY_NAMES = (*DEGRADED_COPIES, "min_anchor")

Level = Literal["base", "more", "worst"]
#: The (blur, noise-and-compression) strength of each rendered copy.
_COPY_LEVELS: dict[str, tuple[Level, Level]] = {
    "base": ("base", "base"),
    "more_blur": ("more", "base"),
    "more_noise": ("base", "more"),
    "max_anchor": ("worst", "worst"),
    # Ours, optional (``synthesize(..., axis_anchors=True)``): one degradation at its worst, the
    # other as in base, so that each knob's far end is learnt on its own.
    "blur_anchor": ("worst", "base"),
    "noise_anchor": ("base", "worst"),
}
#: The optional single-axis anchors (see ``_COPY_LEVELS``).
AXIS_ANCHORS = ("blur_anchor", "noise_anchor")
#: The optional copy of :func:`synthesize` (``shared_copy``): each sample's base degradation on another patch.
SHARED_COPY = "base_shared"

# Poisson noise is drawn through its Gaussian approximation (variance = mean) at this many counts per
# unit intensity, Real-ESRGAN's value for 8-bit images; see `Noise`.
_POISSON_COUNTS = 256.0
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges and probabilities of the synthesis; the defaults are MM-RealSR's released x4 configuration.

    Ranges are ``(low, high)`` tuples. Noise levels are Gaussian sigmas on the 0-255 scale or Poisson
    scales; JPEG qualities are OpenCV's 1-100. The ``blur`` / ``noise`` / ``jpeg`` switches turn a whole
    degradation off (for tests and ablations); the released pipeline has all three on. Video coding
    (ours) is off unless ``video_prob`` > 0; with it off the random stream is the released one.

    Attributes:
        scale: ratio between GT and LR size.
        blur: apply the blur kernels (both rounds and the final sinc filter).
        noise: add noise (both rounds).
        jpeg: JPEG-compress (both rounds).
        kernel_list: kernel families of both rounds (see ``KERNEL_KINDS``).
        kernel_probs: probability of each family in ``kernel_list``.
        kernel_sizes: odd kernel sizes drawn from uniformly (7..21).
        sinc_prob: probability of a sinc (circular low-pass) kernel instead, first round.
        blur_sigma: kernel sigma range, first round.
        betag_range: exponent range of the generalized Gaussian kernels.
        betap_range: exponent range of the plateau kernels.
        resize_prob: probabilities of resizing up / down / keeping, first round.
        resize_range: resize factor range, first round.
        gaussian_noise_prob: probability of Gaussian (else Poisson) noise, first round.
        noise_range: Gaussian sigma range, first round.
        poisson_scale_range: Poisson scale range, first round.
        gray_noise_prob: probability that the noise is the same in all channels, first round.
        jpeg_range: JPEG quality range, first round.
        second_blur_prob: probability of the second round's blur (the max anchor always has it).
        sinc_prob2, blur_sigma2, resize_prob2, resize_range2, gaussian_noise_prob2, noise_range2,
            poisson_scale_range2, gray_noise_prob2, jpeg_range2: the same for the second round.
        final_sinc_prob: probability of the final sinc filter at LR size.
        single_order_prob: ours, 0 in the released recipe: the share of samples degraded the classic
            single-order way instead (the first round's blur at GT size, one downscale straight to LR
            size with the batch's final interpolation mode, then the first round's noise and JPEG at LR
            size; no second round, no other resize, no sinc filter), as old footage was: soft optics,
            then grain and one lossy encoding at its own resolution.
        antialias: ours, False in the released recipe: bilinear and bicubic downscales low-pass the
            image first (``antialias=True`` of ``F.interpolate``; area resizing always averages), as an
            optical path or a scanner does, instead of sampling the image sparsely and folding its fine
            detail back as aliasing.
        noise_only_prob: ours, 0 in the released recipe: the share of samples whose ``more_noise`` copy
            is coded like the base (same JPEG qualities, same CRF / quantiser) and differs by its noise
            alone. With codecs in the recipe the compression gap can carry the whole ranking: an
            estimator trained only on both gaps at once learns to read blocking and stops reading grain.
        uncoded_prob: ours, 0 in the released recipe: the share of samples whose last lossy encoding
            is skipped (no JPEG, no video coding; single-order samples keep no encoding at all), so
            that grain also reaches the estimator as it is, as in film scans, lossless captures and
            high-bit-rate masters. Every copy of such a sample, the max anchor included, is uncoded.
        video_prob: ours, 0 in the released recipe: the share of samples whose last encoding is a real
            video codec instead of JPEG: a short clip of the image moving slightly, with fresh grain in
            every frame (the last round's noise, same kind and level, its own field), coded in 4:2:0
            through PyAV, and one inter-coded frame (P or B, as the encoder picks) of it taken back. The
            clip is coded last, at LR size (after the resize to LR and the sinc filter), whatever
            ``jpeg_last`` drew: a video is decoded at the size it was coded. Single-order samples code it
            in place of their one JPEG. The first round keeps its JPEG (an earlier generation). The
            ``jpeg`` switch does not turn video coding off.
        codecs: the encoders drawn from (keys of ``mmrealsr_training.codecs.CODECS``: libx264, libx265,
            mpeg2video, mpeg4).
        codec_probs: probability of each entry of ``codecs``.
        crf_range: CRF range of libx264 and libx265 (0-51; larger is worse).
        qscale_range: fixed-quantiser range of mpeg2video and mpeg4 (1-31; larger is worse, i.e. a
            lower bit rate: 2-5 is DVD-like, 10-31 the low rates of VCD- and DivX-era files).
        clip_frames: frames per clip (2-16); the frame taken back is drawn from the inter-coded ones.
        clip_motion: range of the clip's speed in LR pixels per frame (its direction is uniform).
        video_threads: threads that code a batch's clips (PyAV releases the GIL while coding); the
            output does not depend on it.
        blur_gap_min: the "more blur" control: least amount by which the ``more_blur`` kernel sigma
            exceeds the base one (summed over both axes for the anisotropic families).
        sinc_gap_min: the same for sinc kernels, as a cut-off frequency drop in radians per pixel.
        gaussian_noise_delta: the "more noise" control: range of the extra Gaussian sigma d (s -> s + d).
        poisson_noise_delta: range of the extra Poisson scale.
        jpeg_quality_drop: range of the JPEG quality drop d' of the ``more_noise`` copy (q -> q - d').
        crf_increase: range of the CRF increase of the ``more_noise`` copy, video samples (libx264/5).
        qscale_increase: range of the quantiser increase of the ``more_noise`` copy (mpeg2video/mpeg4).
        usm_radius: unsharp-mask Gaussian radius in pixels (kernel size 2r + 1, OpenCV's sigma for it).
        usm_weight: unsharp-mask strength.
        usm_threshold: residuals below this (0-255 scale) are left unsharpened.
    """

    scale: int = 4
    blur: bool = True
    noise: bool = True
    jpeg: bool = True
    # first round
    kernel_list: tuple[str, ...] = KERNEL_KINDS
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[int, int] = (30, 95)
    # second round
    second_blur_prob: float = 0.8
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[int, int] = (30, 95)
    final_sinc_prob: float = 0.8
    single_order_prob: float = 0.0
    antialias: bool = False
    # video coding (ours)
    video_prob: float = 0.0
    noise_only_prob: float = 0.0
    uncoded_prob: float = 0.0
    codecs: tuple[str, ...] = ("libx264", "libx265", "mpeg2video", "mpeg4")
    codec_probs: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2)
    crf_range: tuple[int, int] = (18, 51)
    qscale_range: tuple[int, int] = (2, 31)
    clip_frames: int = 3
    clip_motion: tuple[float, float] = (0.0, 1.0)
    video_threads: int = 1
    # MM-RealSR's controlled differences
    blur_gap_min: float = 0.1
    sinc_gap_min: float = 0.1
    gaussian_noise_delta: tuple[float, float] = (1.0, 21.0)
    poisson_noise_delta: tuple[float, float] = (0.05, 2.05)
    jpeg_quality_drop: tuple[int, int] = (5, 60)
    crf_increase: tuple[int, int] = (3, 18)
    qscale_increase: tuple[int, int] = (2, 14)
    # unsharp masking of the GT
    usm_radius: int = 50
    usm_weight: float = 0.5
    usm_threshold: float = 10.0

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> InputError:
            return InputError(f"DegradationConfig.{name}: {why} (got {getattr(self, name)!r})")

        if self.scale < 1:
            raise bad("scale", "must be a positive integer")
        if not self.kernel_list or any(k not in KERNEL_KINDS for k in self.kernel_list):
            raise bad("kernel_list", f"must name kernel families among {KERNEL_KINDS}")
        if len(self.kernel_probs) != len(self.kernel_list):
            raise bad("kernel_probs", "needs one probability per entry of kernel_list")
        if not self.kernel_sizes or any(s < 3 or s % 2 == 0 for s in self.kernel_sizes):
            raise bad("kernel_sizes", "must be odd sizes of at least 3")
        for name in ("kernel_probs", "resize_prob", "resize_prob2", "codec_probs"):
            probs = getattr(self, name)
            if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
                raise bad(name, "must be non-negative and sum to 1")
        for name in (
            "sinc_prob",
            "gaussian_noise_prob",
            "gray_noise_prob",
            "second_blur_prob",
            "sinc_prob2",
            "gaussian_noise_prob2",
            "gray_noise_prob2",
            "final_sinc_prob",
            "single_order_prob",
            "video_prob",
            "noise_only_prob",
            "uncoded_prob",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "must be a probability in [0, 1]")
        positive_ranges = (
            "blur_sigma",
            "blur_sigma2",
            "betag_range",
            "betap_range",
            "noise_range",
            "noise_range2",
            "poisson_scale_range",
            "poisson_scale_range2",
            "gaussian_noise_delta",
            "poisson_noise_delta",
        )
        for name in positive_ranges:
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise bad(name, "must be a range (low, high) with 0 < low <= high")
        for name in ("resize_range", "resize_range2"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= 1.0 <= hi:
                raise bad(name, "must be a range (low, high) with 0 < low <= 1 <= high")
        for name in ("jpeg_range", "jpeg_range2"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi <= 100:
                raise bad(name, "must be a quality range within 1..100")
            if hi - lo < self.jpeg_quality_drop[1]:
                raise bad(name, "is narrower than the largest jpeg_quality_drop")
        lo, hi = self.jpeg_quality_drop
        if not 0 < lo <= hi:
            raise bad("jpeg_quality_drop", "must be a range (low, high) with 0 < low <= high")
        for rng_name, delta_name in (
            ("noise_range", "gaussian_noise_delta"),
            ("noise_range2", "gaussian_noise_delta"),
            ("poisson_scale_range", "poisson_noise_delta"),
            ("poisson_scale_range2", "poisson_noise_delta"),
        ):
            lo, hi = getattr(self, rng_name)
            if hi - lo < getattr(self, delta_name)[1]:
                raise bad(rng_name, f"is narrower than the largest {delta_name}")
        for name in ("blur_sigma", "blur_sigma2"):
            lo, hi = getattr(self, name)
            if hi - lo <= self.blur_gap_min:
                raise bad(name, "is narrower than blur_gap_min")
        if self.blur_gap_min < 0:
            raise bad("blur_gap_min", "must be non-negative")
        if not 0.0 <= self.sinc_gap_min < math.pi / 3 * 2:
            raise bad("sinc_gap_min", "must be in [0, 2 pi / 3)")
        self._check_video(bad)
        if self.usm_radius < 1 or self.usm_weight < 0 or self.usm_threshold < 0:
            raise InputError(
                "DegradationConfig.usm_*: radius must be >= 1, weight and threshold >= 0 "
                f"(got {self.usm_radius}, {self.usm_weight}, {self.usm_threshold})"
            )

    def _check_video(self, bad: Callable[[str, str], InputError]) -> None:
        unknown = [c for c in self.codecs if c not in CODECS]
        if not self.codecs or unknown:
            raise bad(
                "codecs",
                f"unknown codec {unknown[0]!r}; known: {', '.join(CODECS)}" if unknown else "is empty",
            )
        if len(self.codec_probs) != len(self.codecs):
            raise bad("codec_probs", "needs one probability per entry of codecs")
        if self.video_prob > 0:
            missing = [c for c in self.codecs if not codec_available(c)]
            if missing:
                raise bad(
                    "codecs",
                    f"this PyAV build cannot code {missing[0]!r}; remove it or install a PyAV with it",
                )
        for rng_name, inc_name, control in (
            ("crf_range", "crf_increase", "crf"),
            ("qscale_range", "qscale_increase", "qscale"),
        ):
            limits = [spec.limits for spec in CODECS.values() if spec.control == control]
            lo_limit, hi_limit = max(lim[0] for lim in limits), min(lim[1] for lim in limits)
            inc_lo, inc_hi = getattr(self, inc_name)
            if not 0 < inc_lo <= inc_hi:
                raise bad(inc_name, "must be a range (low, high) with 0 < low <= high")
            lo, hi = getattr(self, rng_name)
            if not lo_limit <= lo <= hi <= hi_limit:
                raise bad(rng_name, f"must be a range within {lo_limit}..{hi_limit}")
            if hi - lo < inc_hi:
                raise bad(rng_name, f"is narrower than the largest {inc_name}")
        if not 2 <= self.clip_frames <= 16:
            raise bad("clip_frames", "must be 2..16 (an I-frame, then the inter-coded ones)")
        lo_m, hi_m = self.clip_motion
        if not 0.0 <= lo_m <= hi_m <= 8.0:
            raise bad(
                "clip_motion", "must be a range (low, high) with 0 <= low <= high <= 8 pixels per frame"
            )
        if self.video_threads < 1:
            raise bad("video_threads", "must be at least 1")


# --------------------------------------------------------------------------------------------------------
# The plan: every random choice, drawn once.
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlurChoice:
    """One round's kernel at the three strengths: same family, size, angle and shape; only the width
    (sigma, or the sinc cut-off) differs.

    Attributes:
        base: the "small" kernel of the base and more-noise copies.
        more: the wider kernel of the more-blur copy.
        worst: the widest the range allows, for the max anchor.
        applied: whether the base / more copies are blurred in this round at all (the second round's
            blur probability); the max anchor always is.
    """

    base: Kernel
    more: Kernel
    worst: Kernel
    applied: bool = True

    def at(self, level: Level) -> Kernel | None:
        """The kernel used at ``level``, or ``None`` for no blur."""
        if level == "worst":
            return self.worst
        if not self.applied:
            return None
        return self.more if level == "more" else self.base


@dataclass(frozen=True)
class Noise:
    """Concrete noise of one round.

    The realisation is ``level * std_unit * z`` with ``z`` a standard-normal field drawn from ``seed`` at
    the image size of the round (one channel broadcast to three when ``gray``). ``std_unit`` is
    ``1 / 255`` for Gaussian noise and ``sqrt(intensity / 256)`` for Poisson noise (its Gaussian,
    variance-equals-mean approximation, so that copies can share ``z`` and differ only in level).
    """

    kind: Literal["gaussian", "poisson"]
    gray: bool
    level: float
    seed: int


@dataclass(frozen=True)
class NoiseChoice:
    """One round's noise at the three strengths: same kind, colour mode and realisation ``seed``."""

    kind: Literal["gaussian", "poisson"]
    gray: bool
    base: float
    more: float
    worst: float
    seed: int

    def at(self, level: Level) -> Noise:
        """The noise at ``level``."""
        value = {"base": self.base, "more": self.more, "worst": self.worst}[level]
        return Noise(self.kind, self.gray, value, self.seed)


@dataclass(frozen=True)
class JpegChoice:
    """One round's JPEG quality at the three strengths (``more`` is lower than ``base``)."""

    base: int
    more: int
    worst: int

    def at(self, level: Level) -> int:
        """The quality at ``level``."""
        return {"base": self.base, "more": self.more, "worst": self.worst}[level]


@dataclass(frozen=True)
class VideoClip:
    """The last encoding of one copy as a short video clip.

    Attributes:
        coding: codec and CRF / quantiser.
        frames: frames in the clip; the first is an I-frame.
        index: the decoded frame that is kept (>= 1: inter-coded); it is the image itself, unmoved.
        motion: ``(dx, dy)`` LR pixels per frame: frame ``t`` is the image moved by ``(t - index) * motion``.
    """

    coding: VideoCoding
    frames: int
    index: int
    motion: tuple[float, float]


@dataclass(frozen=True)
class VideoChoice:
    """One sample's video clip at the three strengths: same codec, clip, motion, kept frame and grain;
    only the CRF / quantiser differs (``more`` is larger, i.e. worse, than ``base``; ``worst`` the largest)."""

    codec: str
    base: int
    more: int
    worst: int
    frames: int
    index: int
    motion: tuple[float, float]

    def at(self, level: Level) -> VideoClip:
        """The clip at ``level``."""
        value = {"base": self.base, "more": self.more, "worst": self.worst}[level]
        return VideoClip(VideoCoding(self.codec, value), self.frames, self.index, self.motion)


@dataclass(frozen=True)
class Resize:
    """A random resize: ``direction`` up / down / keep, the factor, and the interpolation mode."""

    direction: Literal["up", "down", "keep"]
    factor: float
    mode: str


@dataclass(frozen=True)
class SamplePlan:
    """Every per-sample random choice. ``None`` marks a degradation switched off in the config.

    Attributes:
        blur1, noise1, jpeg1: the first round.
        blur2, noise2, jpeg2: the second round.
        final_sinc: the final sinc filter at LR size, or ``None`` (not drawn this time).
        jpeg_last: True: resize to LR + sinc, then JPEG; False: JPEG, then resize + sinc.
        single_order: the classic single-order degradation instead (see
            ``DegradationConfig.single_order_prob``): :func:`resolve` moves the first round's noise
            and JPEG to the end and drops the second round and the sinc filter, for every copy.
        video: the last encoding as a video clip instead of JPEG (``DegradationConfig.video_prob``),
            or ``None``.
    """

    blur1: BlurChoice | None
    noise1: NoiseChoice | None
    jpeg1: JpegChoice | None
    blur2: BlurChoice | None
    noise2: NoiseChoice | None
    jpeg2: JpegChoice | None
    final_sinc: Kernel | None
    jpeg_last: bool
    single_order: bool = False
    video: VideoChoice | None = None


@dataclass(frozen=True)
class SynthesisPlan:
    """The random choices of one batch. Resizes are per batch (all images keep one size), the rest per sample.

    Attributes:
        scale: GT to LR ratio.
        resize1: the first round's resize, relative to the GT size.
        resize2: the second round's resize, relative to the LR size.
        final_mode: interpolation mode of the final resize to LR size.
        samples: one plan per image of the batch.
        antialias: whether bilinear and bicubic downscales low-pass first
            (:attr:`DegradationConfig.antialias`).
    """

    scale: int
    resize1: Resize
    resize2: Resize
    final_mode: str
    samples: tuple[SamplePlan, ...]
    antialias: bool = False


@dataclass(frozen=True)
class CopyDegradation:
    """The concrete degradation of one copy of one sample (the plan resolved at that copy's strengths).

    ``video``, when set, is the last encoding in place of ``jpeg2`` (then ``None``), coded after the
    resize to LR and the sinc filter (``jpeg_last`` True).
    """

    blur1: Kernel | None
    noise1: Noise | None
    jpeg1: int | None
    blur2: Kernel | None
    noise2: Noise | None
    jpeg2: int | None
    final_sinc: Kernel | None
    jpeg_last: bool
    video: VideoClip | None = None


def resolve(sample: SamplePlan, copy: str) -> CopyDegradation:
    """The degradation that ``copy`` (one of ``DEGRADED_COPIES``) of a sample receives.

    Raises:
        InputError: for an unknown copy name.
    """
    if copy not in _COPY_LEVELS:
        raise InputError(f"resolve: unknown copy {copy!r}; expected one of {tuple(_COPY_LEVELS)}")
    blur, noise = _COPY_LEVELS[copy]
    # The compression strength moves with the noise level: the noise knob covers both.
    video = sample.video.at(noise) if sample.video is not None else None
    if sample.single_order:
        # Blur at GT size; grain and the one encoding at LR size, in the second round's places.
        return CopyDegradation(
            blur1=sample.blur1.at(blur) if sample.blur1 is not None else None,
            noise1=None,
            jpeg1=None,
            blur2=None,
            noise2=sample.noise1.at(noise) if sample.noise1 is not None else None,
            jpeg2=sample.jpeg1.at(noise) if sample.jpeg1 is not None and video is None else None,
            final_sinc=None,
            jpeg_last=True,
            video=video,
        )
    return CopyDegradation(
        blur1=sample.blur1.at(blur) if sample.blur1 is not None else None,
        noise1=sample.noise1.at(noise) if sample.noise1 is not None else None,
        jpeg1=sample.jpeg1.at(noise) if sample.jpeg1 is not None else None,
        blur2=sample.blur2.at(blur) if sample.blur2 is not None else None,
        noise2=sample.noise2.at(noise) if sample.noise2 is not None else None,
        jpeg2=sample.jpeg2.at(noise) if sample.jpeg2 is not None and video is None else None,
        final_sinc=sample.final_sinc,
        jpeg_last=sample.jpeg_last or video is not None,
        video=video,
    )


def _gap_pair(g: np.random.Generator, lo: float, hi: float, gap_min: float) -> tuple[float, float]:
    """Two values ``a < b`` in ``[lo, hi]`` with ``b - a >= gap_min``: the gap first, then where it sits."""
    gap = g.uniform(min(gap_min, hi - lo), hi - lo)
    a = g.uniform(lo, hi - gap)
    return float(a), float(a + gap)


def _sample_blur(
    g: np.random.Generator,
    cfg: DegradationConfig,
    sigma: tuple[float, float],
    sinc_prob: float,
    applied: bool,
) -> BlurChoice:
    size = int(g.choice(cfg.kernel_sizes))
    if g.random() < sinc_prob:
        # Smaller cut-off = wider kernel. Real-ESRGAN's cut-off ranges: wide kernels may cut lower.
        lo = math.pi / 3 if size < 13 else math.pi / 5
        low_cut, high_cut = _gap_pair(g, lo, math.pi, cfg.sinc_gap_min)
        return BlurChoice(
            base=Kernel("sinc", size, omega_c=high_cut),
            more=Kernel("sinc", size, omega_c=low_cut),
            worst=Kernel("sinc", size, omega_c=lo),
            applied=applied,
        )
    kind = str(g.choice(cfg.kernel_list, p=np.asarray(cfg.kernel_probs) / sum(cfg.kernel_probs)))
    lo, hi = sigma
    if kind.endswith("_iso") or kind == "iso":
        sx_small, sx_large = _gap_pair(g, lo, hi, cfg.blur_gap_min)
        sy_small, sy_large = sx_small, sx_large
        rotation = 0.0
    else:
        # Each axis widens by at least half the gap, so the two together by at least the whole gap.
        sx_small, sx_large = _gap_pair(g, lo, hi, cfg.blur_gap_min / 2)
        sy_small, sy_large = _gap_pair(g, lo, hi, cfg.blur_gap_min / 2)
        rotation = float(g.uniform(-math.pi, math.pi))
    if kind.startswith("generalized"):
        b_lo, b_hi = cfg.betag_range
        # Half below 1 (heavier tails), half above (flatter tops), as in Real-ESRGAN.
        beta = float(
            g.uniform(b_lo, 1.0) if g.random() < 0.5 and b_lo < 1.0 else g.uniform(max(b_lo, 1.0), b_hi)
        )
    elif kind.startswith("plateau"):
        beta = float(g.uniform(*cfg.betap_range))
    else:
        beta = 1.0

    def make(sx: float, sy: float) -> Kernel:
        return Kernel(kind, size, sigma_x=sx, sigma_y=sy, rotation=rotation, beta=beta)

    return BlurChoice(make(sx_small, sy_small), make(sx_large, sy_large), make(hi, hi), applied=applied)


def _sample_noise(
    g: np.random.Generator,
    cfg: DegradationConfig,
    gaussian_prob: float,
    gaussian_range: tuple[float, float],
    poisson_range: tuple[float, float],
    gray_prob: float,
) -> NoiseChoice:
    gaussian = g.random() < gaussian_prob
    lo, hi = gaussian_range if gaussian else poisson_range
    d_lo, d_hi = cfg.gaussian_noise_delta if gaussian else cfg.poisson_noise_delta
    gray = bool(g.random() < gray_prob)
    delta = float(g.uniform(d_lo, d_hi))
    base = float(g.uniform(lo, hi - delta))
    seed = int(g.integers(0, 2**62))
    return NoiseChoice("gaussian" if gaussian else "poisson", gray, base, base + delta, float(hi), seed)


def _sample_jpeg(g: np.random.Generator, cfg: DegradationConfig, q_range: tuple[int, int]) -> JpegChoice:
    lo, hi = q_range
    drop = int(g.integers(cfg.jpeg_quality_drop[0], cfg.jpeg_quality_drop[1] + 1))
    more = int(g.integers(lo, hi - drop + 1))
    return JpegChoice(base=more + drop, more=more, worst=lo)


def _sample_video(g: np.random.Generator, cfg: DegradationConfig) -> VideoChoice:
    codec = str(g.choice(cfg.codecs, p=np.asarray(cfg.codec_probs) / sum(cfg.codec_probs)))
    crf = CODECS[codec].control == "crf"
    lo, hi = cfg.crf_range if crf else cfg.qscale_range
    inc_lo, inc_hi = cfg.crf_increase if crf else cfg.qscale_increase
    increase = int(g.integers(inc_lo, inc_hi + 1))
    base = int(g.integers(lo, hi - increase + 1))
    index = int(g.integers(1, cfg.clip_frames))
    speed = float(g.uniform(*cfg.clip_motion))
    angle = float(g.uniform(-math.pi, math.pi))
    motion = (speed * math.cos(angle), speed * math.sin(angle))
    return VideoChoice(codec, base, base + increase, hi, cfg.clip_frames, index, motion)


_DIRECTIONS: tuple[Literal["up", "down", "keep"], ...] = ("up", "down", "keep")


def _sample_resize(g: np.random.Generator, probs: Sequence[float], rng: tuple[float, float]) -> Resize:
    direction = _DIRECTIONS[int(g.choice(len(_DIRECTIONS), p=np.asarray(probs) / sum(probs)))]
    if direction == "up":
        factor = float(g.uniform(1.0, rng[1]))
    elif direction == "down":
        factor = float(g.uniform(rng[0], 1.0))
    else:
        factor = 1.0
    return Resize(direction, factor, str(g.choice(RESIZE_MODES)))


def sample_plan(batch_size: int, cfg: DegradationConfig, rng: torch.Generator) -> SynthesisPlan:
    """Draws every random choice for a batch.

    Args:
        batch_size: number of images.
        cfg: ranges and probabilities.
        rng: the only source of randomness; one 62-bit seed is taken from it for a numpy generator.

    Returns:
        The plan; :func:`render` turns it into images, :func:`resolve` into per-copy parameters.
    """
    if batch_size < 1:
        raise InputError(f"sample_plan: batch_size must be positive, got {batch_size}")
    seed = int(torch.randint(0, 2**62, (1,), generator=rng).item())
    g = np.random.default_rng(seed)
    resize1 = _sample_resize(g, cfg.resize_prob, cfg.resize_range)
    resize2 = _sample_resize(g, cfg.resize_prob2, cfg.resize_range2)
    final_mode = str(g.choice(RESIZE_MODES))
    samples = []
    for _ in range(batch_size):
        # Draw everything even when switched off, so a switch does not shift the other choices.
        blur1 = _sample_blur(g, cfg, cfg.blur_sigma, cfg.sinc_prob, applied=True)
        noise1 = _sample_noise(
            g, cfg, cfg.gaussian_noise_prob, cfg.noise_range, cfg.poisson_scale_range, cfg.gray_noise_prob
        )
        jpeg1 = _sample_jpeg(g, cfg, cfg.jpeg_range)
        blur2 = _sample_blur(
            g, cfg, cfg.blur_sigma2, cfg.sinc_prob2, applied=bool(g.random() < cfg.second_blur_prob)
        )
        noise2 = _sample_noise(
            g, cfg, cfg.gaussian_noise_prob2, cfg.noise_range2, cfg.poisson_scale_range2, cfg.gray_noise_prob2
        )
        jpeg2 = _sample_jpeg(g, cfg, cfg.jpeg_range2)
        final_size = int(g.choice(cfg.kernel_sizes))
        final_omega = float(g.uniform(math.pi / 3, math.pi))
        final_sinc = (
            Kernel("sinc", final_size, omega_c=final_omega) if g.random() < cfg.final_sinc_prob else None
        )
        jpeg_last = bool(g.random() < 0.5)
        # Drawn only when asked for, so that the released configuration's stream is unchanged.
        single = cfg.single_order_prob > 0 and bool(g.random() < cfg.single_order_prob)
        video = None
        if cfg.video_prob > 0:
            coded = bool(g.random() < cfg.video_prob)
            choice = _sample_video(g, cfg)  # drawn either way: the share does not shift other choices
            video = choice if coded else None
        if cfg.noise_only_prob > 0 and g.random() < cfg.noise_only_prob:
            # Drawn only when asked for, as above. The worst levels stay: the max anchor is unchanged.
            jpeg1 = dataclasses.replace(jpeg1, more=jpeg1.base)
            jpeg2 = dataclasses.replace(jpeg2, more=jpeg2.base)
            if video is not None:
                video = dataclasses.replace(video, more=video.base)
        # Drawn only when asked for, as above.
        uncoded = cfg.uncoded_prob > 0 and bool(g.random() < cfg.uncoded_prob)
        if uncoded:
            video = None
        samples.append(
            SamplePlan(
                blur1=blur1 if cfg.blur else None,
                noise1=noise1 if cfg.noise else None,
                jpeg1=jpeg1 if cfg.jpeg and not (uncoded and single) else None,
                blur2=blur2 if cfg.blur else None,
                noise2=noise2 if cfg.noise else None,
                jpeg2=jpeg2 if cfg.jpeg and not uncoded else None,
                final_sinc=final_sinc if cfg.blur else None,
                jpeg_last=jpeg_last,
                single_order=single,
                video=video,
            )
        )
    return SynthesisPlan(cfg.scale, resize1, resize2, final_mode, tuple(samples), cfg.antialias)


# --------------------------------------------------------------------------------------------------------
# Rendering.
# --------------------------------------------------------------------------------------------------------


def _blur(x: torch.Tensor, kernels: Sequence[Kernel | None]) -> torch.Tensor:
    stack = kernel_stack(kernels)
    return x if stack is None else fft_filter(x, stack)


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str, antialias: bool = False) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias)


def _noise_pattern(seed: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """The standard-normal field of a noise seed: the same seed and shape give the same field."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen)


def _add_noise(x: torch.Tensor, noises: Sequence[Noise | None], batch: int) -> torch.Tensor:
    """Adds each image's noise, then clips to [0, 1].

    ``x`` stacks the copies of a batch copy-major (image ``c * batch + s`` is copy ``c`` of sample ``s``);
    the copies of a sample share kind, colour mode and field ``z`` and differ only in level, so ``z`` is
    drawn once per sample and broadcast over the copies.
    """
    if all(spec is None for spec in noises):
        return x
    n, _, h, w = x.shape
    copies = n // batch
    shared: list[Noise | None] = []
    for s in range(batch):
        specs = [spec for spec in noises[s::batch] if spec is not None]
        if any((o.kind, o.gray, o.seed) != (specs[0].kind, specs[0].gray, specs[0].seed) for o in specs[1:]):
            raise ValueError(f"the copies of sample {s} must share noise kind, colour mode and seed")
        shared.append(specs[0] if specs else None)
    xs = x.reshape(copies, batch, 3, h, w)
    out = torch.empty_like(xs)
    for s, spec in enumerate(shared):
        xi = xs[:, s]
        if spec is None:
            out[:, s] = xi
            continue
        z = _noise_pattern(spec.seed, (1 if spec.gray else 3, h, w))
        level = torch.tensor([o.level if o is not None else 0.0 for o in noises[s::batch]]).view(
            copies, 1, 1, 1
        )
        if spec.kind == "gaussian":
            noise = z * (level / 255.0)
        else:
            # Poisson: standard deviation sqrt(intensity / counts), of the luma for gray noise.
            intensity = xi.clamp(0.0, 1.0)
            if spec.gray:
                intensity = (intensity * torch.tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
            noise = intensity.sqrt_().mul_(z).mul_(level / math.sqrt(_POISSON_COUNTS))
        torch.add(xi, noise, out=out[:, s])
    return out.clamp_(0.0, 1.0).view(n, 3, h, w)


def _jpeg(x: torch.Tensor, qualities: Sequence[int | None]) -> torch.Tensor:
    """JPEG-compresses each image with its quality through OpenCV's encoder (``None``: left as is).

    Compressed images come back on 8-bit levels; the rest are only clipped to [0, 1].
    """
    todo = [i for i, q in enumerate(qualities) if q is not None]
    if not todo:
        return x
    everything = len(todo) == x.shape[0]
    picked = x if everything else x[todo]
    u8 = (
        picked.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    )
    for j, i in enumerate(todo):
        ok, buf = cv2.imencode(
            ".jpg",
            cv2.cvtColor(u8[j], cv2.COLOR_RGB2BGR),
            [int(cv2.IMWRITE_JPEG_QUALITY), int(qualities[i] or 0)],
        )
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if bgr is None:
            raise RuntimeError(f"OpenCV failed to JPEG-code image {i} at quality {qualities[i]}")
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=u8[j])
    coded = torch.from_numpy(u8).permute(0, 3, 1, 2).to(x.dtype).div_(255.0)
    if everything:
        return coded
    out = x.clamp(0.0, 1.0)
    out[todo] = coded
    return out


def _frame_seed(seed: int, frame: int) -> int:
    """The grain field of another frame of a clip: the copies of a sample share it, as they share ``seed``."""
    return int(np.random.SeedSequence([seed, frame]).generate_state(1, np.uint64)[0] >> np.uint64(2))


def _video(
    x: torch.Tensor,
    pre: torch.Tensor,
    specs: Sequence[CopyDegradation],
    batch: int,
    noise_of: Callable[[CopyDegradation], Noise | None],
    finish: Callable[[torch.Tensor, Sequence[CopyDegradation]], torch.Tensor],
    threads: int,
) -> torch.Tensor:
    """Replaces each image whose copy has a ``video`` clip by the clip's decoded frame ``index``.

    The clip's frame ``index`` is the image itself (``x``, as it would go to the encoder); each other frame
    ``t`` is made the same way from ``pre``, the images before their last noise: moved by ``(t - index) *
    motion``, with fresh grain of the same kind and level (the field of seed ``(seed, t)``: film grain and
    sensor noise change every frame, which inter-coding cannot predict), then ``finish`` (the resize to
    LR and the sinc filter). ``x`` stacks the copies copy-major, ``batch`` samples each; the copies of a
    sample share everything of the clip but its strength.
    """
    copies = x.shape[0] // batch
    coded_by_sample = [[specs[c * batch + s].video is not None for c in range(copies)] for s in range(batch)]
    if any(any(flags) and not all(flags) for flags in coded_by_sample):
        raise ValueError("the copies of a sample must all be video-coded or none")
    todo = [s for s in range(batch) if coded_by_sample[s][0]]
    if not todo:
        return x
    clip_of = {s: clip for s in todo if (clip := specs[s].video) is not None}
    lengths = {clip.frames for clip in clip_of.values()}
    if len(lengths) != 1:
        raise ValueError(f"the clips of a batch must have one length, got {sorted(lengths)}")
    length = lengths.pop()

    # Every other frame of every clip in one stack, copy-major over (frame, sample) pairs, so that the
    # copies of a pair share its grain field as they share the sample's.
    pairs = [(t, s) for t in range(length) for s in todo if t != clip_of[s].index]
    src = [c * batch + s for c in range(copies) for _, s in pairs]
    step = torch.tensor([t - clip_of[s].index for t, s in pairs] * copies, dtype=torch.float32)
    motion = torch.tensor([clip_of[s].motion for _, s in pairs] * copies, dtype=torch.float32)
    scale = torch.tensor([pre.shape[-1] / x.shape[-1], pre.shape[-2] / x.shape[-2]])
    which = [specs[i] for i in src]
    noises = []
    for (t, _), spec in zip(pairs * copies, which, strict=True):
        n = noise_of(spec)
        noises.append(dataclasses.replace(n, seed=_frame_seed(n.seed, t)) if n is not None else None)
    others = finish(
        _add_noise(translate(pre[src], step[:, None] * motion * scale), noises, len(pairs)), which
    )
    position = {(c, t, s): c * len(pairs) + j for c in range(copies) for j, (t, s) in enumerate(pairs)}

    def to_u8(y: torch.Tensor) -> np.ndarray:
        return y.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    target_u8, others_u8 = to_u8(x), to_u8(others)
    jobs = [(c, s) for c in range(copies) for s in todo]

    def decoded(job: tuple[int, int]) -> np.ndarray:
        c, s = job
        clip = specs[c * batch + s].video
        assert clip is not None
        frames = np.stack(
            [
                target_u8[c * batch + s] if t == clip.index else others_u8[position[c, t, s]]
                for t in range(length)
            ]
        )
        return code_clip(frames, clip.coding)[clip.index]

    if threads > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(min(threads, len(jobs))) as pool:
            coded = list(pool.map(decoded, jobs))
    else:
        coded = [decoded(job) for job in jobs]
    out = x.clone()
    out[[c * batch + s for c, s in jobs]] = (
        torch.from_numpy(np.stack(coded)).permute(0, 3, 1, 2).to(x.dtype).div_(255.0)
    )
    return out


def _quantize(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0.0, 1.0) * 255.0).round() / 255.0


def _check_batch(x: torch.Tensor, name: str, func: str, scale: int) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"{func}: {name} must be (B, 3, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"{func}: {name} must be a float tensor in [0, 1], got {x.dtype}")
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise InputError(f"{func}: {name} size {h}x{w} is not a multiple of the scale {scale}; crop it first")


def render(
    gt_usm: torch.Tensor,
    plan: SynthesisPlan,
    copies: Sequence[str] = DEGRADED_COPIES,
    *,
    video_threads: int = 1,
) -> dict[str, torch.Tensor]:
    """Renders degraded LR copies of a batch from a plan.

    Args:
        gt_usm: (B, 3, H, W) float in [0, 1], the sharpened GT that is degraded (as MM-RealSR does).
        plan: from :func:`sample_plan` for this batch size.
        copies: names among ``DEGRADED_COPIES``.
        video_threads: threads coding the video clips (the output does not depend on it).

    Returns:
        One (B, 3, H / scale, W / scale) float32 tensor per copy, clamped and rounded to 8-bit levels.

    Raises:
        InputError: a wrong shape, a plan for another batch size, or an unknown copy.
    """
    _check_batch(gt_usm, "gt_usm", "render", plan.scale)
    b, _, h, w = gt_usm.shape
    if len(plan.samples) != b:
        raise InputError(f"render: the plan is for {len(plan.samples)} images, the batch has {b}")
    lr_size = (h // plan.scale, w // plan.scale)
    single = [s.single_order for s in plan.samples]
    if any(single) and not all(single):
        # Single-order samples take another path: render each kind on its own and interleave them back.
        parts = {}
        for kind in (True, False):
            idx = [i for i, flag in enumerate(single) if flag is kind]
            sub = dataclasses.replace(plan, samples=tuple(plan.samples[i] for i in idx))
            parts[kind] = (idx, render(gt_usm[idx], sub, copies, video_threads=video_threads))
        out = {}
        for name in copies:
            merged = gt_usm.new_empty((b, 3, *lr_size))
            for idx, rendered in parts.values():
                merged[idx] = rendered[name]
            out[name] = merged
        return out
    specs = [resolve(s, c) for c in copies for s in plan.samples]  # copy-major, like the stacked batch

    # Round 1 filters the same source for every copy: one forward transform per image, one inverse per
    # distinct kernel (base and more_noise share theirs).
    wanted = [(i % b, s.blur1) for i, s in enumerate(specs)]
    distinct = list(dict.fromkeys(wanted))
    position = {key: i for i, key in enumerate(distinct)}
    stack = kernel_stack([kernel for _, kernel in distinct])
    if stack is None:
        x = gt_usm.float().repeat(len(copies), 1, 1, 1)
    else:
        filtered = fft_filter(gt_usm.float(), stack, source=[src for src, _ in distinct])
        x = filtered[[position[key] for key in wanted]]
    if all(single):
        # The classic model: blur, one downscale straight to LR size, grain, one lossy encoding.
        pre = _resize(x, lr_size, plan.final_mode, plan.antialias)
        x = _add_noise(pre, [s.noise2 for s in specs], b)
        x = _jpeg(x, [s.jpeg2 for s in specs])
        x = _video(x, pre, specs, b, lambda s: s.noise2, lambda y, _: y, video_threads)
        x = _quantize(x)
        return {name: x[i * b : (i + 1) * b] for i, name in enumerate(copies)}
    f1 = plan.resize1.factor
    x = _resize(x, (max(int(h * f1), 1), max(int(w * f1), 1)), plan.resize1.mode, plan.antialias)
    x = _add_noise(x, [s.noise1 for s in specs], b)
    x = _jpeg(x, [s.jpeg1 for s in specs])

    x = _blur(x, [s.blur2 for s in specs])
    f2 = plan.resize2.factor
    pre = _resize(
        x, (max(int(lr_size[0] * f2), 1), max(int(lr_size[1] * f2), 1)), plan.resize2.mode, plan.antialias
    )
    x = _add_noise(pre, [s.noise2 for s in specs], b)

    def finish(y: torch.Tensor, which: Sequence[CopyDegradation]) -> torch.Tensor:
        y = _resize(y, lr_size, plan.final_mode, plan.antialias)
        return _blur(y, [s.final_sinc for s in which])

    # Real-ESRGAN's two orders of the last steps: [resize + sinc] then JPEG, or JPEG then [resize + sinc].
    # A video clip is always coded last.
    x = _jpeg(x, [None if s.jpeg_last else s.jpeg2 for s in specs])
    x = finish(x, specs)
    x = _jpeg(x, [s.jpeg2 if s.jpeg_last else None for s in specs])
    x = _video(x, pre, specs, b, lambda s: s.noise2, finish, video_threads)

    x = _quantize(x)
    return {name: x[i * b : (i + 1) * b] for i, name in enumerate(copies)}


def usm_sharpen(
    img: torch.Tensor, *, radius: int = 50, weight: float = 0.5, threshold: float = 10.0
) -> torch.Tensor:
    """Unsharp masking as Real-ESRGAN sharpens its GT: only where the detail exceeds ``threshold``.

    Args:
        img: (B, C, H, W) float in [0, 1].
        radius: Gaussian radius; the kernel is ``2 radius + 1`` wide with OpenCV's default sigma for it.
        weight: amount of detail added back.
        threshold: detail (0-255 scale) below which nothing is sharpened; the mask is feathered.

    Returns:
        The sharpened image, same shape, in [0, 1].
    """
    size = 2 * radius + 1
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # what cv2.getGaussianKernel picks for sigma <= 0
    g1 = torch.from_numpy(gaussian_kernel_1d(size, sigma).astype(np.float32))
    kernel = (g1[:, None] * g1[None, :]).unsqueeze(0)
    blurred = fft_filter(img, kernel)
    residual = img - blurred
    mask = (residual.abs() * 255.0 > threshold).to(img.dtype)
    soft = fft_filter(mask, kernel)
    sharp = (img + weight * residual).clamp(0.0, 1.0)
    return soft * sharp + (1.0 - soft) * img


def synthesize(
    gt: torch.Tensor,
    cfg: DegradationConfig,
    rng: torch.Generator,
    *,
    axis_anchors: bool = False,
    shared_copy: bool = False,
) -> dict[str, torch.Tensor]:
    """Synthesises MM-RealSR's training copies for a batch of GT patches.

    Args:
        gt: (B, 3, H, W) float32 in [0, 1], H and W multiples of ``cfg.scale`` (e.g. 192).
        cfg: the synthesis configuration.
        rng: the only source of randomness: the same generator state gives bit-identical outputs.

    Returns:
        ``"gt"`` (the input), ``"gt_usm"`` (the unsharp-masked GT, the L1 target, (B, 3, H, W)) and the
        five LR copies of ``COPY_NAMES``, each (B, 3, H / scale, W / scale) float32 in [0, 1] on 8-bit
        levels: ``base``, ``more_blur``, ``more_noise``, ``max_anchor`` and ``min_anchor`` (``gt_usm``
        area-downscaled, no degradation); with ``axis_anchors`` also ``blur_anchor`` and
        ``noise_anchor`` (one degradation at its worst, the other as in base); with ``shared_copy``
        also ``base_shared`` (ours): sample ``i``'s base degradation, every random choice of it
        (kernels, noise field and level, JPEG, video clip), applied to the next patch of the batch,
        ``(i + 1) % B``: the same degradation on another photo, for ``loss.consistency_weight``. The
        extra copies are rendered from the same plan: the other copies are identical with or without
        them.

    Raises:
        InputError: ``gt`` of the wrong shape or type.
    """
    _check_batch(gt, "gt", "synthesize", cfg.scale)
    gt = gt.float()
    h, w = gt.shape[-2:]
    gt_usm = usm_sharpen(gt, radius=cfg.usm_radius, weight=cfg.usm_weight, threshold=cfg.usm_threshold)
    plan = sample_plan(gt.shape[0], cfg, rng)
    _log.debug("synthesis plan: %s", plan)
    out = render(
        gt_usm,
        plan,
        (*DEGRADED_COPIES, *AXIS_ANCHORS) if axis_anchors else DEGRADED_COPIES,
        video_threads=cfg.video_threads,
    )
    if shared_copy:
        # Row i of the rolled batch is patch i + 1, degraded by sample i's plan.
        other = render(gt_usm.roll(-1, 0), plan, ("base",), video_threads=cfg.video_threads)
        out[SHARED_COPY] = other["base"]
    out["min_anchor"] = _quantize(F.interpolate(gt_usm, size=(h // cfg.scale, w // cfg.scale), mode="area"))
    return {"gt": gt, "gt_usm": gt_usm, **out}


def degrade_fixed(
    hr: torch.Tensor,
    *,
    blur_sigma: float,
    noise_sigma: float,
    jpeg_quality: int | None = None,
    video: VideoCoding | None = None,
    scale: int = 4,
    seed: int = 0,
) -> torch.Tensor:
    """A controlled single-level degradation for evaluation.

    Isotropic Gaussian blur (``blur_sigma`` in HR pixels; below 0.05 none) -> antialiased bicubic
    downscale by ``scale`` -> Gaussian noise of ``noise_sigma`` on the 0-255 scale, its field fixed by
    ``seed`` (so levels differ only in amplitude) -> optional JPEG or video coding (the P-frame of a
    short clip, :func:`mmrealsr_training.codecs.code_as_video`) -> clamp and 8-bit rounding.

    Args:
        hr: (B, 3, H, W) float in [0, 1], H and W multiples of ``scale``.
        blur_sigma: Gaussian blur sigma in HR pixels.
        noise_sigma: Gaussian noise sigma, 0-255 scale.
        jpeg_quality: JPEG quality 1-100, or ``None`` for no compression.
        video: a codec and CRF / quantiser (e.g. ``VideoCoding("libx264", 32)``), or ``None``; not
            together with ``jpeg_quality``.
        scale: downscale factor.
        seed: seed of the noise field.

    Returns:
        (B, 3, H / scale, W / scale) float32 in [0, 1].

    Raises:
        InputError: an input of the wrong shape or a parameter out of range.
    """
    if scale < 1:
        raise InputError(f"degrade_fixed: scale must be a positive integer, got {scale}")
    _check_batch(hr, "hr", "degrade_fixed", scale)
    if blur_sigma < 0 or noise_sigma < 0:
        raise InputError(
            f"degrade_fixed: blur_sigma and noise_sigma must be >= 0, got {blur_sigma}, {noise_sigma}"
        )
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise InputError(f"degrade_fixed: jpeg_quality must be in 1..100 or None, got {jpeg_quality}")
    if jpeg_quality is not None and video is not None:
        raise InputError("degrade_fixed: give jpeg_quality or video, not both")
    x = hr.float()
    h, w = x.shape[-2:]
    if blur_sigma >= 0.05:
        size = 2 * math.ceil(3.0 * blur_sigma) + 1
        x = _blur(x, [Kernel("iso", size, sigma_x=blur_sigma, sigma_y=blur_sigma)])
    if scale > 1:
        x = F.interpolate(
            x, size=(h // scale, w // scale), mode="bicubic", align_corners=False, antialias=True
        )
    if noise_sigma > 0:
        gen = torch.Generator().manual_seed(seed)
        x = x + (noise_sigma / 255.0) * torch.randn(x.shape, generator=gen)
    x = x.clamp(0.0, 1.0)
    if jpeg_quality is not None:
        x = _jpeg(x, [jpeg_quality] * x.shape[0])
    if video is not None:
        crf = video.level if CODECS[video.codec].control == "crf" else None
        x = code_as_video(x, video.codec, crf=crf, qscale=None if crf is not None else video.level)
    return _quantize(x)
