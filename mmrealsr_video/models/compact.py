"""The compact modulated model: our fast default, with the same interface as the released network.

Generator: an SRVGGNetCompact-style body (plain 3x3 convolutions at input resolution, PReLU)
where every body convolution is followed by an affine modulation (1 + gamma) x + beta driven by an
embedding of the (blur, noise) pair; a final convolution to ``3 * scale**2`` channels,
pixel-shuffled and added to the upsampled input (nearest, as SRVGGNetCompact, by default; bilinear or
bicubic as an option, so that a small body spends nothing on interpolation), and optionally a
context branch on pooled features (``CompactConfig.context_feat``). Estimator: one tiny strided CNN branch
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
    #: Ours: width of the context branch (0 = none). Halfway down the body it average-pools the features
    #: by ``context_pool``, runs ``context_conv`` 3x3 convolutions to ``context_feat`` channels there (and
    #: one back to the body's width) and adds its upsampled output back to them: a receptive field of
    #: tens of input pixels for about 1 % of the FLOPs (32 channels on the 48 x 12 body), so that
    #: low-frequency blotches (noise that JPEG left at block scale) can be told from image content.
    context_feat: int = 0
    context_pool: int = 4
    context_conv: int = 4
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
        if self.context_feat < 0:
            raise ValueError(
                f"compact: context_feat must be 0 (no context branch) or positive, not {self.context_feat}"
            )
        if self.context_feat and (self.context_pool < 2 or self.context_conv < 1):
            raise ValueError(
                "compact: a context branch needs context_pool >= 2 and context_conv >= 1, "
                f"not {self.context_pool} and {self.context_conv}"
            )

    @property
    def context_at(self) -> int:
        """Index of the body layer after which the context branch's output is added."""
        return max(0, self.num_conv // 2 - 1)


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
        #: Tiles start on the context branch's pooling grid, so that each sees the frame's cells.
        self.tile_align = c.context_pool if c.context_feat else 1
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
        self.context: nn.Sequential | None = None
        if c.context_feat:
            cf = c.context_feat
            layers: list[nn.Module] = [nn.Conv2d(nf, cf, 3, 1, 1), nn.PReLU(cf)]
            for _ in range(c.context_conv - 1):
                layers += [nn.Conv2d(cf, cf, 3, 1, 1), nn.PReLU(cf)]
            layers.append(nn.Conv2d(cf, nf, 3, 1, 1))
            self.context = nn.Sequential(*layers)
            self.register_buffer("context_pool", torch.tensor(float(c.context_pool)))
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
        if self.context is not None:
            # The branch starts silent: a network grown with it computes what it computed before.
            scaled_init([self.context], 1.0)
            zero_last = self.context[-1]
            assert isinstance(zero_last, nn.Conv2d) and zero_last.bias is not None
            nn.init.zeros_(zero_last.weight)
            nn.init.zeros_(zero_last.bias)

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
            if self.context is not None and i == self.config.context_at:
                feat = feat + self._context(feat)
        out = F.pixel_shuffle(self.conv_last(feat), self.scale)
        if self.config.skip == "nearest":
            return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return out + F.interpolate(x, scale_factor=self.scale, mode=self.config.skip, align_corners=False)

    def _context(self, feat: torch.Tensor) -> torch.Tensor:
        """The context branch on pooled body features, upsampled back to their size."""
        assert self.context is not None
        k = self.config.context_pool
        pooled = F.avg_pool2d(feat, k, k, ceil_mode=True, count_include_pad=False)
        return F.interpolate(self.context(pooled), size=feat.shape[-2:], mode="bilinear", align_corners=False)

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
    body = 2 * 9 * (3 * nf + c.num_conv * nf * nf + nf * 3 * c.scale * c.scale)
    if not c.context_feat:
        return body
    cf = c.context_feat
    context = 2 * 9 * (nf * cf + (c.context_conv - 1) * cf * cf + cf * nf) / c.context_pool**2
    return body + context


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
    context_feat = context_conv = 0
    if "context.0.weight" in sd:
        context_feat = int(sd["context.0.weight"].shape[0])
        context_conv = sum(1 for k in sd if re.match(r"context\.\d+\.weight$", k) and sd[k].dim() == 4) - 1
    return CompactConfig(
        scale=scale,
        num_feat=nf,
        num_conv=num_conv,
        embed_dim=int(embed_dim),
        num_degradation=int(num_degradation),
        est_feats=tuple(feats),
        est_hidden=int(sd["de_net.heads.0.0.weight"].shape[0]),
        skip=SKIP_MODES[int(sd["skip_mode"])] if "skip_mode" in sd else "nearest",
        context_feat=context_feat,
        context_pool=int(sd["context_pool"]) if "context_pool" in sd else 4,
        context_conv=context_conv or 4,
    )
