"""Tests of the headroom diagnostic: the symmetries and their inverses, the self-ensemble on a model that
is exactly equivariant and on one that is not, and agreement with ``mmrealsr_training.evaluate``'s quality figure
for the bundled model on real photographs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmrealsr_training import evaluate as ev
from mmrealsr_training import headroom as hr

from mmrealsr_video import ModulatedModel, load_model
from mmrealsr_video.errors import InputError
from mmrealsr_video.models.compact import CompactConfig, CompactNet

CROP = 64


def test_dihedral_symmetries_are_distinct_and_undone_exactly() -> None:
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    seen = []
    for k in range(8):
        y = hr.dihedral(x, k)
        assert y.shape[-2:] == ((5, 7) if k % 2 == 0 else (7, 5))
        assert torch.equal(hr.undo_dihedral(y, k), x)
        assert not any(y.shape == s.shape and torch.equal(y, s) for s in seen)
        seen.append(y)
    for bad in (-1, 8):
        with pytest.raises(InputError, match=r"0\.\.7"):
            hr.dihedral(x, bad)
        with pytest.raises(InputError, match=r"0\.\.7"):
            hr.undo_dihedral(x, bad)


def test_ensemble_of_an_equivariant_model_is_the_plain_restore(compact_model: ModulatedModel) -> None:
    """With its last convolution zeroed the compact model is its nearest-neighbour skip, which commutes
    with every symmetry: the ensemble must equal the plain output. The random model does not commute."""
    torch.manual_seed(3)
    lr = torch.rand(2, 3, 12, 16)
    coeffs = torch.tensor([[0.2, 0.7], [0.9, 0.1]], dtype=torch.float64)
    plain = compact_model.restore(lr, coeffs).float()
    assert torch.equal(hr.restore_ensemble(compact_model, lr, coeffs, (0,)), plain)
    assert (hr.restore_ensemble(compact_model, lr, coeffs, range(8)) - plain).abs().max() > 1e-3

    net = CompactNet(CompactConfig(num_feat=8, num_conv=2))
    sd = net.state_dict()
    sd["conv_last.weight"].zero_()
    sd["conv_last.bias"].zero_()
    skip_only = load_model(sd)
    plain = skip_only.restore(lr, coeffs).float()
    assert torch.allclose(hr.restore_ensemble(skip_only, lr, coeffs, range(8)), plain, atol=1e-6)
    with pytest.raises(InputError, match="at least one"):
        hr.restore_ensemble(skip_only, lr, coeffs, ())


def test_headroom_agrees_with_the_evaluation(photos: Path, tmp_path: Path) -> None:
    """The bundled model on real photographs: the "auto" column is the evaluation's PSNR gain, the grid's
    best coefficients lie on the grid, and the columns order as they must on average."""
    model = load_model("default")
    report = hr.headroom(model, photos, crop=CROP, grid=3)
    evaluated = ev.evaluate(model, photos, tmp_path, crop=CROP)

    assert [p.name for p in report.photos] == [r.name for r in evaluated.images]
    # Equal to float32 rounding: the headroom restores the same input with the same coefficients right
    # after a batch of the grid, and oneDNN's kernels then round some pixels differently (4e-7 seen on
    # coffee; 7e-6 dB of PSNR).
    for p, r in zip(report.photos, evaluated.images, strict=True):
        assert p.gains[0] == pytest.approx(r.psnr_gain, abs=1e-4)
        assert p.psnr_bicubic == pytest.approx(r.psnr_bicubic, abs=1e-9)
        assert p.auto_coeffs == pytest.approx(r.auto_coeffs)
        assert set(p.best_coeffs) <= {0.0, 0.5, 1.0} and set(p.best_coeffs_x8) <= {0.0, 0.5, 1.0}
    assert len(report.mean_gains()) == len(hr.COLUMNS)
    assert report.mean_gains()[0] == pytest.approx(evaluated.mean_psnr_gain, abs=1e-4)
    # Averaging symmetries removes part of the model's own error: the x8 ensemble gains on average.
    auto, _, auto_x8, _, _ = report.mean_gains()
    assert auto_x8 > auto

    text = report.format()
    assert "mean" in text and "grid 3 x 3" in text
    for p in report.photos:
        assert p.name in text


def test_headroom_rejects_bad_inputs(photos: Path, tmp_path: Path, compact_model: ModulatedModel) -> None:
    with pytest.raises(InputError, match="crop"):
        hr.headroom(compact_model, photos, crop=66)
    with pytest.raises(InputError, match="grid"):
        hr.headroom(compact_model, photos, crop=CROP, grid=1)
    with pytest.raises(InputError, match="max_images"):
        hr.headroom(compact_model, photos, crop=CROP, max_images=0)
    with pytest.raises(InputError, match="at least 128x128"):
        hr.headroom(compact_model, photos, crop=128)
    with pytest.raises(InputError, match="no photographs"):
        hr.headroom(compact_model, tmp_path, crop=CROP)


def test_cli(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "default", "--photos", str(photos), "--crop", str(CROP), "--grid", "2"]
    assert hr.main([*argv, "--max-images", "1", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "Headroom of default" in printed and "astronaut.png" in printed and "mean" in printed
    assert "coffee.png" not in printed
    assert hr.main([*argv, "--grid", "1"]) == 2
    assert "error: headroom: grid" in capsys.readouterr().err
