"""The modulated architectures, each in its own module, and the registry that recognises them
from a state dict's key names and shapes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import torch
from torch import nn

from mmrealsr_video.models import compact, mmrrdbnet

__all__ = ["ARCHITECTURES", "Architecture", "ModulatedNet", "closest_architecture", "key_pattern"]


class ModulatedNet(Protocol):
    """What every architecture's network offers."""

    scale: int
    size_multiple: int
    config: Any

    def estimate(self, x: torch.Tensor) -> torch.Tensor: ...

    def restore(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Architecture:
    """One architecture: how to recognise it and how to build it."""

    name: str
    detect: Callable[[Mapping[str, torch.Tensor]], Any]
    build: Callable[[Any], nn.Module]
    default_config: Callable[[], Any]


ARCHITECTURES: dict[str, Architecture] = {
    mmrrdbnet.ARCH: Architecture(
        mmrrdbnet.ARCH, mmrrdbnet.detect, mmrrdbnet.MMRRDBNet, mmrrdbnet.MMRRDBNetConfig
    ),
    compact.ARCH: Architecture(compact.ARCH, compact.detect, compact.CompactNet, compact.CompactConfig),
}


def key_pattern(key: str) -> str:
    """``body.12.rdb1.conv1.weight`` -> ``body.#.rdb1.conv1.weight``: layout without the counts."""
    return re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)", "#", key)


@cache
def _reference_patterns(name: str) -> frozenset[str]:
    arch = ARCHITECTURES[name]
    with torch.device("meta"):
        net = arch.build(arch.default_config())
    return frozenset(key_pattern(k) for k in net.state_dict())


def closest_architecture(keys: set[str]) -> tuple[str, float, list[str], list[str]]:
    """The registered architecture whose key layout is nearest to ``keys``.

    Returns:
        (name, similarity in [0, 1], missing key patterns, unexpected keys), both lists sorted.
    """
    patterns = {key_pattern(k) for k in keys}
    best: tuple[str, float, list[str], list[str]] | None = None
    for name in ARCHITECTURES:
        ref = _reference_patterns(name)
        score = len(ref & patterns) / max(1, len(ref | patterns))
        if best is None or score > best[1]:
            missing = sorted(ref - patterns)
            unexpected = sorted(k for k in keys if key_pattern(k) not in ref)
            best = (name, score, missing, unexpected)
    assert best is not None
    return best
