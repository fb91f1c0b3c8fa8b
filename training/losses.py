"""MM-RealSR's losses: L1 on every output, margin ranking on the estimator's outputs, the anchor
loss that pins the ends of each metric scale, and the vanilla GAN loss of the GAN stage.

All weights are applied here, so the returned terms add up to the objective as they are logged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LossConfig

__all__ = [
    "EstimatorOutputs",
    "anchor_losses",
    "consistency_loss",
    "estimator_losses",
    "estimator_stats",
    "gan_loss",
    "knob_losses",
    "ranking_loss",
]


class EstimatorOutputs:
    """The estimator's (B, 2) outputs for each synthesised copy of one batch of patches."""

    def __init__(self, est: torch.Tensor, batch: int) -> None:
        """Splits (5B, 2) outputs ordered base, more_blur, more_noise, min_anchor, max_anchor."""
        if est.shape[0] != 5 * batch:
            raise ValueError(f"expected {5 * batch} estimates (5 copies of {batch}), got {est.shape[0]}")
        self.base, self.more_blur, self.more_noise, self.min_anchor, self.max_anchor = est.split(batch)


def ranking_loss(lower: torch.Tensor, higher: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of max(0, lower - higher + margin): wants ``higher`` above ``lower`` by ``margin``."""
    target = -torch.ones_like(lower)
    return F.margin_ranking_loss(lower, higher, target, margin=margin)


def anchor_losses(min_anchor: torch.Tensor, max_anchor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared error of every estimator output to 0 on the clean anchor and 1 on the worst one.

    Args:
        min_anchor: (B, D) estimates for the undegraded copies.
        max_anchor: (B, D) estimates for the most degraded copies.

    Returns:
        (min term, max term), each the sum over degradations of the batch mean (as released).
    """
    return (min_anchor.float() ** 2).mean(0).sum(), ((max_anchor.float() - 1) ** 2).mean(0).sum()


def consistency_loss(est: torch.Tensor, est_shared: torch.Tensor) -> torch.Tensor:
    """Ours: the spread of the estimates of one degradation on two photos.

    Args:
        est: (B, D) estimates of B degraded patches.
        est_shared: (B, D) estimates of other patches, row ``i`` degraded exactly as row ``i`` of
            ``est`` (``synthesize(..., shared_copy=True)``).

    Returns:
        The sum over degradations of the batch mean of the squared difference (twice the variance of
        the pair), unweighted: 0 when the estimator reads the degradation alone, not the content.
    """
    return ((est.float() - est_shared.float()) ** 2).mean(0).sum()


def estimator_losses(est: EstimatorOutputs, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """The weighted metric-learning terms: blur/noise ranking and the two anchors."""
    blur_rank = ranking_loss(est.base[:, 0].float(), est.more_blur[:, 0].float(), cfg.rank_margin)
    noise_rank = ranking_loss(est.base[:, 1].float(), est.more_noise[:, 1].float(), cfg.rank_margin)
    a_min, a_max = anchor_losses(est.min_anchor, est.max_anchor)
    return {
        "l_rank_blur": cfg.rank_blur_weight * blur_rank,
        "l_rank_noise": cfg.rank_noise_weight * noise_rank,
        "l_anchor_min": cfg.anchor_weight * a_min,
        "l_anchor_max": cfg.anchor_weight * a_max,
    }


def estimator_stats(est: EstimatorOutputs) -> dict[str, float]:
    """Diagnostics (no gradients): how often each pair is ordered right, and the mean estimates."""
    with torch.no_grad():
        return {
            "rank_acc_blur": float((est.more_blur[:, 0] > est.base[:, 0]).float().mean()),
            "rank_acc_noise": float((est.more_noise[:, 1] > est.base[:, 1]).float().mean()),
            "est_base_blur": float(est.base[:, 0].float().mean()),
            "est_base_noise": float(est.base[:, 1].float().mean()),
            "est_min": float(est.min_anchor.float().mean()),
            "est_max": float(est.max_anchor.float().mean()),
        }


_LUMA = (0.299, 0.587, 0.114)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) BT.601 luma."""
    w = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (x.float() * w).sum(1, keepdim=True)


def _gaussian_blur(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 1, H, W), reflect-padded."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=y.dtype, device=y.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))


def flat_weights(gt: torch.Tensor, fraction: float = 0.25, window: int = 9) -> torch.Tensor:
    """(B, 1, H, W) 0/1 mask of each patch's flattest ``fraction`` of pixels (local std of GT luma).

    The training-time twin of the evaluation's flat regions (``mmrealsr_training.metrics.flat_mask``).
    """
    y = _luma(gt)
    pad = window // 2
    yp = F.pad(y, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(yp, window, stride=1)
    var = (F.avg_pool2d(yp * yp, window, stride=1) - mean * mean).clamp_min(0)
    flat = var.flatten(1)
    thresh = torch.quantile(flat, fraction, dim=1, keepdim=True)
    return (flat <= thresh).float().view_as(y)


def residual_noise_energy(out: torch.Tensor, flat: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """(B,) mean squared luma high-pass (luma minus its Gaussian blur) over the ``flat`` pixels."""
    y = _luma(out)
    hp = y - _gaussian_blur(y, sigma)
    return (hp.square() * flat).flatten(1).sum(1) / flat.flatten(1).sum(1).clamp_min(1.0)


def sharpness_energy(out: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared 3x3 Laplacian of the luma."""
    y = _luma(out)
    k = y.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), k).square().flatten(1).mean(1)


def knob_losses(
    noise_lo: torch.Tensor,
    noise_hi: torch.Tensor,
    blur_lo: torch.Tensor,
    blur_hi: torch.Tensor,
    flat: torch.Tensor,
    margin: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ours: hinge losses that make each knob act in its own direction on the same input.

    ``noise_lo``/``noise_hi`` are outputs for one input with the noise knob at t and t + dt (the
    blur knob fixed); raising the noise knob must lower the residual noise in flat regions by at
    least ``margin`` in log energy. ``blur_lo``/``blur_hi`` likewise for the blur knob, which must
    raise the Laplacian energy. Log energies make the terms independent of the image's contrast.

    Args:
        flat: (B_noise, 1, H, W) flat-region mask of the noise pairs' GT (``flat_weights``).

    Returns:
        (noise term, blur term), unweighted batch means; 0 for an empty pair.
    """
    eps = 1e-10

    def hinge(lower: torch.Tensor, higher: torch.Tensor) -> torch.Tensor:
        # An empty pair (a batch of one has no blur pair) costs nothing.
        return F.relu(lower - higher + margin).mean() if lower.numel() else lower.new_zeros(())

    n_lo = torch.log(residual_noise_energy(noise_lo, flat) + eps)
    n_hi = torch.log(residual_noise_energy(noise_hi, flat) + eps)
    b_lo = torch.log(sharpness_energy(blur_lo) + eps)
    b_hi = torch.log(sharpness_energy(blur_hi) + eps)
    return hinge(n_hi, n_lo), hinge(b_lo, b_hi)


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla GAN loss: binary cross-entropy of per-pixel logits against all-real or all-fake."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())
