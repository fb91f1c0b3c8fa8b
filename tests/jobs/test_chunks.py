"""Chunk planning: cut at scene cuts only (long scenes split evenly), bounded, independent of how
the job is run."""

from __future__ import annotations

import itertools

import pytest

from mmrealsr_video.errors import SettingsError
from mmrealsr_video.jobs.chunks import plan_chunks
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients


def _track(scene_lengths: list[int], first: int = 0) -> CoefficientTrack:
    frames = []
    index = first
    for scene, length in enumerate(scene_lengths):
        for _ in range(length):
            frames.append(
                FrameCoefficients(
                    index=index,
                    pts_time=index / 24,
                    scene=scene,
                    raw_blur=None,
                    raw_noise=None,
                    auto_blur=0.5,
                    auto_noise=0.5,
                    blur=0.5,
                    noise=0.5,
                    source="auto",
                )
            )
            index += 1
    return CoefficientTrack(tuple(frames), model="default", fps=24.0)


def test_chunks_cover_every_frame_once_and_cut_only_at_scene_cuts() -> None:
    track = _track([10, 3, 25, 4, 4, 30])
    chunks = plan_chunks(track, 12)
    assert chunks[0].first == 0 and chunks[-1].end == len(track)
    assert all(a.end == b.first for a, b in itertools.pairwise(chunks))
    assert all(1 <= c.frames <= 12 for c in chunks)
    cuts = set(track.cuts)
    scene_of = {f.index: f.scene for f in track.frames}
    for c in chunks[1:]:
        # A boundary is a scene cut, or lies inside a scene longer than the limit.
        assert c.first in cuts or sum(1 for f in track.frames if f.scene == scene_of[c.first]) > 12
    assert [c.number for c in chunks] == list(range(len(chunks)))


def test_short_scenes_are_grouped_and_long_ones_split_evenly() -> None:
    chunks = plan_chunks(_track([3, 3, 3, 3, 100]), 10)
    assert [(c.first, c.end) for c in chunks[:2]] == [(0, 9), (9, 12)]
    long = [c.frames for c in chunks[2:]]
    assert sum(long) == 100 and max(long) - min(long) <= 1 and max(long) <= 10


def test_a_track_of_part_of_a_video_keeps_source_frame_numbers() -> None:
    chunks = plan_chunks(_track([5, 5], first=100), 6)
    assert [(c.first, c.end, c.start) for c in chunks] == [(100, 105, 0), (105, 110, 5)]


def test_the_plan_is_a_function_of_the_track_and_the_limit() -> None:
    track = _track([7, 40, 2, 2, 19])
    assert plan_chunks(track, 9) == plan_chunks(track, 9)
    assert plan_chunks(track, 1000) == plan_chunks(track, 1000)
    assert len(plan_chunks(track, 1000)) == 1
    with pytest.raises(SettingsError, match="chunk_frames must be at least 1"):
        plan_chunks(track, 0)


def test_a_feature_film_plans_quickly() -> None:
    """172,800 frames (2 h at 24 fps) in scenes of 3 to 400 frames."""
    import random

    rng = random.Random(0)
    lengths, total = [], 0
    while total < 172_800:
        n = min(rng.randint(3, 400), 172_800 - total)
        lengths.append(n)
        total += n
    chunks = plan_chunks(_track(lengths))
    assert sum(c.frames for c in chunks) == 172_800
    assert all(c.frames <= 480 for c in chunks)
