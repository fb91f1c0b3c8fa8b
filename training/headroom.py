"""How much of the quality goal a model's coefficients and more inference could still give: the quality
figure of :mod:`mmrealsr_training.evaluate` (mid-level input, PSNR gain of the luma over bicubic), again

- with self-ensembles: the model run on the input's flips and rotations, outputs turned back and averaged
  (x2: identity and horizontal flip; x8: the eight symmetries of the square), at the automatic coefficients;
- with the best coefficients of a ``grid`` x ``grid`` lattice over [0, 1]^2 chosen per photograph (an oracle
  that looks at the ground truth), alone and with the x8 ensemble.

When even the last column stays under the goal, the generator is the limit, not the estimator or the
amount of inference. Run as::

    python -m mmrealsr_training.headroom --model NAME_OR_PATH --photos DIR [--grid 6] [--crop 256]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mmrealsr_video import ModulatedModel
from mmrealsr_video.errors import InputError

from .evaluate import check_crop_settings, list_photos, mid_level_input, read_crop, run_photo_command
from .metrics import bicubic_upscale, luma_psnr
from .report import PSNR_GAIN_GOAL_DB

__all__ = [
    "COLUMNS",
    "HeadroomReport",
    "PhotoHeadroom",
    "dihedral",
    "headroom",
    "main",
    "restore_ensemble",
    "undo_dihedral",
]

log = logging.getLogger(__name__)

#: The report's figures, in the order of :attr:`PhotoHeadroom.gains`.
COLUMNS = ("auto", "auto x2", "auto x8", "grid best", "grid best x8")


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry ``k`` (0-7) of the square on the last two axes: ``k % 4`` quarter turns, then a
    horizontal flip when ``k >= 4``."""
    if not 0 <= k < 8:
        raise InputError(f"dihedral: k must be in 0..7, got {k}")
    x = torch.rot90(x, k % 4, (-2, -1))
    return torch.flip(x, (-1,)) if k >= 4 else x


def undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of :func:`dihedral` ``k``."""
    if not 0 <= k < 8:
        raise InputError(f"undo_dihedral: k must be in 0..7, got {k}")
    if k >= 4:
        x = torch.flip(x, (-1,))
    return torch.rot90(x, -(k % 4), (-2, -1))


@torch.no_grad()
def restore_ensemble(
    model: ModulatedModel, lr: torch.Tensor, coeffs: torch.Tensor, symmetries: Sequence[int]
) -> torch.Tensor:
    """The mean of ``model.restore`` over the given symmetries of ``lr`` (B, 3, h, w), each output turned
    back; ``coeffs`` (B, 2) as for ``restore``. ``symmetries=(0,)`` is the plain restore."""
    if not symmetries:
        raise InputError("restore_ensemble: give at least one symmetry")
    outs = [undo_dihedral(model.restore(dihedral(lr, k), coeffs).float(), k) for k in symmetries]
    return torch.stack(outs).mean(0)


@dataclass(frozen=True)
class PhotoHeadroom:
    """One photograph's figures: ``gains`` (dB over bicubic) in :data:`COLUMNS` order."""

    name: str
    psnr_bicubic: float
    auto_coeffs: tuple[float, float]
    best_coeffs: tuple[float, float]
    best_coeffs_x8: tuple[float, float]
    gains: tuple[float, ...]


@dataclass(frozen=True)
class HeadroomReport:
    model: str
    grid: int
    photos: tuple[PhotoHeadroom, ...]

    def mean_gains(self) -> tuple[float, ...]:
        n = len(self.photos)
        return tuple(sum(p.gains[i] for p in self.photos) / n for i in range(len(COLUMNS)))

    def format(self) -> str:
        head = f"{'photo':30s}" + "".join(f"{c:>14s}" for c in COLUMNS) + "   best coefficients (x8)"
        lines = [
            f"Headroom of {self.model}: PSNR gain over bicubic (dB), mid-level input, "
            f"grid {self.grid} x {self.grid}, goal +{PSNR_GAIN_GOAL_DB:.1f}",
            head,
        ]
        for p in self.photos:
            b, n = p.best_coeffs_x8
            row = "".join(f"{g:+14.2f}" for g in p.gains)
            lines.append(f"{p.name[-30:]:30s}{row}   blur {b:.2f}, noise {n:.2f}")
        lines.append(f"{'mean':30s}" + "".join(f"{g:+14.3f}" for g in self.mean_gains()))
        return "\n".join(lines)


def _grid_coeffs(grid: int) -> torch.Tensor:
    values = torch.linspace(0.0, 1.0, grid, dtype=torch.float64)
    return torch.cartesian_prod(values, values)  # (grid * grid, 2): (blur, noise)


def _pair(c: torch.Tensor) -> tuple[float, float]:
    return float(c[0]), float(c[1])


def _photo(model: ModulatedModel, name: str, hr: torch.Tensor, grid: torch.Tensor) -> PhotoHeadroom:
    lr = mid_level_input(hr, name, model.scale)
    pb = luma_psnr(bicubic_upscale(lr, model.scale)[0], hr[0])
    a = model.estimate(lr).float().cpu()[0].clamp(0, 1)
    auto = torch.tensor([[float(a[0]), float(a[1])]], dtype=torch.float64)

    def gains(coeffs: torch.Tensor, symmetries: Sequence[int]) -> list[float]:
        out = restore_ensemble(model, lr.expand(len(coeffs), -1, -1, -1), coeffs, symmetries).cpu()
        return [luma_psnr(o, hr[0]) - pb for o in out]

    grid_x1, grid_x8 = gains(grid, (0,)), gains(grid, range(8))
    i1 = max(range(len(grid_x1)), key=grid_x1.__getitem__)
    i8 = max(range(len(grid_x8)), key=grid_x8.__getitem__)
    row = (
        gains(auto, (0,))[0],
        gains(auto, (0, 4))[0],
        gains(auto, range(8))[0],
        grid_x1[i1],
        grid_x8[i8],
    )
    return PhotoHeadroom(name, pb, _pair(auto[0]), _pair(grid[i1]), _pair(grid[i8]), row)


def headroom(
    model: ModulatedModel,
    photos_dir: str | Path,
    *,
    crop: int = 256,
    grid: int = 6,
    max_images: int | None = None,
) -> HeadroomReport:
    """The figures of :data:`COLUMNS` for each photograph of ``photos_dir`` (same crops, inputs and
    PSNR as ``mmrealsr_training.evaluate``).

    Raises:
        InputError: a bad crop, grid or max_images, no photographs, or none large enough for the crop.
    """
    check_crop_settings("headroom", crop, model.scale, max_images)
    if grid < 2:
        raise InputError(f"headroom: grid must be at least 2 (0 and 1 on each knob); got {grid}")
    coeffs = _grid_coeffs(grid)
    rows: list[PhotoHeadroom] = []
    for path in list_photos(photos_dir):
        if max_images is not None and len(rows) >= max_images:
            break
        hr = read_crop(path, crop)
        if hr is None:
            continue
        rows.append(_photo(model, path.name, hr, coeffs))
        log.info("%s: %s", path.name, " ".join(f"{g:+.2f}" for g in rows[-1].gains))
    if not rows:
        raise InputError(f"{photos_dir}: no photograph is at least {crop}x{crop} px; lower --crop")
    return HeadroomReport(model.name, grid, tuple(rows))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the headroom table of a model on held-out photographs."""
    parser = argparse.ArgumentParser(
        prog="python -m mmrealsr_training.headroom",
        description="The evaluation's quality figure with self-ensembles and per-photo oracle coefficients: "
        "how far better coefficients or more inference could take a model.",
    )
    parser.add_argument("--grid", type=int, default=6, help="coefficient values per knob (default 6)")
    return run_photo_command(
        parser,
        argv,
        lambda model, a: headroom(model, a.photos, crop=a.crop, grid=a.grid, max_images=a.max_images),
    )


if __name__ == "__main__":
    sys.exit(main())
