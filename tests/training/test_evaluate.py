"""Tests of the held-out evaluation: the protocol's constants, and ``evaluate`` end to end on small
photographs made here, with a random compact model and with a hand-made oracle model (the measures
themselves are tested in test_metrics.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmrealsr_training import evaluate as ev
from mmrealsr_training import metrics as M
from mmrealsr_training import report as rp

from mmrealsr_video import ModulatedModel
from mmrealsr_video.errors import InputError
from mmrealsr_video.models.compact import CompactConfig, CompactNet
from tests.training.conftest import PHOTO_NAMES

CROP = 64
PHOTOS = PHOTO_NAMES


class _OracleModel:
    """Hand-made "model" that does the right things: estimates from image statistics, smooths more
    for a larger noise coefficient and sharpens more for a larger blur coefficient."""

    name = "oracle"
    scale = 4

    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for img in x:
            y = M.luma(img.permute(1, 2, 0).numpy())
            noise = math.tanh(20.0 * M.high_pass_std(y, sigma=1.0))
            blur = 1.0 - math.tanh(20.0 * M.laplacian_variance(y))
            out.append([blur, noise])
        return torch.tensor(out, dtype=torch.float32)

    def restore(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        out = []
        for img, (blur, noise) in zip(up, coeffs.tolist(), strict=True):
            a = img.permute(1, 2, 0).numpy().astype(np.float64)
            a = cv2.GaussianBlur(a, (0, 0), 0.1 + 2.0 * noise)
            a = a + 2.0 * blur * (a - cv2.GaussianBlur(a, (0, 0), 1.5))
            out.append(torch.from_numpy(a).permute(2, 0, 1).float())
        return torch.stack(out)


def test_protocol_constants() -> None:
    assert len(ev.NOISE_LEVELS) == 7 and ev.NOISE_LEVELS[0] == 0 and ev.NOISE_LEVELS[-1] == 30
    assert len(ev.BLUR_LEVELS) == 7 and ev.BLUR_LEVELS[0] == 0.2 and ev.BLUR_LEVELS[-1] == 3.0
    assert len(ev.COEFF_STEPS) == 11 and ev.COEFF_STEPS[0] == 0 and ev.COEFF_STEPS[-1] == 1
    assert all(v in ev.COEFF_STEPS for v in rp.CONTACT_SHEET_VALUES)


# --------------------------------------------------------------------------------------------------
# evaluate()


def _check_shapes(report: rp.EvaluationReport, n: int) -> None:
    assert len(report.images) == n
    for r in report.images:
        assert len(r.noise_estimates) == len(ev.NOISE_LEVELS)
        assert len(r.blur_estimates) == len(ev.BLUR_LEVELS)
        assert all(0.0 <= v <= 1.0 for v in (*r.noise_estimates, *r.blur_estimates, *r.auto_coeffs))
        assert -1.0 <= r.noise_spearman <= 1.0 and -1.0 <= r.blur_spearman <= 1.0
        if not r.noise_spearman_defined:
            assert r.noise_spearman == 0.0
        assert len(r.noise_sweep_residual) == len(ev.COEFF_STEPS)
        assert len(r.blur_sweep_sharpness) == len(ev.COEFF_STEPS)
        assert all(math.isfinite(v) and v >= 0 for v in (*r.noise_sweep_residual, *r.blur_sweep_sharpness))
        assert isinstance(r.noise_sweep_monotone, bool) and isinstance(r.blur_sweep_monotone, bool)
        assert 0 < r.psnr_model <= M.PSNR_CAP_DB and 0 < r.psnr_bicubic <= M.PSNR_CAP_DB
        assert -1.0 <= r.ssim_model <= 1.0 and -1.0 <= r.ssim_bicubic <= 1.0
    for v in report.summary().values():
        assert math.isfinite(v)
    assert 0.0 <= report.noise_monotone_fraction <= 1.0 and 0.0 <= report.blur_monotone_fraction <= 1.0


def test_evaluate_random_compact(photos: Path, tmp_path: Path, compact_model: ModulatedModel) -> None:
    report = ev.evaluate(compact_model, photos, tmp_path / "out", crop=CROP)

    _check_shapes(report, len(PHOTOS))  # the tiny photo is skipped, the .txt ignored
    assert [r.name for r in report.images] == sorted(f"{p}.png" for p in PHOTOS)
    assert report.settings["crop_lr"] == CROP // 4
    assert report.settings["mid_jpeg_quality"] == ev.MID_JPEG

    sheet = cv2.imread(report.contact_sheet)
    assert sheet is not None
    assert sheet.shape == (3 * len(PHOTOS) * CROP, len(rp.CONTACT_SHEET_VALUES) * CROP, 3)

    saved = json.loads(Path(report.report_json).read_text())
    assert Path(report.report_json) == tmp_path / "out" / rp.REPORT_NAME
    assert len(saved["images"]) == len(PHOTOS)
    assert set(saved["summary"]) == set(report.summary())
    assert saved["summary"]["mean_psnr_gain"] == pytest.approx(report.mean_psnr_gain)
    assert saved["settings"]["noise_levels_sigma255"] == list(ev.NOISE_LEVELS)
    assert len(saved["goals"]) == 5
    assert saved["settings"]["other_levels_blur_noise_jpeg"] == [list(v) for v in ev.OTHER_LEVELS]
    for img, r in zip(saved["images"], report.images, strict=True):
        assert len(r.other_levels_monotone) == len(ev.OTHER_LEVELS)
        assert img["other_levels_monotone"] == [list(v) for v in r.other_levels_monotone]

    text = report.format()
    assert "other input levels" in text
    for heading in ("Estimation", "Modulation", "Quality", "Goals", "mean"):
        assert heading in text
    for r in report.images:
        assert r.name in text


def test_evaluate_oracle_meets_ranking_and_monotone_goals(photos: Path, tmp_path: Path) -> None:
    """A model that does the right thing passes: checks the direction of every figure."""
    report = ev.evaluate(cast(ModulatedModel, _OracleModel()), photos, tmp_path, crop=CROP, max_images=2)

    _check_shapes(report, 2)
    assert all(r.noise_spearman_defined and r.blur_spearman_defined for r in report.images)
    assert report.mean_noise_spearman > 0.9
    assert report.mean_blur_spearman > 0.8
    assert report.noise_monotone_fraction == 1.0
    assert report.blur_monotone_fraction == 1.0
    # Away from the scored level too, wherever the input has what the knob removes.
    for r in report.images:
        for (blur, noise, _), (noise_ok, blur_ok) in zip(
            ev.OTHER_LEVELS, r.other_levels_monotone, strict=True
        ):
            assert blur_ok, (r.name, blur, noise)
            assert noise_ok or noise == 0, (r.name, blur, noise)
    sheet = cv2.imread(str(tmp_path / rp.CONTACT_SHEET_NAME))
    assert sheet is not None and sheet.shape[0] == 3 * 2 * CROP


def test_evaluate_rejects_bad_inputs(photos: Path, tmp_path: Path, compact_model: ModulatedModel) -> None:
    with pytest.raises(InputError, match="crop"):
        ev.evaluate(compact_model, photos, tmp_path, crop=66)
    with pytest.raises(InputError, match="max_images"):
        ev.evaluate(compact_model, photos, tmp_path, crop=CROP, max_images=0)
    with pytest.raises(InputError, match="no photographs"):
        ev.evaluate(compact_model, tmp_path, tmp_path / "out", crop=CROP)
    with pytest.raises(InputError, match="no such folder"):
        ev.evaluate(compact_model, tmp_path / "missing", tmp_path / "out", crop=CROP)
    with pytest.raises(InputError, match="at least 128x128"):
        ev.evaluate(compact_model, photos, tmp_path / "out", crop=128)


def test_cli(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(1)
    weights = tmp_path / "tiny.pth"
    torch.save(CompactNet(CompactConfig(num_feat=8, num_conv=2)).state_dict(), weights)
    out = tmp_path / "out"
    argv = ["--model", str(weights), "--photos", str(photos), "--out", str(out), "--crop", str(CROP)]
    assert ev.main([*argv, "--max-images", "1", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "Estimation" in printed and "Goals" in printed
    assert len(json.loads((out / rp.REPORT_NAME).read_text())["images"]) == 1
    assert (out / rp.CONTACT_SHEET_NAME).is_file()
    assert ev.main([*argv, "--crop", "65"]) == 2
