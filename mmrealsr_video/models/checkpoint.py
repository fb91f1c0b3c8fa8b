"""The one checkpoint reader: files (.pth/.pt through torch's weights-only unpickler, .safetensors
natively) or in-memory dicts -> a plain state dict of tensors, with clear errors naming the file."""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mmrealsr_video.errors import CheckpointError, UnsafeCheckpointError

__all__ = ["StateDict", "read_state_dict", "unwrap_state_dict"]

StateDict = dict[str, torch.Tensor]

_PICKLE_SUFFIXES = {".pth", ".pt", ".ckpt", ".bin"}


def read_state_dict(path: str | Path) -> StateDict:
    """Reads a weights file and returns its (unwrapped) state dict.

    Raises:
        CheckpointError: missing, unreadable, truncated or corrupt file, or no tensors in it.
        UnsafeCheckpointError: a pickle that would build objects or call functions; it is refused
            before anything in it runs.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such weights file")
    if not p.is_file():
        raise CheckpointError(f"{p}: not a file")
    if p.suffix.lower() == ".safetensors":
        return unwrap_state_dict(_read_safetensors(p), source=str(p))
    if p.suffix.lower() not in _PICKLE_SUFFIXES:
        raise CheckpointError(f"{p}: unknown weights format {p.suffix!r}; expected .pth, .pt or .safetensors")
    return unwrap_state_dict(_read_pickle(p), source=str(p))


def _read_safetensors(p: Path) -> Any:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(p), device="cpu")
    except SafetensorError as e:
        raise CheckpointError(f"{p}: corrupt or truncated safetensors file ({e})") from None
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read ({e.strerror or e})") from None


def _read_pickle(p: Path) -> Any:
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        found = re.search(r"GLOBAL (\S+)", msg)
        if found:
            raise UnsafeCheckpointError(
                f"{p}: refused: the pickle asks to load {found.group(1)}, which could run code; "
                "only plain tensors and containers are accepted (convert it to .safetensors if you trust it)"
            ) from None
        if "Weights only load failed" in msg:
            raise UnsafeCheckpointError(
                f"{p}: refused: not a plain PyTorch weights file (the weights-only reader rejects it); "
                "it was not executed"
            ) from None
        raise CheckpointError(
            f"{p}: corrupt or truncated checkpoint ({msg.splitlines()[0] if msg else e!r})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, ValueError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{p}: corrupt or truncated checkpoint: {first[:200]}") from None
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read ({e.strerror or e})") from None


def unwrap_state_dict(obj: Any, *, source: str = "state dict") -> StateDict:
    """Takes ``params_ema`` (preferred) or ``params`` out of a training checkpoint; strips a
    ``module.`` prefix left by DataParallel; checks that every value is a tensor."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a dict of tensors, found {type(obj).__name__}")
    for key in ("params_ema", "params", "state_dict"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner:
            obj = inner
            break
    sd: StateDict = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise CheckpointError(f"{source}: key {k!r} is not a string")
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{source}: entry {k!r} is a {type(v).__name__}, not a tensor")
        sd[k.removeprefix("module.")] = v
    if not sd:
        raise CheckpointError(f"{source}: holds no tensors")
    return sd
