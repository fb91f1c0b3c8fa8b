"""Degradation estimates of sampled frames: a few native-resolution crops per frame, the most
textured of a 3x3 grid (blur is invisible in flat areas), batched through the estimator paired
with the generator in use, averaged per frame. Crops keep the estimator's cost a small fraction
of the generator's (see ``benchmarks/bench_analysis.py``)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from mmrealsr_video.models.loader import ModulatedModel

__all__ = ["CropEstimator", "select_crops"]


def select_crops(rgb: np.ndarray, count: int, size: int) -> np.ndarray:
    """The ``count`` most textured ``size``-square crops of a 3x3 grid: (count, size, size, 3).

    A frame smaller than a crop is used whole (one crop of the frame's size, repeated).
    """
    h, w = rgb.shape[:2]
    if h <= size or w <= size:
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        return np.repeat(rgb[None, y0 : y0 + s, x0 : x0 + s], count, axis=0)
    ys = np.linspace(0, h - size, 3).round().astype(int)
    xs = np.linspace(0, w - size, 3).round().astype(int)
    gray = (
        cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if rgb.dtype == np.uint8
        else rgb.mean(axis=2).astype(np.float32)
    )
    scored = []
    for y in ys:
        for x in xs:
            patch = gray[y : y + size, x : x + size]
            scored.append((float(cv2.Laplacian(patch, cv2.CV_32F).var()), int(y), int(x)))
    # Stable order (score, then position) so that the choice does not flicker on ties.
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    return np.stack([rgb[y : y + size, x : x + size] for _, y, x in scored[:count]])


class CropEstimator:
    """Batches crops of sampled frames through ``model.estimate``; averages each frame's crops."""

    def __init__(self, model: ModulatedModel, *, crops: int, crop_size: int, batch: int) -> None:
        self.model = model
        self.crops, self.crop_size, self.batch = crops, crop_size, batch
        self._pending: list[tuple[int, np.ndarray]] = []
        self.samples: dict[int, tuple[float, float]] = {}

    def add(self, index: int, rgb: np.ndarray) -> None:
        if index in self.samples or any(i == index for i, _ in self._pending):
            return
        self._pending.append((index, select_crops(rgb, self.crops, self.crop_size)))
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        # Crops of one batch share a size unless a frame was smaller than a crop.
        groups: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for item in self._pending:
            groups.setdefault(item[1].shape, []).append(item)
        for items in groups.values():
            stack = np.concatenate([c for _, c in items])
            peak = 65535.0 if stack.dtype == np.uint16 else 255.0
            x = torch.from_numpy(stack).permute(0, 3, 1, 2).float().div_(peak)
            est = self.model.estimate(x).float().cpu().view(len(items), self.crops, -1).mean(dim=1)
            for (index, _), value in zip(items, est.clamp(0, 1).tolist(), strict=True):
                self.samples[index] = (float(value[0]), float(value[1]))
        self._pending.clear()
