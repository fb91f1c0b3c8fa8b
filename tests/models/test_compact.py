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


def test_flops_within_budget() -> None:
    c = CompactConfig()
    per_frame = (flops_per_input_pixel(c) + flops_per_input_pixel(c, estimator=True)) * 640 * 480
    assert per_frame <= RELEASED_TFLOP_640x480 * 1e12 / 20


def test_measured_flops_match_formula() -> None:
    """The formula counts what the network really runs (counted by torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    c = CompactConfig()
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


@pytest.mark.parametrize("skip", ["nearest", "bicubic"])
def test_exports_to_onnx_and_runs_there(tmp_path: Path, skip: str) -> None:
    """Plain convolutions, no data-dependent control flow: the generator and the estimator export."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = CompactNet(CompactConfig(num_feat=8, num_conv=3, skip=skip)).eval()
    torch.nn.init.normal_(net.modulation.weight, std=0.2)
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
