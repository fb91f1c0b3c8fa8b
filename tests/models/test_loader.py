"""load_model: sources, devices, and clear errors for checkpoints it cannot use."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mmrealsr_video import (
    CheckpointError,
    InputError,
    UnknownArchitectureError,
    UnsafeCheckpointError,
    load_model,
)


class _RunsCode:
    """A pickle payload that would create a file if it were ever unpickled freely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _esrgan_like(parity_params: dict) -> dict:
    """Plain (unmodulated) RRDBNet: the released layout without estimator and modulation."""
    return {k: v for k, v in parity_params.items() if not k.startswith(("de_net.", "am_list.", "dd_embed."))}


def test_loads_pth_with_params_and_safetensors(parity: dict, tmp_path: Path) -> None:
    pth = tmp_path / "net.pth"
    torch.save({"params": parity["params"]}, pth)
    st = tmp_path / "net.safetensors"
    save_file(dict(parity["params"]), st)
    x = parity["inputs"][0]
    a = load_model(pth).estimate(x)
    b = load_model(st).estimate(x)
    assert torch.equal(a, b)
    assert load_model(st).name == "net.safetensors"


def test_another_architecture_names_the_closest(parity: dict) -> None:
    with pytest.raises(UnknownArchitectureError) as err:
        load_model({"params": _esrgan_like(parity["params"])})
    msg = str(err.value)
    assert "closest is 'mmrrdbnet'" in msg
    assert "missing" in msg and "am_list.#.fc.#.weight" in msg
    assert isinstance(err.value, ValueError)  # callers may catch the builtin


def test_unrelated_dict_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "resnet.safetensors"
    save_file({"layer1.0.conv1.weight": torch.zeros(4, 4, 3, 3), "fc.weight": torch.zeros(10, 4)}, path)
    with pytest.raises(
        UnknownArchitectureError, match=r"resnet\.safetensors: not a known modulated architecture"
    ):
        load_model(path)


def test_missing_keys_are_listed_with_counts(parity: dict) -> None:
    sd = dict(parity["params"])
    del sd["body.1.rdb2.conv3.weight"]
    del sd["am_list.1.fc.2.bias"]
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_model(sd)
    msg = str(err.value)
    assert "2 missing (am_list.1.fc.2.bias, body.1.rdb2.conv3.weight)" in msg
    assert "1 unexpected (extra.weight)" in msg


def test_wrong_shape_is_named(parity: dict) -> None:
    sd = dict(parity["params"])
    sd["conv_hr.weight"] = torch.zeros(16, 16, 5, 5)
    with pytest.raises(
        CheckpointError, match=r"conv_hr\.weight \(16, 16, 5, 5\) \(expected \(16, 16, 3, 3\)\)"
    ):
        load_model(sd)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file(parity: dict, tmp_path: Path, suffix: str) -> None:
    full = tmp_path / f"full{suffix}"
    if suffix == ".pth":
        torch.save({"params": parity["params"]}, full)
    else:
        save_file(dict(parity["params"]), full)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"cut{suffix}: corrupt or truncated"):
        load_model(cut)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match=r"junk\.pth"):
        load_model(junk)
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_model(tmp_path / "absent.pth")
    with pytest.raises(CheckpointError, match="neither a bundled model"):
        load_model("no-such-model")


@pytest.mark.parametrize("wrapped", [True, False])
def test_pickle_that_would_run_code_is_refused_unrun(tmp_path: Path, wrapped: bool) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    if wrapped:  # a real torch zip checkpoint with a poisoned entry
        torch.save({"params": {"w": torch.zeros(1)}, "hook": _RunsCode(marker)}, path)
    else:  # a raw pickle stream
        path.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pth: refused"):
        load_model(path)
    assert not marker.exists()


def test_non_tensor_entries_are_rejected() -> None:
    with pytest.raises(CheckpointError, match=r"entry 'conv_first\.weight' is a list"):
        load_model({"params": {"conv_first.weight": [1, 2]}})


def test_device_and_dtype_are_applied(parity: dict) -> None:
    model = load_model(parity["params"], dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model.net.parameters())
    y = model.restore(parity["inputs"][1], (0.5, 0.5))
    assert y.dtype == torch.bfloat16 and y.shape == (1, 3, 68, 92)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            load_model(parity["params"], device="cuda")


def test_coefficients_are_validated(parity: dict) -> None:
    model = load_model(parity["params"])
    x = parity["inputs"][0].float()
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        model.restore(x, (1.5, 0.0))
    with pytest.raises(InputError, match=r"\(B, 2\)"):
        model.restore(torch.cat([x, x]), torch.zeros(3, 2))
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        model.estimate(x[:, :1])


def test_batch_mixes_per_sample_coefficients(parity: dict) -> None:
    model = load_model(parity["params"], dtype=torch.float64)
    x = parity["inputs"][0]
    batch = torch.cat([x, x])
    coeffs = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    y = model.restore(batch, coeffs)
    torch.testing.assert_close(y[0:1], model.restore(x, coeffs[0]), rtol=0, atol=1e-12)
    torch.testing.assert_close(y[1:2], model.restore(x, coeffs[1]), rtol=0, atol=1e-12)


def test_shapes_that_make_no_model_are_a_checkpoint_error(tmp_path: Path) -> None:
    """Key names of the compact model with an upsampler for x5 (which the architecture refuses):
    a CheckpointError naming the file, not the architecture's bare ValueError."""
    from safetensors.torch import load_file

    from mmrealsr_video.models import bundled_model_path

    bundled = bundled_model_path("default")
    assert bundled is not None
    sd = load_file(str(bundled))
    sd["conv_last.weight"] = torch.zeros(75, sd["conv_last.weight"].shape[1], 3, 3)
    sd["conv_last.bias"] = torch.zeros(75)
    path = tmp_path / "x5.safetensors"
    save_file(sd, str(path))
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: looks like a compact checkpoint"):
        load_model(path)
