"""The picture of a coefficient track: blur and noise over time, with scene cuts, the estimator's
samples and the keyframes, as a PNG (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.io.files import write_bytes_atomic
from mmrealsr_video.plan.keyframes import Keyframes, key_positions
from mmrealsr_video.plan.track import CoefficientTrack

__all__ = ["plot_track"]


def plot_track(track: CoefficientTrack, path: str | Path, keyframes: Keyframes | None = None) -> Path:
    """Draws blur and noise over time as a PNG: final values (lines), automatic values (dashed),
    raw estimator samples (dots), scene cuts (vertical lines) and, if given, keyframes (triangles;
    a scene key also shades its scene).

    Returns:
        The path written (atomically).

    Raises:
        InputError: matplotlib is not installed (install the ``plot`` extra), or the track is empty.
        OutputError: the file cannot be written.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'mmrealsr-video[plot]'") from None
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise OutputError(f"{p}: a track plot is written as .png, not {p.suffix!r}")
    if not track.frames:
        raise InputError("cannot plot an empty track")
    t = track.column("pts_time")
    t = t - t[0]
    positions: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}
    if keyframes is not None:
        positions = key_positions(track, keyframes)

    fig = Figure(figsize=(12, 6.5), dpi=110, layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    colours = {"blur": "tab:blue", "noise": "tab:orange"}
    for ax, name in zip(axes, ("blur", "noise"), strict=True):
        c = colours[name]
        final = track.column(name)
        auto = track.column(f"auto_{name}")
        raw = track.column(f"raw_{name}")
        for first, last in positions.get(name, ([], []))[1]:
            ax.axvspan(t[first], t[last - 1], color=c, alpha=0.08, lw=0)
        for i, cut in enumerate(track.cuts):
            ax.axvline(t[cut], color="0.55", lw=0.8, ls=":", label="scene cut" if i == 0 else None)
        ax.plot(t, auto, color="0.35", lw=1.2, ls="--", label=f"auto {name}")
        ax.plot(t, final, color=c, lw=2.0, label=f"final {name}")
        sampled = ~np.isnan(raw)
        if sampled.any():
            ax.plot(
                t[sampled],
                raw[sampled],
                ls="none",
                marker="o",
                ms=3,
                color="0.2",
                alpha=0.5,
                label=f"raw {name} (estimator)",
            )
        points, spans = positions.get(name, ([], []))
        kx = [t[i] for i in points] + [t[first] for first, _ in spans]
        ky = [final[i] for i in points] + [final[first] for first, _ in spans]
        if kx:
            ax.plot(
                kx,
                ky,
                ls="none",
                marker="v",
                ms=9,
                color=c,
                markeredgecolor="black",
                label="keyframe",
                zorder=5,
            )
        ax.set_ylim(-0.04, 1.1)
        ax.set_ylabel(name)
        scenes = track.scenes()
        if len(scenes) <= 40:  # scene numbers, for writing "scene N" keys; unreadable beyond that
            for first, _ in scenes:
                ax.text(
                    t[first], 1.09, f" {track.frames[first].scene}", fontsize="x-small", color="0.4", va="top"
                )
        ax.grid(True, axis="y", color="0.9")
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small", frameon=False)
    axes[-1].set_xlabel("time from the first frame (s)")
    if len(t) > 1 and np.all(np.diff(t) > 0):
        idx = track.column("index").astype(np.float64)
        top = axes[0].secondary_xaxis(
            "top", functions=(lambda x: _extrapolate(x, t, idx), lambda f: _extrapolate(f, idx, t))
        )
        top.set_xlabel("frame")
    n_scenes = len(track.scenes())
    fig.suptitle(
        f"Coefficient track: model {track.model}, {len(track)} frames, {n_scenes} scene"
        + ("s" if n_scenes != 1 else "")
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(p, buf.getvalue())
    return p


def _extrapolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp`` continued linearly past both ends (a secondary axis needs a mapping that
    does not flatten outside the data)."""
    x = np.asarray(x, np.float64)
    y = np.interp(x, xp, fp)
    lo = (fp[1] - fp[0]) / (xp[1] - xp[0])
    hi = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    y = np.where(x < xp[0], fp[0] + (x - xp[0]) * lo, y)
    return np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * hi, y)
