"""The knob-direction losses (ours) and their agreement with the evaluation's measures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mmrealsr_training import metrics as E
from mmrealsr_training.losses import (
    consistency_loss,
    flat_weights,
    knob_losses,
    residual_noise_energy,
    sharpness_energy,
)


def _scene(size: int = 64) -> torch.Tensor:
    """A flat sky above a striped half: flat regions and texture in one (1, 3, H, W) image."""
    x = torch.full((1, 3, size, size), 0.5)
    yy = torch.arange(size, dtype=torch.float32).view(-1, 1)
    stripes = 0.5 + 0.3 * torch.sin(yy * 0.9 + torch.arange(size).view(1, -1) * 0.4)
    x[:, :, size // 2 :] = stripes[size // 2 :]
    return x


def _noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g)


def test_flat_weights_pick_the_flat_part() -> None:
    gt = _scene()
    flat = flat_weights(gt)
    assert flat.shape == (1, 1, 64, 64)
    share = float(flat.mean())
    assert 0.25 <= share <= 0.6  # ties at zero variance are all kept
    # Every flat pixel lies in the uniform top half (away from the stripes' 9x9 reach).
    assert float(flat[..., 36:, :].sum()) == 0


def test_energies_match_the_evaluation_measures_in_order() -> None:
    """More noise, more residual energy, as the evaluation's high-pass std; sharper, more Laplacian."""
    gt = _scene()
    flat = flat_weights(gt)
    mask = flat[0, 0].numpy() > 0
    levels = [0.0, 0.01, 0.02, 0.04]
    ours = [float(residual_noise_energy(_noisy(gt, s), flat)) for s in levels]
    theirs = [E.high_pass_std(E.luma(E.to_image(_noisy(gt, s)[0], quantize=False)), mask) for s in levels]
    assert ours == sorted(ours) and theirs == sorted(theirs)
    assert np.corrcoef(np.sqrt(ours), theirs)[0, 1] > 0.99
    blurred = torch.nn.functional.avg_pool2d(gt, 3, stride=1, padding=1, count_include_pad=False)
    assert float(sharpness_energy(gt)) > float(sharpness_energy(blurred))
    lap = [E.laplacian_variance(E.luma(E.to_image(t[0], quantize=False))) for t in (gt, blurred)]
    assert lap[0] > lap[1]


def test_knob_losses_are_zero_the_right_way_and_positive_the_wrong_way() -> None:
    gt = _scene()
    flat = flat_weights(gt)
    noisy, clean = _noisy(gt, 0.03), _noisy(gt, 0.005)
    sharp = gt
    soft = torch.nn.functional.avg_pool2d(gt, 3, stride=1, padding=1, count_include_pad=False)
    ln, lb = knob_losses(noisy, clean, soft, sharp, flat, margin=0.01)
    assert float(ln) == 0 and float(lb) == 0
    ln, lb = knob_losses(clean, noisy, sharp, soft, flat, margin=0.01)
    assert float(ln) > 1 and float(lb) > 0.1
    # Equal outputs cost exactly the margin.
    ln, lb = knob_losses(clean, clean, sharp, sharp, flat, margin=0.01)
    assert float(ln) == pytest.approx(0.01) and float(lb) == pytest.approx(0.01)


def test_knob_losses_pass_gradients() -> None:
    gt = _scene()
    flat = flat_weights(gt)
    hi = _noisy(gt, 0.03).requires_grad_(True)
    ln, _ = knob_losses(_noisy(gt, 0.005), hi, gt, gt, flat, margin=0.0)
    ln.backward()
    assert hi.grad is not None and float(hi.grad.abs().sum()) > 0


def test_knob_losses_empty_pair_costs_nothing() -> None:
    """A batch of one has no blur pair: that term is exactly 0 (not NaN)."""
    gt = _scene()
    ln, lb = knob_losses(gt, gt, gt[:0], gt[:0], flat_weights(gt), margin=0.01)
    assert float(ln) == pytest.approx(0.01) and float(lb) == 0.0


def test_consistency_loss_is_the_spread_of_paired_estimates() -> None:
    """Zero for equal readings; the batch mean of squared differences, summed over the knobs."""
    a = torch.tensor([[0.2, 0.5], [0.4, 0.1]])
    assert float(consistency_loss(a, a.clone())) == 0.0
    b = torch.tensor([[0.2, 0.7], [0.1, 0.1]])
    # blur: (0 + 0.09) / 2, noise: (0.04 + 0) / 2
    assert float(consistency_loss(a, b)) == pytest.approx(0.045 + 0.02)
    a.requires_grad_(True)
    consistency_loss(a, b).backward()
    assert a.grad is not None
    # The gradient pulls each estimate towards its pair's.
    assert torch.all(a.grad * (a.detach() - b) >= 0) and float(a.grad.abs().sum()) > 0
