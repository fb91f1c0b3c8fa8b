"""The coefficient track: validation, exact JSON/CSV round trips, named errors, the plot."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.plan.plot import plot_track
from mmrealsr_video.plan.track import FRAME_FIELDS, CoefficientTrack, FrameCoefficients

AWKWARD = (0.1 + 0.2, 1 / 3, 2 / 3, 0.7 - 0.4, 1e-17, 1.0 - 2**-52)


def make_track(
    n: int = 60, cuts: tuple[int, ...] = (20, 45), fps: float = 24.0, every: int = 5, model: str = "compact"
) -> CoefficientTrack:
    """A small track: scenes split at ``cuts``, raw samples every ``every`` frames, awkward floats."""
    frames = []
    scene = 0
    for i in range(n):
        if i in cuts:
            scene += 1
        a = AWKWARD[(i + scene) % len(AWKWARD)]
        b = AWKWARD[(2 * i + 1) % len(AWKWARD)]
        sampled = i % every == 0
        frames.append(
            FrameCoefficients(
                index=i,
                pts_time=i / fps,
                scene=scene,
                raw_blur=a if sampled else None,
                raw_noise=b if sampled else None,
                auto_blur=AWKWARD[scene % len(AWKWARD)],
                auto_noise=AWKWARD[(scene + 3) % len(AWKWARD)],
                blur=a,
                noise=b,
                source="keyframe" if i % 7 == 0 else "auto",
            )
        )
    return CoefficientTrack(tuple(frames), model=model, fps=fps, time_base=Fraction(1, 24000))


def test_helpers() -> None:
    track = make_track()
    assert len(track) == 60
    assert track.scenes() == [(0, 20), (20, 45), (45, 60)]
    assert track.cuts == [20, 45]
    c = track.coefficients()
    assert c.shape == (60, 2)
    assert c[3, 0] == track.frames[3].blur and c[3, 1] == track.frames[3].noise
    raw = track.column("raw_blur")
    assert np.isnan(raw[1]) and raw[0] == track.frames[0].raw_blur
    assert track.column("scene").dtype == np.int64
    shorter = track.with_frames(track.frames[:20])
    assert len(shorter) == 20 and shorter.model == "compact" and shorter.cuts == []
    assert CoefficientTrack((), model="m").scenes() == []


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    track = make_track()
    path = track.save(tmp_path / f"track{suffix}")
    loaded = CoefficientTrack.load(path)
    assert loaded == track
    for a, b in zip(loaded.frames, track.frames, strict=True):
        for name in FRAME_FIELDS:
            assert getattr(a, name) == getattr(b, name)  # exact, not approximate
    assert loaded.time_base == Fraction(1, 24000) and loaded.fps == 24.0
    assert [p.name for p in tmp_path.iterdir()] == [f"track{suffix}"]  # no temporary left behind


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_round_trip_without_optional_metadata(tmp_path: Path, suffix: str) -> None:
    track = replace(make_track(n=3), fps=None, time_base=None)
    assert CoefficientTrack.load(track.save(tmp_path / f"t{suffix}")) == track
    empty = CoefficientTrack((), model="compact")
    assert CoefficientTrack.load(empty.save(tmp_path / f"e{suffix}")) == empty


def test_csv_layout(tmp_path: Path) -> None:
    text = make_track(n=2).save(tmp_path / "t.csv").read_text()
    lines = text.splitlines()
    assert lines[:4] == ["# schema_version: 1", "# model: compact", "# fps: 24.0", "# time_base: 1/24000"]
    assert lines[4] == ",".join(FRAME_FIELDS)
    assert lines[6].split(",")[3] == ""  # no raw sample on frame 1: empty cell


def test_save_refuses_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"t\.txt.*\.json or \.csv"):
        make_track(n=2).save(tmp_path / "t.txt")
    with pytest.raises(OutputError, match="does not exist"):
        make_track(n=2).save(tmp_path / "missing" / "t.json")


def test_frame_validation() -> None:
    base = make_track(n=1).frames[0]
    with pytest.raises(InputError, match="field 'blur': must lie in"):
        replace(base, blur=1.5)
    with pytest.raises(InputError, match="field 'raw_noise'"):
        replace(base, raw_noise=float("nan"))
    with pytest.raises(InputError, match="field 'index': expected an integer"):
        replace(base, index=1.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="field 'source'"):
        replace(base, source="manual")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"frames\[1\].*'index': must increase"):
        CoefficientTrack((base, base), model="m")
    with pytest.raises(InputError, match="schema_version 2"):
        CoefficientTrack((base,), model="m", schema_version=2)
    assert replace(base, blur=1).blur == 1.0 and isinstance(replace(base, blur=1).blur, float)


def _json_with(tmp_path: Path, edit: Callable[[dict[str, Any]], object]) -> Path:
    path = make_track(n=4).save(tmp_path / "bad.json")
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda o: o["frames"][2].pop("noise"), r"frames\[2\] \(index 2\): missing field 'noise'"),
        (lambda o: o["frames"][1].update(index="1"), r"frames\[1\]: field 'index': expected an integer"),
        (lambda o: o["frames"][1].update(colour=3), r"frames\[1\] \(index 1\): unknown field 'colour'"),
        (
            lambda o: o["frames"][3].update(auto_blur=1.25),
            r"frames\[3\] \(index 3\): field 'auto_blur': must lie",
        ),
        (lambda o: o["frames"][3].update(blur=-0.1), r"field 'blur': must lie in \[0, 1\]"),
        (lambda o: o["frames"][2].update(index=1), r"frames\[2\] \(index 1\): field 'index': must increase"),
        (lambda o: o["frames"][2].update(source="hand"), r"frames\[2\] \(index 2\): field 'source'"),
        (lambda o: o["frames"][0].update(raw_blur="0.5"), r"frames\[0\] \(index 0\): field 'raw_blur'"),
        (lambda o: o.update(schema_version=2), r"schema_version 2 is not supported"),
        (lambda o: o.pop("model"), r"missing 'model'"),
        (lambda o: o.update(extra=1), r"unknown field 'extra'"),
        (lambda o: o.update(frames={}), r"'frames' must be a list"),
        (lambda o: o.update(time_base="24000"), r"time_base"),
    ],
)
def test_invalid_json_track_names_file_frame_and_field(
    tmp_path: Path, edit: Callable[[dict[str, Any]], object], pattern: str
) -> None:
    path = _json_with(tmp_path, edit)
    with pytest.raises(InputError, match=pattern) as info:
        CoefficientTrack.load(path)
    assert str(path) in str(info.value)


def test_json_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "schema_version": 1,\n  "model": "m",\n  "frames": [\n    {"index": 0,,}\n  ]\n}\n')
    with pytest.raises(InputError, match=r"broken\.json: invalid JSON at line 5"):
        CoefficientTrack.load(path)


def _csv_with(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    path = make_track(n=4).save(tmp_path / "bad.csv")
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, count))
    return path


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("\n2,", "\n2.0,", r"line 8: field 'index': expected an integer, not '2.0'"),
        ("\n2,", "\n1,", r"line 8 \(index 1\): field 'index': must increase"),
        (",source\n", ",origin\n", r"line 5: unknown field 'origin'"),
        (",noise,source\n", ",source\n", r"line 5: missing field 'noise'"),
        ("# schema_version: 1", "# schema_version: 3", r"schema_version 3 is not supported"),
        ("# model: compact\n", "", r"missing 'model'"),
        ("# fps: 24.0", "# colour: bt709", r"line 3: unknown field 'colour'"),
        (",keyframe\n", ",keyframes\n", r"line 6 \(index 0\): field 'source'"),
    ],
)
def test_invalid_csv_track_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, pattern: str
) -> None:
    path = _csv_with(tmp_path, old, new)
    with pytest.raises(InputError, match=pattern) as info:
        CoefficientTrack.load(path)
    assert str(path) in str(info.value)


def test_csv_value_out_of_range_and_empty_cell(tmp_path: Path) -> None:
    path = make_track(n=4).save(tmp_path / "bad.csv")
    lines = path.read_text().splitlines()
    cells = lines[7].split(",")
    cells[FRAME_FIELDS.index("noise")] = "1.5"
    lines[7] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputError, match=r"bad\.csv: line 8 \(index 2\): field 'noise': must lie in \[0, 1\]"
    ):
        CoefficientTrack.load(path)
    cells[FRAME_FIELDS.index("noise")] = ""
    lines[7] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"line 8: field 'noise': empty"):
        CoefficientTrack.load(path)


def test_load_errors_for_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such track file"):
        CoefficientTrack.load(tmp_path / "absent.json")
    with pytest.raises(InputError, match=r"unknown track file type '\.yaml'"):
        CoefficientTrack.load(tmp_path / "t.yaml")


def test_plot_is_written(tmp_path: Path) -> None:
    from mmrealsr_video.plan.keyframes import apply_keyframes, parse_keyframes

    track = make_track(n=120, cuts=(40, 85))
    keys = parse_keyframes("blur: 0=auto; 60|=0.8; 100~=0.3  noise: scene 1=+0.2; -1=0.05; 500=0.5")
    out = plot_track(apply_keyframes(track, keys), tmp_path / "track.png", keyframes=keys)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert not list(tmp_path.glob(".*part"))


def test_plot_without_matplotlib_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(InputError, match=r"mmrealsr-video\[plot\]"):
        plot_track(make_track(n=3), tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()
