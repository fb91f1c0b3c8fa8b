"""VGG19 perceptual loss from a user-supplied weights file (never downloaded).

The feature stack is built here as an ``nn.Sequential`` whose indices match torchvision's
``vgg19().features``, so a torchvision state dict (``features.N.weight``) loads as it is. The
widths are read from the file, which lets tests use a tiny random VGG19 of the same layout.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch
from torch import nn

from mmrealsr_video.errors import CheckpointError
from mmrealsr_video.models.checkpoint import read_state_dict

__all__ = ["VGG19_LAYERS", "PerceptualLoss", "VGG19Features", "vgg19_widths"]

log = logging.getLogger(__name__)

_BLOCKS = (2, 2, 4, 4, 4)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for b, n in enumerate(_BLOCKS, start=1):
        for c in range(1, n + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return tuple(names)


#: Names of torchvision's ``vgg19().features`` modules, by index (``conv1_1`` = 0, ``conv5_4`` = 34).
VGG19_LAYERS: tuple[str, ...] = _layer_names()
_CONV_INDICES = tuple(i for i, n in enumerate(VGG19_LAYERS) if n.startswith("conv"))
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_widths(
    sd: Mapping[str, torch.Tensor], source: str = "VGG19 weights", upto: int | None = None
) -> list[int]:
    """Output widths of the 16 convolutions (or of those up to index ``upto``), checked for shape.

    Raises:
        CheckpointError: a convolution is missing or its shape does not chain.
    """
    widths: list[int] = []
    cin = 3
    for i in _CONV_INDICES:
        if upto is not None and i > upto:
            break
        w, b = sd.get(f"{i}.weight"), sd.get(f"{i}.bias")
        if w is None or b is None:
            raise CheckpointError(
                f"{source}: no features.{i}.weight/bias ({VGG19_LAYERS[i]}); expected torchvision's vgg19 layout"
            )
        if w.ndim != 4 or w.shape[1] != cin or w.shape[2:] != (3, 3) or b.shape != (w.shape[0],):
            raise CheckpointError(
                f"{source}: features.{i}.weight has shape {tuple(w.shape)}; expected ({'C'}, {cin}, 3, 3) "
                "as in torchvision's vgg19"
            )
        cin = int(w.shape[0])
        widths.append(cin)
    return widths


class VGG19Features(nn.Sequential):
    """torchvision's ``vgg19().features`` (truncated after ``last`` index), same indices and keys."""

    def __init__(self, widths: list[int], last: int = len(VGG19_LAYERS) - 1) -> None:
        layers: list[nn.Module] = []
        cin, k = 3, 0
        for name in VGG19_LAYERS[: last + 1]:
            if name.startswith("conv"):
                layers.append(nn.Conv2d(cin, widths[k], 3, 1, 1))
                cin = widths[k]
                k += 1
            elif name.startswith("relu"):
                layers.append(nn.ReLU(inplace=True))
            else:
                layers.append(nn.MaxPool2d(2, 2))
        super().__init__(*layers)


class PerceptualLoss(nn.Module):
    """Sum over chosen VGG19 layers of weight x L1(features(x), features(gt)), on ImageNet-normalised input.

    Args:
        weights: path to a torchvision-layout VGG19 state dict (``.pth`` or ``.safetensors``).
        layer_weights: layer name (``conv3_4``, ``relu2_2``...) -> weight.
        perceptual_weight: factor on the sum.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        weights: str | os.PathLike[str],
        layer_weights: Mapping[str, float],
        perceptual_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not layer_weights:
            raise ValueError("perceptual loss: no layers chosen")
        unknown = [k for k in layer_weights if k not in VGG19_LAYERS]
        if unknown:
            raise ValueError(f"perceptual loss: unknown VGG19 layers {unknown}")
        source = os.fspath(weights)
        raw = read_state_dict(source)
        sd = {k.removeprefix("features."): v for k, v in raw.items() if not k.startswith("classifier.")}
        self.indices = {name: VGG19_LAYERS.index(name) for name in layer_weights}
        last = max(self.indices.values())
        widths = vgg19_widths(sd, source, upto=last)
        self.vgg = VGG19Features(widths, last)
        own = self.vgg.state_dict()
        self.vgg.load_state_dict({k: sd[k].float() for k in own}, strict=True)
        self.vgg.eval().requires_grad_(False)
        self.layer_weights = dict(layer_weights)
        self.perceptual_weight = perceptual_weight
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        log.info("perceptual loss: VGG19 from %s, layers %s", source, self.layer_weights)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # the feature extractor never leaves eval mode
        return self

    def _features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        want = {i: n for n, i in self.indices.items()}
        last = max(want)
        out: dict[str, torch.Tensor] = {}
        x = (x - self.mean) / self.std
        for i, layer in enumerate(self.vgg):
            # In-place ReLU would overwrite a conv output that we keep; clone only those.
            x = layer(x.clone() if isinstance(layer, nn.ReLU) and (i - 1) in want else x)
            if i in want:
                out[want[i]] = x
            if i == last:
                break
        return out

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """The loss of (k*B, 3, H, W) outputs against (B, 3, H, W) targets (each repeated k times).

        The targets' features are computed once, not once per copy.
        """
        if x.shape[0] % gt.shape[0] or x.shape[1:] != gt.shape[1:]:
            raise ValueError(
                f"perceptual loss: outputs {tuple(x.shape)} do not repeat targets {tuple(gt.shape)}"
            )
        fx = self._features(x)
        with torch.no_grad():
            fg = self._features(gt.detach())
        total = x.new_zeros((), dtype=torch.float32)
        for name, w in self.layer_weights.items():
            if w:
                f = fx[name].float()
                g = fg[name].float()
                total = total + w * (f.reshape(-1, *g.shape) - g).abs().mean()
        return total * self.perceptual_weight
