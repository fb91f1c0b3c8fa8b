"""The GAN stage's discriminator: a U-Net with spectral normalisation that judges every pixel.

Same shape and parameter names as Real-ESRGAN's ``UNetDiscriminatorSN`` (three stride-2
downsamplings, bilinear upsampling with skip additions, two extra convolutions, one logit per
pixel), so its checkpoints would load; the code is our own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

__all__ = ["UNetDiscriminatorSN"]


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral norm; input sides must be multiples of 8.

    Args:
        num_in_ch: input channels.
        num_feat: base width (64 in the released configuration).
        skip_connection: add encoder features to the decoder's.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.skip_connection = skip_connection
        f = num_feat

        def sn_conv(cin: int, cout: int, k: int, s: int) -> nn.Conv2d:
            return spectral_norm(nn.Conv2d(cin, cout, k, s, 1, bias=False))

        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = sn_conv(f, 2 * f, 4, 2)
        self.conv2 = sn_conv(2 * f, 4 * f, 4, 2)
        self.conv3 = sn_conv(4 * f, 8 * f, 4, 2)
        self.conv4 = sn_conv(8 * f, 4 * f, 3, 1)
        self.conv5 = sn_conv(4 * f, 2 * f, 3, 1)
        self.conv6 = sn_conv(2 * f, f, 3, 1)
        self.conv7 = sn_conv(f, f, 3, 1)
        self.conv8 = sn_conv(f, f, 3, 1)
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, H, W) logits (real > 0)."""

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, 0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)
