"""Building blocks shared by the modulated architectures: the affine modulation layer and the
residual block without batch norm (both as in the MM-RealSR / BasicSR originals)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AffineModulate", "ResidualBlockNoBN", "scaled_init"]


class AffineModulate(nn.Module):
    """Maps a degradation embedding to per-channel (gamma, beta); features become (1 + gamma) x + beta.

    The MLP is ``embed_dim -> hidden -> hidden -> 2 * num_feat`` with ReLU between, where the
    released configuration uses ``hidden = (embed_dim + 2 * num_feat) // 2``.
    """

    def __init__(self, embed_dim: int, num_feat: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden if hidden is not None else (embed_dim + 2 * num_feat) // 2
        self.fc = nn.Sequential(
            nn.Linear(embed_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 2 * num_feat),
        )

    def gamma_beta(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, embed_dim) -> gamma, beta, each (B, num_feat, 1, 1)."""
        d = self.fc(embedding)
        d = d.view(d.shape[0], d.shape[1], 1, 1)
        gamma, beta = torch.chunk(d, 2, dim=1)
        return gamma, beta

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.gamma_beta(embedding)
        return (1 + gamma) * x + beta


class ResidualBlockNoBN(nn.Module):
    """x + conv2(relu(conv1(x))), as BasicSR's block of the same name with res_scale 1."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


def scaled_init(modules: list[nn.Module], scale: float = 0.1) -> None:
    """Kaiming-normal init scaled down (ESRGAN's habit), so deep residual stacks start stable."""
    for root in modules:
        for m in root.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                m.weight.data.mul_(scale)
                if m.bias is not None:
                    m.bias.data.zero_()
