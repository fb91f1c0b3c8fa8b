"""Ground-truth patches for training: any folder of photographs, decoded once and kept in memory,
cut into random square crops with random flips; plus Real-ESRGAN's shuffling pool of synthesised
samples. Every random choice comes from a ``torch.Generator`` the caller owns, so runs repeat.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from mmrealsr_video.errors import MMRealSRVideoError

__all__ = [
    "IMAGE_SUFFIXES",
    "DatasetError",
    "ImageFolder",
    "PatchSampler",
    "SamplePool",
    "decode_image",
    "find_images",
]

log = logging.getLogger(__name__)

#: File name endings read as images (case-insensitive).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"})

# Images this much smaller than a crop are reflect-padded; smaller ones are upscaled instead.
_PAD_FRACTION = 0.75


class DatasetError(MMRealSRVideoError, ValueError):
    """No usable training images, or a folder that does not exist."""


def find_images(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Image files under each root, recursively, in a stable (sorted) order.

    Raises:
        DatasetError: a root does not exist.
    """
    found: list[Path] = []
    for r in roots:
        root = Path(r)
        if root.is_file():
            found.append(root)
            continue
        if not root.is_dir():
            raise DatasetError(f"{root}: no such folder of training images (data.dataroot)")
        found.extend(p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return found


def decode_image(path: Path) -> np.ndarray:
    """Reads an image as (H, W, 3) uint8 RGB; grey is replicated, alpha dropped, 16-bit scaled.

    Raises:
        OSError: the file cannot be read.
        ValueError: the data is not a decodable image.
    """
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError("empty file")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("not a decodable image")
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"unsupported sample type {img.dtype}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    else:
        raise ValueError(f"unsupported channel count {img.shape[2]}")
    if min(img.shape[:2]) < 1:
        raise ValueError("image has no pixels")
    return np.ascontiguousarray(img)


def _fit(img: np.ndarray, gt_size: int, max_side: int) -> tuple[np.ndarray, str]:
    """Downscales to ``max_side`` and makes both sides at least ``gt_size``; says what it did."""
    h, w = img.shape[:2]
    what = ""
    if max_side and max(h, w) > max_side:
        f = max_side / max(h, w)
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        h, w = nh, nw
        what = "downscaled"
    if min(h, w) < gt_size:
        if min(h, w) < _PAD_FRACTION * gt_size:
            # Far too small: enlarge (a soft GT is better than a crop that is mostly mirror image).
            f = gt_size / min(h, w)
            nh, nw = max(gt_size, round(h * f)), max(gt_size, round(w * f))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_CUBIC)
            what = "upscaled"
        else:
            ph, pw = max(0, gt_size - h), max(0, gt_size - w)
            img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_REFLECT_101)
            what = "padded"
    return np.ascontiguousarray(img), what


@dataclass(frozen=True)
class _Entry:
    path: Path
    image: np.ndarray | None  # None when not cached


class ImageFolder:
    """The usable images under some folders, checked (and by default kept) decoded in memory.

    Unreadable files are skipped with a warning and listed in ``skipped``.

    Args:
        roots: folders (searched recursively) or single image files.
        gt_size: crop side; smaller images are padded or upscaled to it when read.
        max_side: long side limit (area downscaling when larger); 0 = none.
        cache: keep the decoded images; False decodes the file again at each draw (every file is
            still decoded once at the start, to check it).
        workers: decoding threads for the first read.

    Raises:
        DatasetError: no folder, or no usable image in them.
    """

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]],
        *,
        gt_size: int,
        max_side: int = 1024,
        cache: bool = True,
        workers: int = 2,
    ) -> None:
        self.gt_size = gt_size
        self.max_side = max_side
        self.cache = cache
        paths = find_images(roots)
        self.skipped: list[tuple[Path, str]] = []
        entries: list[_Entry] = []
        counts = {"downscaled": 0, "upscaled": 0, "padded": 0}

        def load(p: Path) -> tuple[Path, np.ndarray | None, str]:
            try:
                img, what = _fit(decode_image(p), gt_size, max_side)
            except (OSError, ValueError, cv2.error) as e:
                return p, None, str(e) or type(e).__name__
            return p, img, what

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for p, img, what in pool.map(load, paths):
                if img is None:
                    log.warning("skipping unreadable training image %s: %s", p, what)
                    self.skipped.append((p, what))
                    continue
                if what:
                    counts[what] += 1
                entries.append(_Entry(p, img if cache else None))
        if not entries:
            where = ", ".join(os.fspath(r) for r in roots)
            raise DatasetError(
                f"no usable training images under {where} ({len(paths)} files found, {len(self.skipped)} unreadable); "
                f"expected {', '.join(sorted(IMAGE_SUFFIXES))}"
            )
        self._entries = entries
        nbytes = sum(e.image.nbytes for e in entries if e.image is not None)
        log.info(
            "training images: %d usable, %d skipped (%d downscaled, %d padded, %d upscaled); %.0f MiB in memory",
            len(entries),
            len(self.skipped),
            counts["downscaled"],
            counts["padded"],
            counts["upscaled"],
            nbytes / 2**20,
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def paths(self) -> list[Path]:
        """The usable images, in sampling order."""
        return [e.path for e in self._entries]

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as (H, W, 3) uint8 RGB, both sides >= gt_size."""
        e = self._entries[i]
        if e.image is not None:
            return e.image
        try:
            return _fit(decode_image(e.path), self.gt_size, self.max_side)[0]
        except (OSError, ValueError, cv2.error) as err:
            raise DatasetError(f"{e.path}: training image became unreadable: {err}") from None


class PatchSampler:
    """Random gt_size crops with random flips, drawn with replacement, as float (B, 3, S, S) in [0, 1].

    Args:
        images: where the crops come from.
        gt_size: crop side.
        batch_size: crops per batch.
        hflip: random horizontal flips.
        rot: random vertical flips and transposes.
    """

    def __init__(self, images: ImageFolder, *, gt_size: int, batch_size: int, hflip: bool, rot: bool) -> None:
        self.images = images
        self.gt_size = gt_size
        self.batch_size = batch_size
        self.hflip = hflip
        self.rot = rot

    def _randint(self, high: int, gen: torch.Generator) -> int:
        return int(torch.randint(high, (1,), generator=gen)) if high > 1 else 0

    def sample(self, gen: torch.Generator) -> torch.Tensor:
        """One batch; uses ``gen`` (CPU) for every random choice."""
        s = self.gt_size
        crops = []
        for _ in range(self.batch_size):
            img = self.images.image(self._randint(len(self.images), gen))
            h, w = img.shape[:2]
            top, left = self._randint(h - s + 1, gen), self._randint(w - s + 1, gen)
            flips = torch.rand(3, generator=gen)
            crop = img[top : top + s, left : left + s]
            if self.hflip and flips[0] < 0.5:
                crop = crop[:, ::-1]
            if self.rot and flips[1] < 0.5:
                crop = crop[::-1]
            if self.rot and flips[2] < 0.5:
                crop = crop.transpose(1, 0, 2)
            crops.append(crop)
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(crops)))
        return batch.permute(0, 3, 1, 2).float().div_(255.0)


class SamplePool:
    """Real-ESRGAN's training pair pool: batches go in, random earlier samples come out.

    Synthesis draws some choices once per batch (resize mode, noise family...); exchanging samples
    through a pool mixes those choices within a batch. Until the pool is full, batches pass
    through; afterwards each batch swaps places with a random subset of the pool.

    Args:
        size: samples held (0 = no pool: ``exchange`` returns its input).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._store: dict[str, torch.Tensor] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def exchange(self, batch: Mapping[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Puts ``batch`` (tensors with the same first dimension) in; returns a batch of the same size."""
        out = {k: v for k, v in batch.items()}
        if self.size == 0:
            return out
        b = next(iter(batch.values())).shape[0]
        if not self._store:
            self._store = {k: v.new_empty((self.size, *v.shape[1:])) for k, v in batch.items()}
        if set(self._store) != set(batch):
            raise ValueError(f"pool holds {sorted(self._store)}, got {sorted(batch)}")
        if b > self.size:
            raise ValueError(f"pool of {self.size} cannot exchange batches of {b}")
        if self._count < self.size:
            # Filling up: the batch passes through and (what fits of it) stays in the pool.
            n = min(b, self.size - self._count)
            for k, v in batch.items():
                self._store[k][self._count : self._count + n] = v[:n].detach()
            self._count += n
            return out
        idx = torch.randperm(self.size, generator=gen)[:b].to(next(iter(self._store.values())).device)
        for k, v in batch.items():
            out[k] = self._store[k][idx].clone()
            self._store[k][idx] = v.detach()
        return out

    def state_dict(self) -> dict[str, object]:
        """The pool's contents, for an exact resume."""
        return {"count": self._count, "store": {k: v[: self._count].cpu() for k, v in self._store.items()}}

    def load_state_dict(self, state: Mapping[str, object], device: torch.device) -> None:
        """Restores what ``state_dict`` saved."""
        count = int(state["count"])  # type: ignore[call-overload]
        store = state["store"]
        assert isinstance(store, Mapping)
        self._store = {}
        self._count = 0
        if count:
            for k, v in store.items():
                full = v.new_empty((self.size, *v.shape[1:]), device=device)
                full[:count] = v.to(device)
                self._store[k] = full
            self._count = count
