"""MM-RealSR's losses: L1 on every output, margin ranking on the estimator's outputs, the anchor
loss that pins the ends of each metric scale, and the vanilla GAN loss of the GAN stage.

All weights are applied here, so the returned terms add up to the objective as they are logged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.config import LossConfig

__all__ = [
    "EstimatorOutputs",
    "anchor_losses",
    "estimator_losses",
    "estimator_stats",
    "gan_loss",
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


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla GAN loss: binary cross-entropy of per-pixel logits against all-real or all-fake."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())
