"""``load_model`` and ``ModulatedModel``: one interface over every modulated architecture.

``estimate(x)`` gives the (blur, noise) coefficients of each image; ``restore(x, coeffs)`` runs the
generator with per-sample coefficients (one batch may mix scenes), tiled when asked or when the
frame would not fit in memory. ``restore`` never runs the estimator, and its output is not clamped
(as in the original): clamping happens where frames become pixels again.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from mmrealsr_video.errors import CheckpointError, InputError, UnknownArchitectureError
from mmrealsr_video.models.checkpoint import StateDict, read_state_dict, unwrap_state_dict
from mmrealsr_video.models.registry import ARCHITECTURES, ModulatedNet, closest_architecture
from mmrealsr_video.models.tiling import (
    DEFAULT_TILE_OVERLAP,
    MIN_TILE,
    tile_settings,
    tile_work,
    tiled_apply,
)

__all__ = [
    "BUNDLED_MODELS",
    "PRECISIONS",
    "ModulatedModel",
    "bundled_model_path",
    "load_model",
    "parse_device",
    "precision_dtype",
]

log = logging.getLogger(__name__)

_WEIGHTS_DIR = Path(__file__).with_name("weights")

#: Models that ship inside the package: name -> file in ``mmrealsr_video/models/weights`` (each with its model
#: card beside it, ``.md``). ``default`` is the x4 model, everywhere the default.
BUNDLED_MODELS: dict[str, str] = {
    "default": "compact-x4.safetensors",
    "compact-x4": "compact-x4.safetensors",
    "compact-x2": "compact-x2.safetensors",
}


def bundled_model_path(name: str) -> Path | None:
    """The file of a bundled model, or None if no such model ships with this install."""
    fname = BUNDLED_MODELS.get(name)
    if fname is None:
        return None
    path = _WEIGHTS_DIR / fname
    return path if path.is_file() else None


class ModulatedModel:
    """A modulated super-resolution network on a device, in a precision.

    Attributes:
        net: the underlying ``torch.nn.Module``.
        name: where it came from (a bundled name or a file name).
        arch: the architecture's name, e.g. ``"mmrrdbnet"``.
        scale: output size / input size.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        arch: str,
        device: torch.device,
        dtype: torch.dtype,
        channels_last: bool = False,
    ) -> None:
        self.net = net
        self.name = name
        self.arch = arch
        self.device = device
        self.dtype = dtype
        self.channels_last = channels_last
        self._modnet = cast(ModulatedNet, net)
        self.scale: int = int(self._modnet.scale)
        self.size_multiple: int = int(self._modnet.size_multiple)
        # Networks that pool on a grid (the compact model's context branch) want tiles on that grid.
        self._tile_align: int = int(getattr(self._modnet, "tile_align", 1))

    @property
    def conversion_device(self) -> torch.device | None:
        """Where decoded pictures are best converted to RGB for this model: on its accelerator (the
        8- or 16-bit codes cross to it, a quarter or half of the float picture, and the conversion
        runs there), or None for the CPU."""
        return None if self.device.type == "cpu" else self.device

    @property
    def config(self) -> dict[str, Any]:
        """The architecture's hyperparameters (inferred from the weights)."""
        cfg = self._modnet.config
        return asdict(cfg) if is_dataclass(cfg) and not isinstance(cfg, type) else dict(cfg)

    def __repr__(self) -> str:
        return f"ModulatedModel(name={self.name!r}, arch={self.arch!r}, scale={self.scale}, device={self.device}, dtype={self.dtype})"

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"expected a (B, 3, H, W) RGB tensor, got {shape}")
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise InputError(f"empty input of shape {tuple(x.shape)}")
        x = x.to(self.device, self.dtype, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """Estimates the degradation of each image.

        Args:
            x: (B, 3, H, W) RGB in [0, 1].

        Returns:
            (B, 2) in [0, 1]: column 0 blur, column 1 noise; on the model's device and dtype.
        """
        x = self._prepare(x)
        with torch.inference_mode():
            return self._modnet.estimate(x)

    def restore(
        self,
        x: torch.Tensor,
        coeffs: torch.Tensor | tuple[float, float] | list[float],
        *,
        tile: int | None = None,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
    ) -> torch.Tensor:
        """Super-resolves ``x`` conditioned on per-sample coefficients.

        Args:
            x: (B, 3, H, W) RGB in [0, 1]; any size (padded to the architecture's multiple and
                cropped back).
            coeffs: (B, 2) per-sample (blur, noise) in [0, 1], or one pair for the whole batch.
            tile: largest tile side in input pixels; None picks one only when the frame would not
                fit in the device's memory, 0 forces whole frames. Tiles below
                :data:`~mmrealsr_video.models.tiling.MIN_TILE` are raised to it (see
                :meth:`tiling_notes` for what a front tells its user).
            tile_overlap: input pixels shared by neighbouring tiles, cross-faded (at least
                :data:`~mmrealsr_video.models.tiling.MIN_TILE_OVERLAP`).

        Returns:
            (B, 3, scale*H, scale*W), not clamped; on the model's device and dtype.

        Raises:
            InputError: a bad tensor or coefficients, a negative tile or overlap.
        """
        _check_tiling(tile, tile_overlap)
        x = self._prepare(x)
        c = self._coeffs(coeffs, x.shape[0])
        b, _, h, w = x.shape
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate" if min(h, w) < 2 else "reflect")
        if tile is None:
            tile = self.auto_tile(x.shape[2], x.shape[3], b)
        overlap = tile_overlap
        if tile:
            tile, overlap = self._tiles(tile, tile_overlap)

        def run(t: torch.Tensor) -> torch.Tensor:
            return self._modnet.restore(t, c)

        with torch.inference_mode():
            while True:
                try:
                    if tile:
                        y = tiled_apply(
                            run, x, scale=self.scale, tile=tile, overlap=overlap, align=self._align
                        )
                    else:
                        y = run(x)
                    break
                except torch.OutOfMemoryError:
                    # The estimate was optimistic: halve the tile and try again.
                    torch.cuda.empty_cache()
                    current = tile or max(x.shape[2], x.shape[3])
                    if current <= 2 * overlap + 16:
                        raise
                    tile, overlap = self._tiles(max(2 * overlap + 16, current // 2), tile_overlap)
                    log.warning("out of device memory; retrying with %d px tiles", tile)
        if ph or pw:
            y = y[:, :, : h * self.scale, : w * self.scale]
        return y

    @property
    def _align(self) -> int:
        """Where tiles start: on the network's pooling grid and its size multiple (a tile of a
        network that unshuffles its input by 2 must start on even pixels)."""
        return math.lcm(self._tile_align, self.size_multiple)

    def _tiles(self, tile: int, overlap: int) -> tuple[int, int]:
        return tile_settings(tile, overlap, multiple=self.size_multiple, align=self._align)

    def tiling_notes(self, width: int, height: int, tile: int | None, tile_overlap: int) -> list[str]:
        """What :meth:`restore` does with the tiling asked for on a ``width`` x ``height`` picture,
        where it is not what was asked or costs much more than the picture: for a front to say once.

        Raises:
            InputError: a negative tile or overlap.
        """
        _check_tiling(tile, tile_overlap)
        if not tile:
            return []
        used, overlap = self._tiles(tile, tile_overlap)
        notes = []
        if tile < max(MIN_TILE, 2 * self._align):
            notes.append(f"tile {tile} px is below the smallest useful tile: using {used} px tiles")
        if tile_overlap < overlap:
            notes.append(f"tile overlap {tile_overlap} px would show seams between tiles: using {overlap} px")
        h, w = height + (-height) % self.size_multiple, width + (-width) % self.size_multiple
        work = tile_work(h, w, used, overlap, self._align)
        if work > 3.0:
            notes.append(
                f"tiles of {used} px overlapping by {overlap} px make the model compute {work:.1f} times "
                "the picture's pixels; a larger tile (or a smaller overlap) is faster"
            )
        return notes

    def restore_frames(
        self,
        x: torch.Tensor,
        coeffs: torch.Tensor | tuple[float, float] | list[float],
        size: tuple[int, int] | None = None,
        *,
        tile: int | None = None,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
    ) -> torch.Tensor:
        """What every front does with a batch: :meth:`restore`, resize to ``size``, clamp.

        The one place where the CLI, the Python API and the VapourSynth filter turn RGB frames
        into restored ones, so that they give the same pictures for the same input and coefficients.

        Args:
            x: (B, 3, H, W) RGB in [0, 1].
            coeffs: (B, 2) per-frame (blur, noise) or one pair.
            size: (height, width) of the output; None keeps the model's scale. A size other than
                the model's is reached by a bicubic resize with antialiasing (as ``--outscale``).
            tile, tile_overlap: as :meth:`restore`.

        Returns:
            (B, 3, height, width) float32 in [0, 1], on the model's device.
        """
        y = self.restore(x, coeffs, tile=tile, tile_overlap=tile_overlap).float()
        if size is not None and tuple(y.shape[-2:]) != tuple(size):
            y = F.interpolate(y, size=size, mode="bicubic", antialias=True, align_corners=False)
        return y.clamp(0, 1)

    def _coeffs(self, coeffs: torch.Tensor | tuple[float, float] | list[float], batch: int) -> torch.Tensor:
        c = torch.as_tensor(coeffs, dtype=torch.float64)
        if c.ndim == 1:
            c = c.unsqueeze(0)
        if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] not in (1, batch):
            raise InputError(
                f"coefficients must be (B, 2) or one (blur, noise) pair; got shape {tuple(c.shape)} for B={batch}"
            )
        if not torch.isfinite(c).all() or c.min() < 0 or c.max() > 1:
            raise InputError(f"coefficients must lie in [0, 1]; got {c.tolist()}")
        return c.expand(batch, 2).to(self.device, self.dtype)

    def output_size(
        self, width: int, height: int, outscale: float | None = None, multiple: tuple[int, int] = (1, 1)
    ) -> tuple[int, int]:
        """(width, height) of a restored ``width`` x ``height`` picture: times ``outscale`` (None:
        the model's scale), rounded, then up to ``multiple`` (width, height); a 4:2:0 video needs
        even sizes. Every front sizes its output with this one rule."""
        scale = outscale if outscale is not None else self.scale
        mw, mh = multiple
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        return max(mw, w + (-w) % mw), max(mh, h + (-h) % mh)

    def auto_tile(self, h: int, w: int, batch: int) -> int:
        """A tile side (input pixels) that keeps activations within a share of free memory; 0 = none needed."""
        per_px = float(getattr(self._modnet, "activation_elems_per_input_pixel", 64 * self.scale**2 * 4))
        elem = torch.finfo(self.dtype).bits // 8
        need = per_px * elem * batch * h * w
        budget = _memory_budget(self.device)
        if need <= budget:
            return 0
        side = int(math.sqrt(budget / (per_px * elem * batch)))
        return max(64, side - side % 16)


#: The precisions every front offers, by name.
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _check_tiling(tile: int | None, overlap: int) -> None:
    if tile is not None and tile < 0:
        raise InputError(f"tile must be 0 (never tile), a side in pixels, or None; not {tile}")
    if overlap < 0:
        raise InputError(f"tile overlap must not be negative ({overlap})")


def precision_dtype(name: str | None, device: str | torch.device) -> torch.dtype:
    """The dtype for a precision name; None picks half weights on CUDA (as Real-ESRGAN's tools
    do) and float32 elsewhere.

    Raises:
        InputError: an unknown name.
    """
    if name is None:
        return torch.float16 if parse_device(device).type == "cuda" else torch.float32
    if name not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {name!r}")
    return PRECISIONS[name]


_RE_DEVICE = re.compile(r"cpu|cuda(?::\d{1,4})?")


def parse_device(device: str | torch.device) -> torch.device:
    """A device name every front accepts: ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        InputError: another name (``tpu``, ``cuda:x``...).
    """
    if isinstance(device, torch.device):
        if device.type in ("cpu", "cuda"):
            return device
        name = str(device)
    else:
        name = str(device).strip().lower()
        if _RE_DEVICE.fullmatch(name):
            return torch.device(name)
    raise InputError(f"device must be cpu, cuda or cuda:N, not {name[:40]!r}")


def _check_cuda(dev: torch.device) -> None:
    if not torch.cuda.is_available():
        raise InputError(f"device {dev} requested but CUDA is not available here")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise InputError(
            f"device {dev} requested but this machine has {count} CUDA device(s): cuda:0 to cuda:{count - 1}"
        )


def _memory_budget(device: torch.device) -> float:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return 0.7 * free
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        avail = 8 << 30
    return 0.5 * avail


def load_model(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ModulatedModel:
    """Loads a modulated model, recognising its architecture and hyperparameters from the weights.

    Args:
        source: a bundled model's name (``"default"``, the x4 model, also named ``"compact-x4"``;
            ``"compact-x2"``), a path to ``.pth``/``.pt``/``.safetensors``,
            or a state dict (``params_ema`` or ``params`` wrappers are unwrapped).
        device: where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        dtype: float32 everywhere; float16/bfloat16 keep half-precision weights (meant for CUDA).

    Returns:
        The model, in eval mode, on ``device`` in ``dtype``.

    Raises:
        CheckpointError: the file is missing, corrupt or truncated, or its tensors do not fit.
        UnsafeCheckpointError: a pickle that would run code (refused without running it).
        UnknownArchitectureError: the weights match no architecture; names the closest one.
    """
    dev = parse_device(device)
    if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise InputError(f"unsupported dtype {dtype}; use torch.float32, float16 or bfloat16")
    if dev.type == "cuda":
        _check_cuda(dev)
    if dtype in (torch.float16, torch.bfloat16) and dev.type == "cpu":
        log.warning("%s on the CPU is slow and only for testing; use float32", dtype)
    sd, name, where = _resolve(source)
    arch_name, config = _detect(sd, where)
    arch = ARCHITECTURES[arch_name]
    try:
        with torch.device("meta"):
            net = arch.build(config)
    except (ValueError, TypeError) as e:
        raise CheckpointError(
            f"{where}: the {arch_name} hyperparameters read from it do not make a model ({e})"
        ) from None
    _load_into(net, sd, where, arch_name)
    net.eval().requires_grad_(False)
    net.to(dev, dtype)
    channels_last = dev.type == "cuda"
    if channels_last:
        net.to(memory_format=torch.channels_last)
    return ModulatedModel(
        net, name=name, arch=arch_name, device=dev, dtype=dtype, channels_last=channels_last
    )


def _resolve(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[StateDict, str, str]:
    """The state dict, the model's name (a bundled name or the file's name) and where it came from
    (for messages: the file's path)."""
    if isinstance(source, Mapping):
        return unwrap_state_dict(source), "state dict", "state dict"
    s = os.fspath(source)
    if s in BUNDLED_MODELS:
        path = bundled_model_path(s)
        if path is None:
            raise CheckpointError(
                f"bundled model {s!r} is not present in this install ({_WEIGHTS_DIR / BUNDLED_MODELS[s]} missing)"
            )
        return read_state_dict(path), s, str(path)
    p = Path(s).expanduser()
    if not p.exists() and os.sep not in s and "." not in s:
        raise CheckpointError(
            f"{s!r} is neither a bundled model ({', '.join(BUNDLED_MODELS)}) nor an existing file"
        )
    return read_state_dict(p), p.name, str(p)


def _detect(sd: StateDict, name: str) -> tuple[str, Any]:
    for arch in ARCHITECTURES.values():
        try:
            config = arch.detect(sd)
        except CheckpointError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as e:
            # Key names of this architecture, shapes that make no model of it (e.g. an x5 upsampler).
            raise CheckpointError(
                f"{name}: looks like a {arch.name} checkpoint but its tensors do not make one ({e})"
            ) from None
        if config is not None:
            return arch.name, config
    closest, score, missing, unexpected = closest_architecture(set(sd))
    raise UnknownArchitectureError(
        f"{name}: not a known modulated architecture; closest is {closest!r} "
        f"({score:.0%} of the key layout in common): {_key_summary(missing, unexpected)}"
    )


def _key_summary(missing: list[str], unexpected: list[str], shown: int = 4) -> str:
    def part(label: str, keys: list[str]) -> str:
        if not keys:
            return f"0 {label}"
        more = f", ... (+{len(keys) - shown})" if len(keys) > shown else ""
        return f"{len(keys)} {label} ({', '.join(keys[:shown])}{more})"

    return f"{part('missing', missing)}; {part('unexpected', unexpected)}"


def _load_into(net: nn.Module, sd: StateDict, name: str, arch: str) -> None:
    expected = net.state_dict()
    missing = sorted(k for k in expected if k not in sd)
    unexpected = sorted(k for k in sd if k not in expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{name}: does not match the {arch} layout it resembles: {_key_summary(missing, unexpected)}"
        )
    wrong = [
        f"{k} {tuple(sd[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if sd[k].shape != v.shape
    ]
    if wrong:
        raise CheckpointError(
            f"{name}: {len(wrong)} tensors of the wrong shape for {arch}: {', '.join(wrong[:4])}"
        )
    bad = [k for k, v in sd.items() if not v.is_floating_point()]
    if bad:
        raise CheckpointError(
            f"{name}: non-floating-point tensors where weights belong: {', '.join(bad[:4])}"
        )
    net.load_state_dict(
        {k: v.float() if v.dtype != torch.float64 else v for k, v in sd.items()}, strict=True, assign=True
    )
