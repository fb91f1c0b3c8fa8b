"""The compact modulated model: layout inference, budget, interface."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mmrealsr_video import load_model
from mmrealsr_video.models.compact import CompactConfig, CompactNet, detect, flops_per_input_pixel

RELEASED_TFLOP_640x480 = 11.76


@pytest.mark.parametrize(
    "config",
    [
        CompactConfig(),
        CompactConfig(scale=2, num_feat=24, num_conv=6, embed_dim=32, est_feats=(8, 16, 16)),
        CompactConfig(skip="bicubic"),
        CompactConfig(scale=2, num_feat=8, num_conv=2, skip="bilinear"),
        CompactConfig(context_feat=32),
        CompactConfig(num_feat=8, num_conv=4, context_feat=6, context_conv=2, context_pool=3),
    ],
)
def test_detect_round_trip(config: CompactConfig, tmp_path: Path) -> None:
    net = CompactNet(config).eval()
    assert detect(net.state_dict()) == config
    path = tmp_path / "compact.safetensors"
    save_file(net.state_dict(), path)
    model = load_model(path)
    assert model.arch == "compact" and model.scale == config.scale
    x = torch.rand(2, 3, 19, 21)
    coeffs = torch.tensor([[0.1, 0.7], [0.9, 0.3]])
    with torch.no_grad():
        torch.testing.assert_close(model.restore(x, coeffs), net.restore(x, coeffs))
        torch.testing.assert_close(model.estimate(x), net.estimate(x))


@pytest.mark.parametrize("c", [CompactConfig(), CompactConfig(num_feat=48, num_conv=12, context_feat=32)])
def test_flops_within_budget(c: CompactConfig) -> None:
    per_frame = (flops_per_input_pixel(c) + flops_per_input_pixel(c, estimator=True)) * 640 * 480
    assert per_frame <= RELEASED_TFLOP_640x480 * 1e12 / 20


@pytest.mark.parametrize(
    "c",
    [
        CompactConfig(),
        CompactConfig(context_feat=24, context_conv=3),
        CompactConfig(context_feat=8, context_pool=8),
    ],
)
def test_measured_flops_match_formula(c: CompactConfig) -> None:
    """The formula counts what the network really runs (counted by torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = CompactNet(c).eval()
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.restore(x, torch.tensor([[0.5, 0.5]]))
    convs = sum(v for k, v in counter.get_flop_counts()["Global"].items() if "convolution" in str(k))
    assert convs == pytest.approx(flops_per_input_pixel(c) * 32 * 40, rel=1e-6)


def test_modulation_reaches_the_output() -> None:
    torch.manual_seed(0)
    net = CompactNet(CompactConfig(num_feat=8, num_conv=2))
    torch.nn.init.normal_(net.modulation.weight, std=0.5)
    model = load_model(net.state_dict())
    x = torch.rand(1, 3, 16, 16)
    assert (model.restore(x, (0.0, 0.0)) - model.restore(x, (1.0, 1.0))).abs().max() > 1e-3


def test_skip_connection_is_the_chosen_upsampling() -> None:
    """With the body's output zeroed the network is its skip connection: nearest, bilinear or bicubic."""
    x = torch.rand(1, 3, 10, 12)
    for mode in ("nearest", "bilinear", "bicubic"):
        net = CompactNet(CompactConfig(num_feat=8, num_conv=2, skip=mode)).eval()
        torch.nn.init.zeros_(net.conv_last.weight)
        torch.nn.init.zeros_(net.conv_last.bias)
        kwargs = {} if mode == "nearest" else {"align_corners": False}
        with torch.no_grad():
            expected = torch.nn.functional.interpolate(x, scale_factor=4, mode=mode, **kwargs)
            torch.testing.assert_close(net.restore(x, torch.tensor([[0.5, 0.5]])), expected)
    # The bundled model predates the option: no skip_mode key, nearest.
    assert load_model("default")._modnet.config.skip == "nearest"
    with pytest.raises(ValueError, match="skip must be one of"):
        CompactConfig(skip="lanczos")


@pytest.mark.parametrize(("skip", "context"), [("nearest", 0), ("bicubic", 0), ("nearest", 6)])
def test_exports_to_onnx_and_runs_there(tmp_path: Path, skip: str, context: int) -> None:
    """Plain convolutions, no data-dependent control flow: the generator and the estimator export."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = CompactNet(CompactConfig(num_feat=8, num_conv=3, skip=skip, context_feat=context)).eval()
    torch.nn.init.normal_(net.modulation.weight, std=0.2)
    if net.context is not None:
        torch.nn.init.normal_(net.context[-1].weight, std=0.2)
    x = torch.rand(2, 3, 24, 20)
    coeffs = torch.tensor([[0.2, 0.8], [0.6, 0.1]])

    class Estimator(torch.nn.Module):
        def __init__(self, inner: CompactNet) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, frames: torch.Tensor) -> torch.Tensor:
            return self.inner.estimate(frames)

    for name, module, inputs in (("restore", net, (x, coeffs)), ("estimate", Estimator(net).eval(), (x,))):
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(module, inputs, str(path), dynamo=True, optimize=False, verbose=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=True)}
        (result,) = session.run(None, feeds)
        with torch.no_grad():
            expected = module(*inputs)
        torch.testing.assert_close(torch.from_numpy(result), expected, rtol=1e-4, atol=1e-5)


def _far_pixel_effect(net: CompactNet, distance: int) -> float:
    """How much the output at the input's centre moves when one pixel ``distance`` px away changes."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 48, 48, generator=gen)
    y = x.clone()
    y[:, :, 24, 24 + distance] += 0.5
    coeffs = torch.tensor([[0.5, 0.5]])
    with torch.no_grad():
        a, b = net.restore(x, coeffs), net.restore(y, coeffs)
    s = net.scale
    return float((a - b)[:, :, 24 * s : 25 * s, 24 * s : 25 * s].abs().max())


def test_context_branch_widens_the_receptive_field_and_starts_silent() -> None:
    """Without the branch a pixel 12 px away cannot reach the output (2 + 3 convolutions see 5 px
    each side); with it, once its last convolution is non-zero, it does. A fresh branch adds nothing."""
    torch.manual_seed(0)
    plain = CompactNet(CompactConfig(num_feat=8, num_conv=3)).eval()
    assert _far_pixel_effect(plain, 4) > 0
    assert _far_pixel_effect(plain, 12) == 0
    wide = CompactNet(CompactConfig(num_feat=8, num_conv=3, context_feat=8, context_conv=2)).eval()
    wide.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(2, 3, 18, 22)
    coeffs = torch.tensor([[0.2, 0.8], [0.6, 0.1]])
    with torch.no_grad():
        assert torch.equal(wide.restore(x, coeffs), plain.restore(x, coeffs))
    assert wide.context is not None
    torch.nn.init.normal_(wide.context[-1].weight, std=0.2)
    assert _far_pixel_effect(wide, 12) > 1e-4
    # Any input size: the pooled grid is rounded up and resized back.
    with torch.no_grad():
        assert wide.restore(torch.rand(1, 3, 13, 7), coeffs[:1]).shape == (1, 3, 52, 28)


def test_context_options_are_checked() -> None:
    with pytest.raises(ValueError, match="context_feat must be 0"):
        CompactConfig(context_feat=-1)
    with pytest.raises(ValueError, match="context_pool >= 2"):
        CompactConfig(context_feat=8, context_pool=1)
    # Checkpoints made before the option (no context keys) load without a branch; the bundled
    # model (run 6) has one.
    old = CompactNet(CompactConfig(num_feat=8, num_conv=2)).state_dict()
    assert not any(k.startswith("context") for k in old)
    assert load_model(old)._modnet.config.context_feat == 0
    assert load_model("default")._modnet.config.context_feat == 32
