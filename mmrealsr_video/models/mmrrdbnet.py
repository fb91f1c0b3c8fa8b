"""The released MM-RealSR network: ESRGAN's RRDBNet with affine modulation after every RRDB block,
a (blur, noise) embedding, and the two-branch degradation estimator (DEResNet).

The module and parameter names reproduce the released checkpoints' state-dict layout exactly, so
MMRealSRNet_x4 / MMRealSRGAN_x4 / MMRealSRGAN_ModulationBest load unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mmrealsr_video.models._blocks import AffineModulate, ResidualBlockNoBN, scaled_init

__all__ = ["ARCH", "RRDB", "DEResNet", "MMRRDBNet", "MMRRDBNetConfig", "ResidualDenseBlock", "detect"]

ARCH = "mmrrdbnet"

_IN_CH_TO_SCALE = {3: 4, 12: 2, 48: 1}


@dataclass(frozen=True)
class MMRRDBNetConfig:
    """Hyperparameters; the defaults are the released x4 configuration."""

    scale: int = 4
    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    num_degradation: int = 2
    embed_dim: int = 512
    am_hidden: int = 320
    de_num_feats: tuple[int, ...] = (64, 64, 64, 128)
    de_num_blocks: tuple[int, ...] = (2, 2, 2, 2)
    de_downscales: tuple[int, ...] = (1, 1, 2, 1)
    de_hidden: int = 512
    arch: str = field(default=ARCH, init=False)

    def __post_init__(self) -> None:
        if self.scale not in (1, 2, 4):
            raise ValueError(f"mmrrdbnet: scale must be 1, 2 or 4, not {self.scale}")
        n = len(self.de_num_feats)
        if not (n == len(self.de_num_blocks) == len(self.de_downscales)) or n == 0:
            raise ValueError(
                "mmrrdbnet: de_num_feats, de_num_blocks and de_downscales must have one entry per stage"
            )
        if any(d not in (1, 2) for d in self.de_downscales):
            raise ValueError(f"mmrrdbnet: estimator downscales must be 1 or 2, not {self.de_downscales}")
        for name in ("num_feat", "num_block", "num_grow_ch", "num_degradation", "embed_dim", "am_hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"mmrrdbnet: {name} must be positive")


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        g = num_grow_ch
        self.conv1 = nn.Conv2d(num_feat, g, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + g, g, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * g, g, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * g, g, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * g, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """ESRGAN's residual-in-residual dense block (three dense blocks in one scaled residual), shared
    with Real-ESRGAN's RRDBNet (the training package's anchor)."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class DEResNet(nn.Module):
    """Degradation estimator: one residual branch per degradation, pooled, MLP, sigmoid -> [0, 1]."""

    def __init__(
        self,
        num_in_ch: int,
        num_degradation: int,
        num_feats: tuple[int, ...],
        num_blocks: tuple[int, ...],
        downscales: tuple[int, ...],
        hidden: int = 512,
    ) -> None:
        super().__init__()
        self.num_degradation = num_degradation
        self.conv_first = nn.ModuleList(
            nn.Conv2d(num_in_ch, num_feats[0], 3, 1, 1) for _ in range(num_degradation)
        )
        self.body = nn.ModuleList(
            nn.Sequential(*_de_branch(num_feats, num_blocks, downscales)) for _ in range(num_degradation)
        )
        self.fc_degree = nn.ModuleList(
            nn.Sequential(
                nn.Linear(num_feats[-1], hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1), nn.Sigmoid()
            )
            for _ in range(num_degradation)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        degrees = []
        for first, body, fc in zip(self.conv_first, self.body, self.fc_degree, strict=True):
            feat = body(first(x)).mean(dim=(2, 3))
            degrees.append(fc(feat).squeeze(-1))
        return torch.stack(degrees, dim=1)


def _de_branch(
    num_feats: tuple[int, ...], num_blocks: tuple[int, ...], downscales: tuple[int, ...]
) -> list[nn.Module]:
    layers: list[nn.Module] = []
    last = len(num_feats) - 1
    for stage, (feat, blocks, down) in enumerate(zip(num_feats, num_blocks, downscales, strict=True)):
        layers.extend(ResidualBlockNoBN(feat) for _ in range(blocks))
        nxt = num_feats[min(stage + 1, last)]
        if down == 2:
            layers.append(nn.Conv2d(feat, nxt, 3, 2, 1))
        elif stage < last and feat != nxt:
            layers.append(nn.Conv2d(feat, nxt, 3, 1, 1))
    return layers


class MMRRDBNet(nn.Module):
    """MM-RealSR's modulated RRDBNet with its estimator (``de_net``)."""

    def __init__(self, config: MMRRDBNetConfig | None = None) -> None:
        super().__init__()
        c = config or MMRRDBNetConfig()
        self.config = c
        self.scale = c.scale
        self.size_multiple = {4: 1, 2: 2, 1: 4}[c.scale]
        in_ch = c.num_in_ch * self.size_multiple**2
        # Registration order = the released state dict's key order.
        self.conv_first = nn.Conv2d(in_ch, c.num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(c.num_feat, c.num_grow_ch) for _ in range(c.num_block)))
        self.am_list = nn.ModuleList(
            AffineModulate(c.embed_dim, c.num_feat, c.am_hidden) for _ in range(c.num_block)
        )
        self.conv_body = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(c.num_feat, c.num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        self.de_net = DEResNet(
            c.num_in_ch, c.num_degradation, c.de_num_feats, c.de_num_blocks, c.de_downscales, c.de_hidden
        )
        self.dd_embed = nn.Sequential(nn.Linear(c.num_degradation, c.embed_dim), nn.ReLU(inplace=True))
        self.activation_elems_per_input_pixel = 4 * c.num_feat * c.scale * c.scale
        scaled_init([self], 0.1)

    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, num_degradation) in [0, 1]."""
        return self.de_net(x)

    def restore(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W), (B, num_degradation) -> (B, 3, sH, sW); never runs the estimator."""
        if self.size_multiple > 1:
            x = F.pixel_unshuffle(x, self.size_multiple)
        embedding = self.dd_embed(coeffs.to(x.dtype))
        feat = self.conv_first(x)
        body = feat
        for block, am in zip(self.body, self.am_list, strict=True):
            body = am(block(body), embedding)
        feat = feat + self.conv_body(body)
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))

    def forward(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        return self.restore(x, coeffs)


def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    return tuple(sd[key].shape)


def detect(sd: Mapping[str, torch.Tensor]) -> MMRRDBNetConfig | None:
    """Infers every hyperparameter from key names and tensor shapes; None if this is not mmrrdbnet.

    Estimator stages are reported in a canonical form: consecutive residual blocks of one width
    form a stage, and a transition convolution between widths is taken as stride 2 (the released
    layout; a stride cannot be read from a weight's shape). Equivalent stage splits build the same
    network with the same key names.
    """
    required = (
        "conv_first.weight",
        "conv_body.weight",
        "conv_last.weight",
        "dd_embed.0.weight",
        "am_list.0.fc.0.weight",
    )
    if any(k not in sd for k in required) or "de_net.conv_first.0.weight" not in sd:
        return None
    in_ch = _shape(sd, "conv_first.weight")[1]
    num_feat = _shape(sd, "conv_first.weight")[0]
    out_ch = _shape(sd, "conv_last.weight")[0]
    num_in_ch = _shape(sd, "de_net.conv_first.0.weight")[1]
    scale = _IN_CH_TO_SCALE.get(in_ch // num_in_ch * 3) if in_ch % num_in_ch == 0 else None
    if scale is None:
        return None
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"body\.(\d+)\.rdb1\.conv1\.weight$", k))}
    if not blocks:
        return None
    embed_dim, num_degradation = _shape(sd, "dd_embed.0.weight")
    de_hidden = _shape(sd, "de_net.fc_degree.0.0.weight")[0] if "de_net.fc_degree.0.0.weight" in sd else 512
    feats, nblocks, downs = _detect_de_stages(sd)
    if not feats:
        return None
    return MMRRDBNetConfig(
        scale=scale,
        num_in_ch=num_in_ch,
        num_out_ch=out_ch,
        num_feat=num_feat,
        num_block=max(blocks) + 1,
        num_grow_ch=_shape(sd, "body.0.rdb1.conv1.weight")[0] if "body.0.rdb1.conv1.weight" in sd else 32,
        num_degradation=num_degradation,
        embed_dim=embed_dim,
        am_hidden=_shape(sd, "am_list.0.fc.0.weight")[0],
        de_num_feats=tuple(feats),
        de_num_blocks=tuple(nblocks),
        de_downscales=tuple(downs),
        de_hidden=de_hidden,
    )


def _detect_de_stages(sd: Mapping[str, torch.Tensor]) -> tuple[list[int], list[int], list[int]]:
    feats: list[int] = []
    nblocks: list[int] = []
    downs: list[int] = []
    i = 0
    while True:
        block = f"de_net.body.0.{i}.conv1.weight"
        conv = f"de_net.body.0.{i}.weight"
        if block in sd:
            width = _shape(sd, block)[0]
            if not feats or downs[-1] == 2 or feats[-1] != width:
                if feats and downs[-1] == 1 and feats[-1] != width:
                    return [], [], []  # width changed without a transition: not this layout
                if not feats or downs[-1] == 2:
                    feats.append(width)
                    nblocks.append(0)
                    downs.append(1)
            nblocks[-1] += 1
        elif conv in sd:
            cout, cin = _shape(sd, conv)[:2]
            if not feats:
                feats, nblocks, downs = [cin], [0], [1]
            downs[-1] = 2
            if f"de_net.body.0.{i + 1}.conv1.weight" not in sd:
                if cout != cin:
                    return [], [], []
            elif _shape(sd, f"de_net.body.0.{i + 1}.conv1.weight")[0] != cout:
                return [], [], []
        else:
            break
        i += 1
    return feats, nblocks, downs
