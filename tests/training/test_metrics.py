"""Tests of the evaluation's image measures on known inputs: luma range, PSNR and SSIM values, sharpness
and residual noise in the right order, flat regions, the monotonicity and rank checks, and the quality
figure's luma PSNR and bicubic baseline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from mmrealsr_training import metrics as M


def _texture(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random((size, size)), (0, 0), 1.0)


def test_luma_range() -> None:
    assert M.luma(np.zeros((2, 2, 3))) == pytest.approx(np.full((2, 2), 16 / 255))
    assert M.luma(np.ones((2, 2, 3))) == pytest.approx(np.full((2, 2), 235 / 255))


def test_psnr_known_values() -> None:
    a = np.full((8, 8), 0.5)
    assert M.psnr(a, a) == M.PSNR_CAP_DB
    assert M.psnr(a, a + 0.1) == pytest.approx(20.0)
    assert M.psnr(a, a + 0.01) == pytest.approx(40.0)


def test_ssim_known_values() -> None:
    a = _texture()
    assert M.ssim(a, a) == pytest.approx(1.0)
    assert M.ssim(a, cv2.GaussianBlur(a, (0, 0), 2.0)) < 0.95


def test_laplacian_variance_sharp_above_blurred() -> None:
    y = _texture()
    assert M.laplacian_variance(y) > M.laplacian_variance(cv2.GaussianBlur(y, (0, 0), 1.5))
    assert M.laplacian_variance(np.full((16, 16), 0.3)) == pytest.approx(0.0)


def test_high_pass_std_noisy_above_clean() -> None:
    y = cv2.GaussianBlur(_texture(), (0, 0), 4.0)
    noisy = y + np.random.default_rng(1).normal(0.0, 0.05, y.shape)
    assert M.high_pass_std(noisy) > 2 * M.high_pass_std(y)
    mask = M.flat_mask(y)
    assert M.high_pass_std(noisy, mask) > M.high_pass_std(y, mask)


def test_flat_mask_picks_flat_half() -> None:
    y = np.full((64, 64), 0.5)
    y[:, 32:] = _texture(size=64)[:, 32:]
    mask = M.flat_mask(y, fraction=0.25)
    assert mask[:, :28].all()  # ties at zero local std are all kept
    assert not mask[:, 36:].any()  # and nothing of the textured side
    assert M.flat_mask(_texture(), fraction=0.25).mean() == pytest.approx(0.25, abs=0.01)
    assert M.flat_mask(np.zeros((8, 8))).all()  # never empty


@pytest.mark.parametrize(
    ("values", "increasing", "expected"),
    [
        ([1, 2, 3, 4], True, True),
        ([4, 3, 2, 1], False, True),
        ([4, 3, 2, 1], True, False),
        ([1, 2, 1.5, 4], True, False),
        ([1.0, 2.0, 2.0 - 1e-5, 3.0], True, True),  # a step back within 1e-4 relative
        ([1.0, 2.0, 2.0 - 1e-3, 3.0], True, False),  # beyond it
        ([2.0, 2.0, 2.0], True, False),  # flat: the knob does nothing
        ([2.0, 2.0, 2.0], False, False),
        ([1.0, float("nan"), 3.0], True, False),
        ([1.0], True, False),
    ],
)
def test_is_monotone(values: list[float], increasing: bool, expected: bool) -> None:
    assert M.is_monotone(values, increasing=increasing) is expected


def test_spearman() -> None:
    assert M.spearman([0, 1, 2, 3], [0.1, 0.2, 0.5, 0.9]) == (pytest.approx(1.0), True)
    assert M.spearman([0, 1, 2, 3], [0.9, 0.5, 0.2, 0.1]) == (pytest.approx(-1.0), True)
    assert M.spearman([0, 1, 2, 3], [0.4, 0.4, 0.4, 0.4]) == (0.0, False)
    assert M.spearman([0, 1, 2, 3], [0.4, 0.4 + 1e-8, 0.4, 0.4]) == (0.0, False)


def test_luma_psnr_rounds_to_8_bits_and_crops_the_border() -> None:
    torch.manual_seed(0)
    hr = torch.randint(0, 256, (3, 32, 32)).float() / 255  # 8-bit values
    assert M.luma_psnr(hr, hr) == M.PSNR_CAP_DB
    assert M.luma_psnr(hr + 0.1 / 255, hr) == M.PSNR_CAP_DB  # under half a level: rounds away
    framed = hr.clone()
    framed[:, : M.BORDER] = 0.0  # only the cropped border differs
    assert M.luma_psnr(framed, hr) == M.PSNR_CAP_DB
    assert M.luma_psnr(hr.flip(-1), hr) < 20.0
    assert M.crop_border(np.zeros((32, 30, 3))).shape == (32 - 2 * M.BORDER, 30 - 2 * M.BORDER, 3)


def test_bicubic_upscale_keeps_a_constant_image() -> None:
    lr = torch.full((2, 3, 8, 6), 0.25)
    up = M.bicubic_upscale(lr, 4)
    assert up.shape == (2, 3, 32, 24)
    assert torch.allclose(up, torch.full_like(up, 0.25))


def test_to_image_clamps_and_quantizes() -> None:
    t = torch.tensor([-0.5, 0.25, 1.5]).reshape(3, 1, 1)
    assert M.to_image(t).shape == (1, 1, 3)
    assert M.to_image(t)[0, 0].tolist() == [0.0, 64 / 255, 1.0]
    assert M.to_image(t, quantize=False)[0, 0].tolist() == [0.0, 0.25, 1.0]
