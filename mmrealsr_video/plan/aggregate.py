"""From raw per-frame estimates to the automatic coefficient of every frame.

Three modes:

- ``scene`` (default): one value per scene, the median of the scene's sampled estimates; robust
  to a few odd frames (a flash, a title card) and steady within the scene.
- ``drift``: follows gradual change within a scene. The samples are median-filtered (3 samples),
  interpolated linearly over the scene's frames, then smoothed with a moving average of
  ``drift_window`` frames; the ends of a scene hold their nearest value.
- ``raw``: the per-frame estimates as they are (each frame holds the last sample of its scene),
  for comparison.

No mode ever smooths across a cut: every computation runs on one scene's frames alone. A scene
without any sample (possible only with external cuts and sparse sampling) inherits the value of
the scene before it (or after it, for the first scene).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d

from mmrealsr_video.errors import InputError, SettingsError

__all__ = ["PLAN_MODES", "PlanConfig", "plan_auto", "scene_ranges"]

PLAN_MODES = ("scene", "drift", "raw")


@dataclass(frozen=True)
class PlanConfig:
    """How raw estimates become automatic coefficients."""

    mode: str = "scene"
    drift_window: int = 48

    def __post_init__(self) -> None:
        if self.mode not in PLAN_MODES:
            raise SettingsError("mode", f"must be one of {', '.join(PLAN_MODES)}, not {self.mode!r}")
        if self.drift_window < 1:
            raise SettingsError("drift_window", f"must be at least 1 frame, not {self.drift_window}")


def scene_ranges(cuts: Sequence[int], frames: int) -> list[tuple[int, int]]:
    """[(first, last_exclusive)] of each scene, given sorted cuts inside (0, frames)."""
    bounds = [0, *cuts, frames]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def plan_auto(
    frames: int,
    cuts: Sequence[int],
    samples: Mapping[int, Sequence[float]],
    config: PlanConfig | None = None,
) -> np.ndarray:
    """The automatic coefficients of every frame.

    Args:
        frames: number of frames.
        cuts: first frame of every scene after the first, sorted.
        samples: frame index -> raw estimate (one value per coefficient) for the sampled frames.
        config: the aggregation mode.

    Returns:
        (frames, C) float64 array in [0, 1].
    """
    cfg = config or PlanConfig()
    if not samples:
        raise InputError("plan: no frame was sampled; nothing to plan from")
    width = len(next(iter(samples.values())))
    out = np.full((frames, width), np.nan)
    for first, last in scene_ranges(cuts, frames):
        idx = sorted(i for i in samples if first <= i < last)
        if not idx:
            continue
        values = np.asarray([samples[i] for i in idx], dtype=np.float64)
        if cfg.mode == "scene":
            out[first:last] = np.median(values, axis=0)
        elif cfg.mode == "raw":
            pos = np.searchsorted(idx, np.arange(first, last), side="right") - 1
            out[first:last] = values[np.clip(pos, 0, len(idx) - 1)]
        else:
            out[first:last] = _drift(np.asarray(idx), values, first, last, cfg.drift_window)
    _inherit_missing(out, scene_ranges(cuts, frames))
    return np.clip(out, 0.0, 1.0)


def _drift(idx: np.ndarray, values: np.ndarray, first: int, last: int, window: int) -> np.ndarray:
    if len(idx) >= 3:
        values = median_filter(values, size=(3, 1), mode="nearest")
    frames = np.arange(first, last)
    curve = np.stack([np.interp(frames, idx, values[:, k]) for k in range(values.shape[1])], axis=1)
    size = min(window, last - first)
    return uniform_filter1d(curve, size=size, axis=0, mode="nearest") if size > 1 else curve


def _inherit_missing(out: np.ndarray, scenes: list[tuple[int, int]]) -> None:
    known = [(a, b) for a, b in scenes if not np.isnan(out[a]).any()]
    for a, b in scenes:
        if np.isnan(out[a]).any():
            before = [k for k in known if k[1] <= a]
            donor = before[-1] if before else known[0]
            out[a:b] = out[donor[1] - 1] if before else out[donor[0]]
