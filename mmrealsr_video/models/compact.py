"""The compact modulated model: our fast default, with the same interface as the released network.

Generator: an SRVGGNetCompact-style body (plain 3x3 convolutions at input resolution, PReLU)
where every body convolution is followed by an affine modulation (1 + gamma) x + beta driven by an
embedding of the (blur, noise) pair; a final convolution to ``3 * scale**2`` channels,
pixel-shuffled and added to the upsampled input (nearest, as SRVGGNetCompact, by default; bilinear or
bicubic as an option, so that a small body spends nothing on interpolation). Estimator: one tiny strided CNN branch
per degradation, global average pool, MLP, sigmoid, as DEResNet in miniature. Plain convolutions,
no data-dependent control flow: exportable to ONNX.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mmrealsr_video.models._blocks import scaled_init

__all__ = [
    "ARCH",
    "SKIP_MODES",
    "CompactConfig",
    "CompactEstimator",
    "CompactNet",
    "detect",
    "flops_per_input_pixel",
]

ARCH = "compact"
#: How the input is upsampled for the skip connection; stored in the state dict as ``skip_mode``
#: (absent = nearest, so that checkpoints made before the option load unchanged).
SKIP_MODES: tuple[str, ...] = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class CompactConfig:
    """Hyperparameters of the compact model; the defaults are the bundled model's."""

    scale: int = 4
    num_feat: int = 32
    num_conv: int = 10
    embed_dim: int = 64
    num_degradation: int = 2
    #: Estimator widths; layer i has stride 2 when i is odd (so strides need no storing).
    est_feats: tuple[int, ...] = (16, 32, 32, 64, 64)
    est_hidden: int = 64
    skip: str = "nearest"
    arch: str = field(default=ARCH, init=False)

    def __post_init__(self) -> None:
        if self.scale not in (1, 2, 3, 4):
            raise ValueError(f"compact: scale must be 1, 2, 3 or 4, not {self.scale}")
        if self.skip not in SKIP_MODES:
            raise ValueError(f"compact: skip must be one of {', '.join(SKIP_MODES)}, not {self.skip!r}")
        if not self.est_feats or min(self.est_feats) <= 0:
            raise ValueError("compact: est_feats must list at least one positive width")
        for name in ("num_feat", "num_conv", "embed_dim", "num_degradation", "est_hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"compact: {name} must be positive")


class CompactEstimator(nn.Module):
    """Per degradation: strided conv stack -> global average -> MLP -> sigmoid."""

    def __init__(self, c: CompactConfig) -> None:
        super().__init__()
        self.branches = nn.ModuleList()
        for _ in range(c.num_degradation):
            layers: list[nn.Module] = []
            cin = 3
            for i, cout in enumerate(c.est_feats):
                layers += [nn.Conv2d(cin, cout, 3, 1 + i % 2, 1), nn.LeakyReLU(0.1, inplace=True)]
                cin = cout
            self.branches.append(nn.Sequential(*layers))
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(cin, c.est_hidden), nn.ReLU(inplace=True), nn.Linear(c.est_hidden, 1))
            for _ in range(c.num_degradation)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centre the input so that the first layer sees signal around zero.
        x = x - 0.5
        out = [
            head(branch(x).mean(dim=(2, 3))) for branch, head in zip(self.branches, self.heads, strict=True)
        ]
        return torch.sigmoid(torch.cat(out, dim=1))


class CompactNet(nn.Module):
    """Compact modulated super-resolution network with its own estimator (``de_net``)."""

    def __init__(self, config: CompactConfig | None = None) -> None:
        super().__init__()
        c = config or CompactConfig()
        self.config = c
        self.scale = c.scale
        self.size_multiple = 1
        nf = c.num_feat
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.act_first = nn.PReLU(nf)
        self.body = nn.ModuleList(nn.Conv2d(nf, nf, 3, 1, 1) for _ in range(c.num_conv))
        self.acts = nn.ModuleList(nn.PReLU(nf) for _ in range(c.num_conv))
        self.dd_embed = nn.Sequential(
            nn.Linear(c.num_degradation, c.embed_dim),
            nn.ReLU(inplace=True),
            nn.Linear(c.embed_dim, c.embed_dim),
            nn.ReLU(inplace=True),
        )
        # One linear layer gives every body layer its (gamma, beta).
        self.modulation = nn.Linear(c.embed_dim, 2 * nf * c.num_conv)
        self.conv_last = nn.Conv2d(nf, 3 * c.scale * c.scale, 3, 1, 1)
        if c.skip != "nearest":
            self.register_buffer("skip_mode", torch.tensor(float(SKIP_MODES.index(c.skip))))
        self.de_net = CompactEstimator(c)
        # Budget for automatic tiling: features at input size, the shuffled output at scale**2.
        self.activation_elems_per_input_pixel = 4 * nf + 6 * c.scale * c.scale
        # A plain (non-residual) stack needs full He initialisation: ESRGAN's 0.1 scaling would
        # shrink the signal ten-fold per layer and starve the body of gradient (measured: the
        # generator did not learn at all). Only the last layer starts small, so the network
        # starts close to its nearest-neighbour skip.
        scaled_init([self.conv_first, self.body], 1.0)
        scaled_init([self.conv_last], 0.1)
        scaled_init([self.dd_embed, self.de_net], 1.0)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, num_degradation) in [0, 1]."""
        return self.de_net(x)

    def restore(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W), (B, num_degradation) -> (B, 3, sH, sW); never runs the estimator."""
        nf = self.config.num_feat
        mod = self.modulation(self.dd_embed(coeffs.to(x.dtype)))
        mod = mod.view(mod.shape[0], self.config.num_conv, 2, nf, 1, 1)
        gain, shift = 1 + mod[:, :, 0], mod[:, :, 1]
        feat = self.act_first(self.conv_first(x))
        for i, (conv, act) in enumerate(zip(self.body, self.acts, strict=True)):
            # One pass over the features for the affine modulation (gain * feat + shift).
            feat = torch.addcmul(shift[:, i], act(conv(feat)), gain[:, i])
        out = F.pixel_shuffle(self.conv_last(feat), self.scale)
        if self.config.skip == "nearest":
            return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return out + F.interpolate(x, scale_factor=self.scale, mode=self.config.skip, align_corners=False)

    def forward(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        return self.restore(x, coeffs)


def flops_per_input_pixel(c: CompactConfig, *, estimator: bool = False) -> float:
    """Multiply-adds x 2 per input pixel of the generator (or of the estimator), convolutions only."""
    if estimator:
        total, cin, area = 0.0, 3, 1.0
        for i, cout in enumerate(c.est_feats):
            area /= (1 + i % 2) ** 2
            total += 2 * 9 * cin * cout * area
            cin = cout
        return total * c.num_degradation
    nf = c.num_feat
    return 2 * 9 * (3 * nf + c.num_conv * nf * nf + nf * 3 * c.scale * c.scale)


def detect(sd: Mapping[str, torch.Tensor]) -> CompactConfig | None:
    """Infers the compact model's hyperparameters from its state dict; None if it is not one."""
    need = (
        "conv_first.weight",
        "modulation.weight",
        "conv_last.weight",
        "dd_embed.0.weight",
        "de_net.branches.0.0.weight",
    )
    if any(k not in sd for k in need):
        return None
    nf = sd["conv_first.weight"].shape[0]
    out = sd["conv_last.weight"].shape[0]
    scale = round((out / 3) ** 0.5)
    if 3 * scale * scale != out:
        return None
    num_conv = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"body\.(\d+)\.weight$", k)))
    embed_dim, num_degradation = sd["dd_embed.0.weight"].shape
    feats: list[int] = []
    while f"de_net.branches.0.{2 * len(feats)}.weight" in sd:
        feats.append(int(sd[f"de_net.branches.0.{2 * len(feats)}.weight"].shape[0]))
    return CompactConfig(
        scale=scale,
        num_feat=nf,
        num_conv=num_conv,
        embed_dim=int(embed_dim),
        num_degradation=int(num_degradation),
        est_feats=tuple(feats),
        est_hidden=int(sd["de_net.heads.0.0.weight"].shape[0]),
        skip=SKIP_MODES[int(sd["skip_mode"])] if "skip_mode" in sd else "nearest",
    )
