"""Scene-cut detection on real clips made in the test: exact hard cuts, flashes, noise, pans."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrealsr_video.analysis.scenes import SceneDetector, SceneDetectorConfig, normalize_cuts
from mmrealsr_video.errors import InputError
from mmrealsr_video.io.source import decoded_frames, open_source
from tests.media import Scene, photos, write_clip


def _detect(path: Path, method: str, min_len: int = 12) -> list[int]:
    det = SceneDetector(SceneDetectorConfig(method=method, min_scene_len=min_len), fps=24)
    found: list[int] = []
    for f in decoded_frames(open_source(path)):
        found += det.process_frame(f.index, f.rgb)
    return found + det.post_process()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    ph = photos()
    lengths = [30, 20, 40, 25, 30, 14, 30]
    blurs = [0.5, 2, 1, 3, 0.2, 1, 0]
    noises = [0, 20, 5, 30, 10, 0, 40]
    scenes = [
        Scene(ph[i % 5], lengths[i], blurs[i], noises[i], flash_at=10 if i in (2, 6) else None)
        for i in range(7)
    ]
    path = tmp_path_factory.mktemp("scenes") / "cuts.mkv"
    return path, write_clip(path, scenes, size=(256, 144))


@pytest.mark.parametrize("method", ["content", "adaptive"])
def test_hard_cuts_exact_despite_noise_flashes_and_pans(clip: tuple[Path, list[int]], method: str) -> None:
    path, cuts = clip
    assert _detect(path, method) == cuts


def test_min_scene_len_merges_short_scenes(tmp_path: Path) -> None:
    ph = photos()
    scenes = [Scene(ph[0], 20), Scene(ph[1], 5), Scene(ph[2], 20)]
    path = tmp_path / "short.mkv"
    cuts = write_clip(path, scenes)
    assert cuts == [20, 25]
    assert _detect(path, "content", min_len=12) == [20]  # the 5-frame scene joins the scene before
    assert _detect(path, "content", min_len=3) == [20, 25]


def test_frames_must_arrive_in_order() -> None:
    import numpy as np

    det = SceneDetector()
    det.process_frame(0, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="in order"):
        det.process_frame(2, np.zeros((8, 8, 3), np.uint8))


def test_normalize_external_cuts() -> None:
    assert normalize_cuts([30, 0, 10, 10, 500, 12], 100, min_scene_len=5) == [10, 30]
    with pytest.raises(InputError, match=r"cuts\.txt: entry 0"):
        normalize_cuts(["x"], 10, source="cuts.txt")  # type: ignore[list-item]
    with pytest.raises(InputError, match="method must be one of"):
        SceneDetectorConfig(method="magic")
