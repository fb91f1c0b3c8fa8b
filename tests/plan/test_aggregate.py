"""The plan: per-scene aggregation, drift, raw; never across a cut."""

from __future__ import annotations

import numpy as np
import pytest

from mmrealsr_video.errors import InputError
from mmrealsr_video.plan.aggregate import PlanConfig, plan_auto, scene_ranges


def _samples(frames: int, every: int, value: object) -> dict[int, tuple[float, float]]:
    return {i: value(i) for i in range(0, frames, every)}  # type: ignore[operator]


def test_scene_mode_is_the_median_per_scene() -> None:
    samples = _samples(60, 5, lambda i: (0.2, 0.1) if i < 30 else (0.7, 0.9))
    samples[10] = (1.0, 1.0)  # an odd frame (a flash): the median ignores it
    auto = plan_auto(60, [30], samples)
    assert np.all(auto[:30] == [0.2, 0.1]) and np.all(auto[30:] == [0.7, 0.9])


def test_drift_follows_change_but_not_across_cuts() -> None:
    samples = _samples(100, 4, lambda i: (i / 200, 0.5) if i < 50 else (0.9, 0.1))
    auto = plan_auto(100, [50], samples, PlanConfig(mode="drift", drift_window=9))
    assert auto[5, 0] < auto[40, 0] < 0.3  # follows the slope inside scene 0
    assert np.allclose(auto[50:], [0.9, 0.1])  # scene 1 untouched by scene 0's values
    assert np.all(np.diff(auto[:50, 0]) >= -1e-12)


def test_raw_holds_each_sample() -> None:
    samples = {0: (0.1, 0.2), 3: (0.4, 0.5), 5: (0.9, 0.9)}
    auto = plan_auto(8, [5], samples, PlanConfig(mode="raw"))
    assert auto[:, 0].tolist() == [0.1, 0.1, 0.1, 0.4, 0.4, 0.9, 0.9, 0.9]


def test_scene_without_samples_inherits() -> None:
    auto = plan_auto(30, [10, 20], {0: (0.3, 0.3), 25: (0.8, 0.8)})
    assert np.allclose(auto[10:20], 0.3)  # from the scene before
    auto = plan_auto(30, [10], {15: (0.6, 0.4)})
    assert np.allclose(auto[:10], [0.6, 0.4])  # the first scene takes the next one's


def test_bad_configuration() -> None:
    with pytest.raises(InputError, match="mode must be one of"):
        PlanConfig(mode="smooth")
    with pytest.raises(InputError, match="no frame was sampled"):
        plan_auto(10, [], {})


def test_scene_ranges() -> None:
    assert scene_ranges([3, 7], 10) == [(0, 3), (3, 7), (7, 10)]
    assert scene_ranges([], 4) == [(0, 4)]
