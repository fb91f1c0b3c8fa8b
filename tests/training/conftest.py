"""Fixtures shared by the evaluation tests: small held-out photographs made here, a small compact model."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch
from skimage import data as skdata

from mmrealsr_video import ModulatedModel, load_model
from mmrealsr_video.models.compact import CompactConfig, CompactNet

#: The photographs of the ``photos`` fixture (scikit-image names), written as ``NAME.png``.
PHOTO_NAMES = ("astronaut", "coffee", "chelsea")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three textured 96x96 photographs and one too small for a 64-px crop."""
    d = tmp_path_factory.mktemp("photos")
    for name in PHOTO_NAMES:
        rgb = getattr(skdata, name)()
        h, w = rgb.shape[:2]
        s = min(h, w) // 2
        centre = rgb[(h - s) // 2 : (h + s) // 2, (w - s) // 2 : (w + s) // 2]
        small = cv2.resize(centre, (96, 96), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(d / f"{name}.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    tiny = cv2.resize(skdata.rocket(), (40, 30), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(d / "zz_tiny.jpg"), tiny)
    (d / "notes.txt").write_text("not a photograph")
    return d


@pytest.fixture(scope="module")
def compact_model() -> ModulatedModel:
    """A random 8-channel, 2-conv compact model whose coefficients matter."""
    torch.manual_seed(0)
    sd = CompactNet(CompactConfig(num_feat=8, num_conv=2)).state_dict()
    # The modulation starts at zero; make the coefficients matter, as after training.
    sd["modulation.weight"] = torch.randn_like(sd["modulation.weight"]) * 0.1
    return load_model(sd)
