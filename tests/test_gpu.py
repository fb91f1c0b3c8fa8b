"""On a CUDA device the networks give the CPU's numbers: the released network's parity vector, the
bundled model in float32 and in half precision, and tiled against untiled restoration.

Every test here is marked ``gpu`` and skipped without CUDA (tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrealsr_video import load_model
from mmrealsr_video.models.tiling import tiled_apply

pytestmark = pytest.mark.gpu


def _photo(h: int = 96, w: int = 128) -> torch.Tensor:
    """A real photograph (scikit-image's astronaut, area-downscaled), (1, 3, h, w) in [0, 1]."""
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double().cpu() - b.double().cpu()).pow(2).mean().item()
    return 10 * np.log10(1.0 / max(mse, 1e-20))


def test_released_parity_vector_on_cuda(parity: dict) -> None:
    model = load_model(parity["params"], device="cuda", dtype=torch.float32)
    for i, x in enumerate(parity["inputs"]):
        est = model.estimate(x.float().cuda())
        assert (est.double().cpu() - parity["estimates"][i]).abs().max().item() <= 2e-3
        y = model.restore(x.float().cuda(), parity["estimates"][i].float().cuda())
        # cuDNN may pick TF32 kernels for convolutions: a few 1e-3 of the [0, 1] range at most.
        assert (y.double().cpu() - parity["outputs"][i][0]).abs().max().item() <= 1e-2


def test_bundled_model_matches_the_cpu() -> None:
    x = _photo()
    cpu = load_model("default")
    gpu = load_model("default", device="cuda")
    est_cpu = cpu.estimate(x)
    est_gpu = gpu.estimate(x.cuda())
    assert est_gpu.device.type == "cuda"
    assert (est_gpu.cpu() - est_cpu).abs().max().item() <= 2e-3
    y_cpu = cpu.restore(x, est_cpu)
    y_gpu = gpu.restore(x.cuda(), est_cpu.cuda())
    assert y_gpu.shape == y_cpu.shape == (1, 3, 4 * 96, 4 * 128)
    assert _psnr(y_gpu, y_cpu) > 50.0


@pytest.mark.parametrize(("dtype", "floor_db"), [(torch.float16, 45.0), (torch.bfloat16, 36.0)])
def test_half_precision_stays_close_to_float32(dtype: torch.dtype, floor_db: float) -> None:
    x = _photo().cuda()
    full = load_model("default", device="cuda")
    half = load_model("default", device="cuda", dtype=dtype)
    coeffs = full.estimate(x)
    y_full = full.restore(x, coeffs)
    y_half = half.restore(x.to(dtype), coeffs.to(dtype))
    assert y_half.dtype == dtype
    assert torch.isfinite(y_half.float()).all()
    assert _psnr(y_half.float(), y_full) > floor_db


def test_tiles_on_cuda_join_like_the_whole_frame() -> None:
    model = load_model("default", device="cuda")
    x = _photo(160, 224).cuda()
    coeffs = model.estimate(x)
    whole = model.restore(x, coeffs)
    tiled = tiled_apply(lambda t: model.restore(t, coeffs), x, scale=4, tile=96, overlap=16, align=4)
    assert _psnr(tiled, whole) > 50.0


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le", "rgb24"])
def test_frames_converted_on_cuda_equal_the_cpu_conversion(pix_fmt: str) -> None:
    import av

    from mmrealsr_video.io.colour import ColourDescription, frame_to_tensor

    rng = np.random.default_rng(3)
    frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), format="rgb24")
    frame = frame.reformat(format=pix_fmt)
    desc = ColourDescription.from_frame(frame)
    cpu, _ = frame_to_tensor(frame, desc)
    model = load_model("default", device="cuda")
    assert model.conversion_device is not None and model.conversion_device.type == "cuda"
    gpu, _ = frame_to_tensor(frame, desc, device=model.conversion_device)
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max().item() <= 1e-5
