"""The released network: parity with the original code, the released layout, hyperparameter inference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mmrealsr_video import load_model
from mmrealsr_video.models.mmrrdbnet import MMRRDBNet, MMRRDBNetConfig, detect


def _override(estimate: torch.Tensor, case: list[float]) -> torch.Tensor:
    coeffs = estimate.clone()
    for k, value in enumerate(case):
        if value != -1:
            coeffs[:, k] = value
    return coeffs


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_parity_with_original_code(parity: dict, dtype: torch.dtype, tol: float) -> None:
    model = load_model(parity["params"], dtype=dtype)  # a plain state dict; hyperparameters inferred
    cfg = parity["config"]
    assert model.config["num_feat"] == cfg["num_feat"]
    assert model.config["num_block"] == cfg["num_block"]
    assert model.config["num_grow_ch"] == cfg["num_grow_ch"]
    worst_est = worst_out = 0.0
    checked = 0
    for i, x in enumerate(parity["inputs"]):
        est = model.estimate(x)
        worst_est = max(worst_est, (est.double() - parity["estimates"][i]).abs().max().item())
        for j, case in enumerate(parity["cases"]):
            y = model.restore(x, _override(est, case))
            assert y.shape == parity["outputs"][i][j].shape
            worst_out = max(worst_out, (y.double() - parity["outputs"][i][j]).abs().max().item())
            checked += 1
    assert checked == len(parity["inputs"]) * len(parity["cases"]) == 10
    assert worst_est <= tol, f"estimates differ by {worst_est:.3g}"
    assert worst_out <= tol, f"outputs differ by {worst_out:.3g}"


def test_overrides_change_the_output(parity: dict) -> None:
    """A wrong override rule would pass parity only by accident: the cases must differ."""
    model = load_model(parity["params"], dtype=torch.float64)
    x = parity["inputs"][0]
    est = model.estimate(x)
    a = model.restore(x, _override(est, [0.0, 1.0]))
    b = model.restore(x, _override(est, [1.0, 0.0]))
    assert (a - b).abs().max().item() > 0.05


def test_estimator_stage_inference_rebuilds_same_layout(parity: dict) -> None:
    cfg = detect(parity["params"])
    assert cfg is not None
    net = MMRRDBNet(cfg)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == {
        k: tuple(v.shape) for k, v in parity["params"].items()
    }


@pytest.mark.slow
def test_full_released_configuration_round_trips(tmp_path: Path, released_layout: list) -> None:
    net = MMRRDBNet(MMRRDBNetConfig())
    sd = net.state_dict()
    assert len(released_layout) == 922
    assert sum(v.numel() for v in sd.values()) == 26_134_149
    assert sum(v.numel() for k, v in sd.items() if k.startswith("de_net.")) == 2_351_362
    pth = tmp_path / "MMRealSRNet_x4.pth"
    torch.save({"params": sd}, pth)
    st = tmp_path / "MMRealSRNet_x4.safetensors"
    save_file(sd, st)
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    reference = net.eval().restore(x, torch.tensor([[0.3, 0.6]]))
    for path in (pth, st):
        model = load_model(path)
        loaded = model.net.state_dict()
        # Key by key, shape by shape, in the released order.
        assert [(k, tuple(v.shape)) for k, v in loaded.items()] == released_layout
        assert (
            model.config["num_feat"] == 64
            and model.config["num_block"] == 23
            and model.config["num_grow_ch"] == 32
        )
        assert model.scale == 4
        torch.testing.assert_close(model.restore(x, (0.3, 0.6)), reference.detach(), rtol=1e-4, atol=1e-9)


def test_params_ema_is_preferred(parity: dict) -> None:
    ema = parity["params"]
    other = {k: torch.zeros_like(v) for k, v in ema.items()}
    model = load_model({"params": other, "params_ema": ema}, dtype=torch.float64)
    x = parity["inputs"][1]
    assert torch.allclose(model.estimate(x), parity["estimates"][1], atol=1e-9)


@pytest.mark.parametrize("scale", [2, 1])
def test_pixel_unshuffle_variants_pad_odd_sizes(scale: int) -> None:
    cfg = MMRRDBNetConfig(
        scale=scale,
        num_feat=8,
        num_block=1,
        num_grow_ch=4,
        de_num_feats=(4, 8),
        de_num_blocks=(1, 1),
        de_downscales=(2, 1),
    )
    net = MMRRDBNet(cfg)
    assert detect(net.state_dict()) == cfg
    model = load_model(net.state_dict())
    assert model.scale == scale
    x = torch.rand(1, 3, 13, 10)
    assert model.restore(x, (0.5, 0.5)).shape == (1, 3, 13 * scale, 10 * scale)
