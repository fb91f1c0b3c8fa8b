"""The models that ship inside the package: names, scales, cards, and that each restores a real
photograph better than bicubic upscaling at its own scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmrealsr_training.degradations import degrade_fixed
from mmrealsr_training.metrics import luma, psnr
from skimage import data as skdata

from mmrealsr_video import load_model
from mmrealsr_video.models.loader import BUNDLED_MODELS, bundled_model_path

SCALES = {"default": 4, "compact-x4": 4, "compact-x2": 2}


def test_every_bundled_model_ships_with_its_card() -> None:
    assert set(BUNDLED_MODELS) == set(SCALES)
    assert BUNDLED_MODELS["default"] == BUNDLED_MODELS["compact-x4"]
    for name in BUNDLED_MODELS:
        path = bundled_model_path(name)
        assert path is not None and path.stat().st_size < 5 * 2**20, name  # a few MB at most
        card = path.with_suffix(".md").read_text()
        assert "## Measured" in card, name


def _y(t: torch.Tensor) -> np.ndarray:
    a = t[0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
    return luma(np.round(a * 255.0) / 255.0)[4:-4, 4:-4]


@pytest.mark.parametrize("name", ["compact-x4", "compact-x2"])
def test_bundled_model_beats_bicubic_on_a_real_photograph_at_its_scale(name: str) -> None:
    model = load_model(name)
    assert model.arch == "compact" and model.scale == SCALES[name]
    # scikit-image's coffee (a held-out photo of the training set), degraded at the evaluation's
    # mid level: Gaussian blur 1.2, antialiased bicubic downscale, noise sigma 10, JPEG 75.
    rgb = skdata.coffee()[100:292, 200:392]
    hr = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
    lr = degrade_fixed(hr, blur_sigma=1.2, noise_sigma=10.0, jpeg_quality=75, scale=model.scale, seed=3)
    auto = model.estimate(lr).float()[0].clamp(0, 1)
    restored = model.restore(lr, (float(auto[0]), float(auto[1]))).float()
    assert restored.shape == hr.shape
    bicubic = F.interpolate(lr, scale_factor=model.scale, mode="bicubic", align_corners=False)
    gain = psnr(_y(restored), _y(hr)) - psnr(_y(bicubic), _y(hr))
    assert gain > 0.3, f"{name}: {gain:+.2f} dB over bicubic"
    # The noise knob does what it says on this photo too: at 1 the output is smoother than at 0.
    pair = model.restore(
        lr.expand(2, -1, -1, -1), torch.tensor([[float(auto[0]), 0.0], [float(auto[0]), 1.0]])
    )
    rough = [float((p - F.avg_pool2d(p, 3, 1, 1)).std()) for p in pair.float()]
    assert rough[1] < rough[0]
