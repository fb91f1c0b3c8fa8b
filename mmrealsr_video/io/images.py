"""Still images in and out, and the one conversion between pixel arrays and the core's RGB float
tensors (clamping and rounding happen here, where frames become pixels again)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.io.files import write_bytes_atomic

__all__ = ["IMAGE_SUFFIXES", "from_tensor", "read_image", "to_tensor", "write_image"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


def read_image(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads an image as (H, W, 3) RGB uint8/uint16 and its alpha plane (H, W) or None."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such image file")
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{p}: not a readable image (unsupported format, or the file is corrupt)")
    if img.dtype not in (np.uint8, np.uint16):
        if np.issubdtype(img.dtype, np.floating):
            img = np.clip(img, 0, 1) * 65535.0 + 0.5
        img = img.astype(np.uint16)
    alpha = None
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        alpha = img[:, :, 3].copy()
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img, alpha


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8/uint16/float RGB -> (1, 3, H, W) float32 in [0, 1]."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        scale = 255.0
    elif rgb.dtype == np.uint16:
        scale = 65535.0
    else:
        scale = 1.0
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    return t.float().div_(scale)


def from_tensor(t: torch.Tensor, dtype: type[np.generic] = np.uint8) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float -> (H, W, 3) RGB array of ``dtype``, clamped and rounded."""
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise InputError(f"expected one image, got a batch of {t.shape[0]}")
        t = t[0]
    peak = {np.uint8: 255.0, np.uint16: 65535.0}.get(dtype)
    if peak is None:
        raise InputError(f"unsupported pixel type {dtype}")
    arr = t.detach().float().clamp(0, 1).mul(peak).round().permute(1, 2, 0).cpu().numpy()
    return arr.astype(dtype)


def write_image(
    path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None, *, force: bool = False
) -> Path:
    """Writes RGB (+ alpha) atomically: to a temporary file in the target folder, then renamed."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise OutputError(
            f"{p}: unknown image type {p.suffix!r}; use one of {', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    if p.exists() and not force:
        raise OutputError(f"{p}: already exists (pass --force to overwrite)")
    if rgb.dtype == np.uint16 and suffix in (".jpg", ".jpeg", ".webp", ".bmp"):
        rgb = (rgb // 257).astype(np.uint8)
        alpha = None if alpha is None else (alpha // 257).astype(np.uint8)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if alpha is not None and suffix in (".png", ".tif", ".tiff", ".webp"):
        bgr = np.dstack([bgr, alpha.astype(bgr.dtype)])
    ok, buf = cv2.imencode(suffix, bgr)
    if not ok:
        raise OutputError(f"{p}: the {suffix} encoder failed")
    write_bytes_atomic(p, buf.tobytes())
    return p
