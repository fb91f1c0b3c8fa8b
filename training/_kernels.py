"""Blur kernels and batched filtering for the training-data synthesis.

Kernels are built in numpy (small, exact, float64) and applied to batches in torch through the FFT, so
that every image of a batch can have its own kernel at a cost that does not grow with the kernel size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import fft as sp_fft
from scipy import special

__all__ = [
    "GAUSSIAN_KINDS",
    "Kernel",
    "fft_filter",
    "gaussian_kernel_1d",
    "kernel_stack",
]

#: Kernel families of Real-ESRGAN's degradation, in the order of its configuration files.
GAUSSIAN_KINDS = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
_ALL_KINDS = (*GAUSSIAN_KINDS, "sinc")


@dataclass(frozen=True)
class Kernel:
    """One concrete blur kernel.

    Attributes:
        kind: one of ``GAUSSIAN_KINDS`` or ``"sinc"``.
        size: odd side length in pixels.
        sigma_x: standard deviation along the first principal axis (Gaussian families).
        sigma_y: along the second axis; equal to ``sigma_x`` for the isotropic families.
        rotation: angle of the first axis in radians (0 for the isotropic families).
        beta: shape exponent of the generalized (``exp(-0.5 d^beta)``) and plateau
            (``1 / (1 + d^beta)``) families; unused otherwise.
        omega_c: cut-off frequency in radians per pixel of the ``sinc`` (circular low-pass) kernel.
    """

    kind: str
    size: int
    sigma_x: float = 0.0
    sigma_y: float = 0.0
    rotation: float = 0.0
    beta: float = 1.0
    omega_c: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _ALL_KINDS:
            raise ValueError(f"Kernel.kind must be one of {_ALL_KINDS}, got {self.kind!r}")
        if self.size < 1 or self.size % 2 == 0:
            raise ValueError(f"Kernel.size must be a positive odd number, got {self.size}")
        if self.kind == "sinc":
            if not 0.0 < self.omega_c <= math.pi:
                raise ValueError(f"Kernel.omega_c must be in (0, pi] for a sinc kernel, got {self.omega_c}")
        elif self.sigma_x <= 0.0 or self.sigma_y <= 0.0:
            raise ValueError(f"Kernel sigmas must be positive, got ({self.sigma_x}, {self.sigma_y})")

    def array(self) -> np.ndarray:
        """The kernel as a (size, size) float64 array that sums to 1."""
        r = self.size // 2
        ax = np.arange(-r, r + 1, dtype=np.float64)
        yy, xx = np.meshgrid(ax, ax, indexing="ij")
        if self.kind == "sinc":
            k = _circular_lowpass(self.omega_c, xx, yy)
        else:
            # Squared Mahalanobis distance under the covariance R diag(sx^2, sy^2) R^T.
            c, s = math.cos(self.rotation), math.sin(self.rotation)
            u = c * xx + s * yy
            v = -s * xx + c * yy
            d2 = (u / self.sigma_x) ** 2 + (v / self.sigma_y) ** 2
            if self.kind.startswith("generalized"):
                k = np.exp(-0.5 * np.power(d2, self.beta))
            elif self.kind.startswith("plateau"):
                k = 1.0 / (1.0 + np.power(d2, self.beta))
            else:
                k = np.exp(-0.5 * d2)
        return k / k.sum()


def _circular_lowpass(omega_c: float, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """The ideal 2-D low-pass (an Airy pattern): omega_c J1(omega_c r) / (2 pi r), its limit at r = 0."""
    r = np.hypot(xx, yy)
    safe = np.where(r == 0.0, 1.0, r)
    k = omega_c * special.j1(omega_c * safe) / (2.0 * math.pi * safe)
    return np.where(r == 0.0, omega_c**2 / (4.0 * math.pi), k)


def gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian of odd ``size`` (float64)."""
    r = size // 2
    ax = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (ax / sigma) ** 2)
    return k / k.sum()


def kernel_stack(kernels: Sequence[Kernel | None]) -> torch.Tensor | None:
    """Stacks kernels of mixed sizes into one (N, k, k) float32 tensor, zero-padded to the largest size.

    ``None`` stands for "no blur" (a unit impulse). Returns ``None`` when every entry is ``None``.
    """
    if all(k is None for k in kernels):
        return None
    side = max(k.size for k in kernels if k is not None)
    out = np.zeros((len(kernels), side, side), dtype=np.float64)
    for i, k in enumerate(kernels):
        if k is None:
            out[i, side // 2, side // 2] = 1.0
        else:
            p = (side - k.size) // 2
            out[i, p : p + k.size, p : p + k.size] = k.array()
    return torch.from_numpy(out.astype(np.float32))


def _spectrum(kernels: np.ndarray, fh: int, fw: int, workers: int) -> np.ndarray:
    """rfft2 of centred (N, k, k) kernels at transform size (fh, fw): each kernel is wrapped around the
    origin so that filtering does not shift the image."""
    n, k, _ = kernels.shape
    offsets = np.arange(k) - k // 2
    wrapped = np.zeros((n, fh, fw), dtype=np.float32)
    wrapped[:, (offsets % fh)[:, None], (offsets % fw)[None, :]] = kernels
    return sp_fft.rfft2(wrapped, workers=workers)


def fft_filter(x: torch.Tensor, kernels: torch.Tensor, source: Sequence[int] | None = None) -> torch.Tensor:
    """Convolves each image of a batch with its own kernel, with reflected borders, through the FFT.

    Args:
        x: (M, C, H, W) float32 tensor.
        kernels: (N, k, k) or (1, k, k) with k odd; the same kernel applies to every channel of an image.
        source: for output ``i``, the index of the image of ``x`` to filter with ``kernels[i]``; lets
            several kernels share one forward transform. ``None``: output ``i`` filters ``x[i]``.

    Returns:
        (N, C, H, W) (or (M, ...) for a single kernel), the "same"-size convolution. Borders are
        mirrored (``reflect``) like Real-ESRGAN's ``filter2D``, falling back to edge replication when
        the image is not larger than the kernel radius.
    """
    m, _, h, w = x.shape
    k = kernels.shape[-1]
    n = len(source) if source is not None else m
    if kernels.ndim != 3 or kernels.shape[-2] != k or k % 2 == 0 or kernels.shape[0] not in (1, n):
        raise ValueError(
            f"kernels must be (N or 1, k, k) with k odd for {n} outputs, got {tuple(kernels.shape)}"
        )
    p = k // 2
    mode = "reflect" if p < min(h, w) else "replicate"
    xp = F.pad(x.detach().float(), (p, p, p, p), mode=mode) if p else x.detach().float()
    # Any transform size >= the padded size keeps the wrap-around out of the cropped window; pick a fast one.
    fh = sp_fft.next_fast_len(h + 2 * p, real=True)
    fw = sp_fft.next_fast_len(w + 2 * p, real=True)
    workers = max(torch.get_num_threads(), 1)
    spec = sp_fft.rfft2(xp.numpy(), s=(fh, fw), workers=workers)
    if source is not None:
        spec = spec[np.asarray(source, dtype=np.int64)]
    spec *= _spectrum(kernels.numpy(), fh, fw, workers)[:, None]
    out = sp_fft.irfft2(spec, s=(fh, fw), workers=workers)
    return torch.from_numpy(np.ascontiguousarray(out[..., p : p + h, p : p + w]))
