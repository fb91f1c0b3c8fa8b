"""Keyframes: positions, values, interpolation, scene keys, the file and string forms, errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from mmrealsr_video.errors import InputError
from mmrealsr_video.plan.coefficients import CoefficientValue, parse_coefficient
from mmrealsr_video.plan.keyframes import (
    Key,
    Keyframes,
    KeyPosition,
    apply_fixed,
    apply_keyframes,
    parse_keyframes,
    parse_position,
)
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "keyframes"


def make_track(
    n: int = 300,
    cuts: Sequence[int] = (100, 200),
    fps: float = 24.0,
    auto_blur: np.ndarray | float = 0.3,
    auto_noise: np.ndarray | float = 0.2,
    pts: np.ndarray | None = None,
) -> CoefficientTrack:
    """A track with scenes split at ``cuts``; final values equal the automatic ones."""
    ab = np.broadcast_to(np.asarray(auto_blur, np.float64), (n,))
    an = np.broadcast_to(np.asarray(auto_noise, np.float64), (n,))
    times = np.arange(n) / fps if pts is None else pts
    scene = np.searchsorted(np.asarray(cuts), np.arange(n), side="right")
    frames = tuple(
        FrameCoefficients(
            index=i,
            pts_time=float(times[i]),
            scene=int(scene[i]),
            raw_blur=float(ab[i]) if i % 10 == 0 else None,
            raw_noise=None,
            auto_blur=float(ab[i]),
            auto_noise=float(an[i]),
            blur=float(ab[i]),
            noise=float(an[i]),
        )
        for i in range(n)
    )
    return CoefficientTrack(frames, model="compact", fps=fps)


def blur_of(track: CoefficientTrack, text: str) -> np.ndarray:
    return apply_keyframes(track, parse_keyframes(text)).column("blur")


def key_frame(track: CoefficientTrack, position: str) -> int:
    """The frame a blur key lands on (the first frame of its held value 1 after a 0 at frame 0)."""
    out = apply_keyframes(track, parse_keyframes(f"blur: 0|=0; {position}|=1"))
    return int(np.flatnonzero(out.column("blur") == 1.0)[0])


# -- positions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("120", KeyPosition("frame", 120)),
        (120, KeyPosition("frame", 120)),
        (0, KeyPosition("frame", 0)),
        ("-1", KeyPosition("from_end", 1)),
        (-24, KeyPosition("from_end", 24)),
        ("4.5s", KeyPosition("time", 4.5)),
        ("4 s", KeyPosition("time", 4.0)),
        ("00:00:05.000", KeyPosition("time", 5.0)),
        ("01:05.250", KeyPosition("time", 65.25)),
        ("1:02:03.5", KeyPosition("time", 3723.5)),
        ("00:00:07", KeyPosition("time", 7.0)),
        ("scene 12", KeyPosition("scene", 12)),
        ("Scene3", KeyPosition("scene", 3)),
    ],
)
def test_position_forms(text: str | int, expected: KeyPosition) -> None:
    assert parse_position(text) == expected


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("12x", "not a position"),
        ("4.5", "not a position"),
        (4.5, "for seconds write '4.5s'"),
        ("-0", "starts at -1"),
        ("00:61:00", "below 60"),
        ("00:00:75", "below 60"),
        (True, "expected a frame number"),
        ("scene", "not a position"),
        ("scene -1", "not a position"),
        ("", "not a position"),
    ],
)
def test_bad_positions(text: object, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        parse_position(text, field="at")  # type: ignore[arg-type]


def test_positions_resolve_on_the_track() -> None:
    track = make_track(n=300, fps=24.0)
    assert key_frame(track, "120") == 120
    assert key_frame(track, "-1") == 299
    assert key_frame(track, "-24") == 276
    assert key_frame(track, "5s") == 120
    assert key_frame(track, "00:00:05.000") == 120
    assert key_frame(track, "00:05") == 120
    # Rounds to the nearest frame: up to half a frame either side of a frame's time.
    assert key_frame(track, "5.02s") == 120
    assert key_frame(track, "4.98s") == 120
    assert key_frame(track, "5.03s") == 121


def test_timecodes_follow_variable_frame_rate_and_start_offset() -> None:
    # 10 frames at 1/10 s, then 10 at 1/30 s, starting at 3.0 s (a container start offset).
    pts = 3.0 + np.concatenate([np.arange(10) / 10, 1.0 + np.arange(10) / 30])
    track = make_track(n=20, cuts=(), pts=pts)
    assert key_frame(track, "0s") == 0
    assert key_frame(track, "0.5s") == 5
    assert key_frame(track, "1.0s") == 10
    assert key_frame(track, "1.1s") == 13
    assert key_frame(track, "00:00:01.300") == 19


# -- values and interpolation -------------------------------------------------------------------


def test_value_forms() -> None:
    track = make_track(auto_blur=0.3)
    assert np.all(blur_of(track, "blur: 0=0.6") == 0.6)
    assert np.all(blur_of(track, "blur: 0=+0.1") == 0.3 + 0.1)
    assert np.all(blur_of(track, "blur: 0=-0.2") == 0.3 - 0.2)
    assert np.all(blur_of(track, "blur: 0=auto") == 0.3)


def test_hold_linear_and_smooth() -> None:
    track = make_track(n=201, cuts=())
    hold = blur_of(track, "blur: 0|=0.2; 100=0.8")
    assert np.all(hold[:100] == 0.2) and np.all(hold[100:] == 0.8)
    linear = blur_of(track, "blur: 0=0.2; 100=0.8; 200=0.8")
    assert linear[50] == pytest.approx(0.5)
    np.testing.assert_allclose(linear[:101], 0.2 + 0.006 * np.arange(101))
    assert np.all(linear[100:] == 0.8)
    smooth = blur_of(track, "blur: 0~=0.2; 100=0.8")
    # Eases in and out between two keys: below the line in the first half, above it in the second,
    # through the midpoint, monotone, never past the keys.
    assert smooth[0] == 0.2 and smooth[100] == 0.8
    assert smooth[50] == pytest.approx(0.5)
    assert smooth[25] < linear[25] and smooth[75] > linear[75]
    assert np.all(np.diff(smooth[:101]) >= 0)
    assert smooth.min() >= 0.2 and smooth.max() <= 0.8


def test_smooth_is_monotone_and_never_overshoots() -> None:
    track = make_track(n=401, cuts=())
    rising = blur_of(track, "blur: 0~=0.0; 20~=0.05; 60~=0.9; 80~=1.0; 400~=1.0")
    assert np.all(np.diff(rising) >= -1e-15)
    assert rising.min() >= 0.0 and rising.max() <= 1.0
    zigzag = blur_of(track, "blur: 0~=0.0; 10~=1.0; 20~=0.0; 30~=1.0; 300~=0.98; 310~=0.0")
    assert zigzag.min() >= 0.0 and zigzag.max() <= 1.0
    # Between every pair of keys the curve stays within the two key values.
    for a, b in [(0, 10), (10, 20), (20, 30), (30, 300), (300, 310)]:
        seg = zigzag[a : b + 1]
        lo, hi = sorted((zigzag[a], zigzag[b]))
        assert lo <= seg.min() and seg.max() <= hi
        assert np.all(np.diff(seg) >= 0) or np.all(np.diff(seg) <= 0)


def test_smooth_matches_pchip_between_inner_keys() -> None:
    track = make_track(n=101, cuts=())
    xs, ys = [0, 15, 40, 70, 100], [0.1, 0.3, 0.35, 0.9, 0.95]
    text = "blur: " + "; ".join(f"{x}~={y}" for x, y in zip(xs, ys, strict=True))
    smooth = blur_of(track, text)
    frames = np.arange(15, 71)  # segments whose both ends are inner keys use PCHIP's slopes
    np.testing.assert_allclose(smooth[frames], PchipInterpolator(xs, ys)(frames), atol=1e-12)


def test_values_are_clamped() -> None:
    track = make_track(auto_blur=0.9, auto_noise=0.05)
    out = apply_keyframes(track, parse_keyframes("blur: 0=+0.3  noise: 0~=-0.2; 100~=1; 200~=-0.5"))
    assert np.all(out.column("blur") == 1.0)
    noise = out.column("noise")
    assert noise.min() == 0.0 and noise.max() == 1.0
    assert np.all((noise >= 0) & (noise <= 1))


def test_relative_keys_follow_a_changing_auto_curve() -> None:
    n = 300
    auto = 0.4 + 0.3 * np.sin(np.arange(n) / 17.0)
    track = make_track(n=n, auto_blur=auto)
    for op in ("=", "|=", "~="):
        out = blur_of(track, f"blur: 50{op}+0.1; 250{op}+0.1")
        np.testing.assert_array_equal(out, np.clip(auto + 0.1, 0, 1))  # exactly, between and beyond
        out = blur_of(track, f"blur: 0{op}auto; 120{op}auto; 299{op}auto")
        np.testing.assert_array_equal(out, auto)
    # Between a relative and an absolute key, each key is resolved on the frame being computed.
    out = blur_of(track, "blur: 0=-0.1; 100=0.5")
    w = np.arange(101) / 100
    np.testing.assert_allclose(out[:101], (1 - w) * (auto[:101] - 0.1) + w * 0.5, atol=1e-15)
    # Smooth between two different offsets: offset eases from -0.1 to +0.2 on top of auto.
    out = blur_of(track, "blur: 100~=-0.1; 200=+0.2")
    offset = out[100:201] - auto[100:201]
    assert offset[0] == pytest.approx(-0.1) and offset[-1] == pytest.approx(0.2)
    assert np.all(np.diff(offset) >= -1e-12)


def test_edges_hold_and_unkeyed_coefficient_stays_auto() -> None:
    auto_noise = np.linspace(0.1, 0.5, 300)
    track = make_track(auto_blur=0.3, auto_noise=auto_noise)
    out = apply_keyframes(track, parse_keyframes("blur: 100=0.7; 200=0.9"))
    blur = out.column("blur")
    assert np.all(blur[:100] == 0.7) and np.all(blur[200:] == 0.9)
    np.testing.assert_array_equal(out.column("noise"), auto_noise)
    assert out.column("auto_blur").tolist() == track.column("auto_blur").tolist()
    assert [f.raw_blur for f in out.frames] == [f.raw_blur for f in track.frames]
    assert {f.source for f in out.frames} == {"keyframe"}


def test_source_marks_frames_that_depend_on_a_non_auto_key() -> None:
    track = make_track(n=300)
    out = apply_keyframes(track, parse_keyframes("blur: 0=auto; 100=auto; 150=0.8; 200|=auto; 250=0.5"))
    src = [f.source for f in out.frames]
    assert set(src[:101]) == {"auto"}  # between two auto keys: exactly auto
    assert set(src[101:200]) == {"keyframe"}  # blending with (or on) the 0.8 key
    assert set(src[200:250]) == {"auto"}  # holding an auto key
    assert set(src[250:]) == {"keyframe"}
    scene = apply_keyframes(track, parse_keyframes("noise: scene 1=0.1; scene 2=auto"))
    assert [f.source for f in scene.frames] == ["auto"] * 100 + ["keyframe"] * 100 + ["auto"] * 100


# -- scene keys ---------------------------------------------------------------------------------


def test_scene_key_covers_its_scene_and_others_interpolate_as_if_it_were_absent() -> None:
    track = make_track(n=300, cuts=(100, 200), auto_blur=0.3)
    out = blur_of(track, "blur: 0=0.0; 299=1.0; scene 1=+0.5")
    without = blur_of(track, "blur: 0=0.0; 299=1.0")
    assert np.all(out[100:200] == 0.8)
    np.testing.assert_array_equal(out[:100], without[:100])
    np.testing.assert_array_equal(out[200:], without[200:])
    alone = blur_of(track, "blur: scene 2=0.9")
    assert np.all(alone[200:] == 0.9) and np.all(alone[:200] == 0.3)


# -- keys outside the track ---------------------------------------------------------------------


def test_keys_outside_the_track_are_warned_about_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    track = make_track(n=300)
    text = "blur: 0=0.2; 500=0.9; -400=0.9; 60s=0.9; 00:00:12.480=0.9; scene 9=0.9  noise: scene 7=0.1"
    with caplog.at_level(logging.WARNING, logger="mmrealsr_video.plan.keyframes"):
        out = apply_keyframes(track, parse_keyframes(text))
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 6, messages
    assert any("blur key #2 (at 500): frame 500 is past the end" in m for m in messages)
    assert any("key #3 (at -400)" in m and "before the first frame" in m for m in messages)
    assert any("key #4 (at 60.0s)" in m and "past the end" in m for m in messages)
    assert any("key #5" in m for m in messages)  # 12.48 s is just past the last frame's half
    assert any("no scene 9" in m for m in messages)
    assert any("noise key #1" in m and "no scene 7" in m for m in messages)
    assert all("ignored" in m and m.startswith("keyframe string") for m in messages)
    assert np.all(out.column("blur") == 0.2)
    np.testing.assert_array_equal(out.column("noise"), track.column("auto_noise"))
    # Just inside the end: the last frame's time plus a little less than half a frame.
    assert key_frame(track, "12.47s") == 299


def test_keys_on_the_same_frame_warn_and_the_later_wins(caplog: pytest.LogCaptureFixture) -> None:
    track = make_track(n=300)
    with caplog.at_level(logging.WARNING):
        out = blur_of(track, "blur: 120=0.1; 5s=0.9")
    assert "fall on the same frame 120" in caplog.text
    assert np.all(out == 0.9)


# -- the string form ----------------------------------------------------------------------------


def test_string_grammar() -> None:
    kf = parse_keyframes(" blur: 0=auto; 00:00:05.000|=0.6 ;300~=0.2;  NOISE:scene 3=+0.1; -1 = -0.05; ")
    assert kf.blur == (
        Key(KeyPosition("frame", 0), CoefficientValue("auto"), "linear"),
        Key(KeyPosition("time", 5.0), CoefficientValue("absolute", 0.6), "hold"),
        Key(KeyPosition("frame", 300), CoefficientValue("absolute", 0.2), "smooth"),
    )
    assert kf.noise == (
        Key(KeyPosition("scene", 3), CoefficientValue("relative", 0.1)),
        Key(KeyPosition("from_end", 1), CoefficientValue("relative", -0.05)),
    )
    assert parse_keyframes("noise: 1:00:00=0.5").noise[0].position == KeyPosition("time", 3600.0)
    assert parse_keyframes("noise: 10=0.5").blur == ()


def test_string_round_trips_through_str() -> None:
    kf = parse_keyframes("blur: 0=auto; 5s|=0.1234567890123; 300~=-0.0  noise: scene 2=+0.3; -24~=0.2")
    assert parse_keyframes(str(kf)) == kf
    assert str(kf) == "blur: 0=auto; 5.0s|=0.1234567890123; 300~=-0.0  noise: scene 2=+0.3; -24~=0.2"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "empty"),
        ("0=auto", "keys must follow 'blur:' or 'noise:'"),
        ("blur: 0=auto; 12x=0.5", r"blur item #2 \('12x=0.5'\): position: '12x' is not a position"),
        ("blur: 0=auto  noise: 5s=lots", r"noise item #1 \('5s=lots'\): value: expected a number"),
        ("blur: 0=1.5", r"blur item #1 .*value: .*must lie in \[0, 1\]"),
        ("blur: 0=0.5; 120 0.6", r"blur item #2 .*expected POSITION=VALUE"),
        ("blur: 0^=0.5", r"blur item #1 .*not a position"),
        ("blur: 0==0.5", r"blur item #1 .*expected POSITION=VALUE"),
        ("blur: scene 2|=0.5", r"blur item #1 .*a scene key covers its scene"),
        ("blur: 0=0.1; 0=0.2", r"blur item #2: position '0' is already keyed by item #1"),
        ("blur: 0=0.1  blur: 5=0.2", r"'blur:' given twice"),
        ("blur: 0=0.1  gamma: 5=0.2", r"blur item #1 .*'gamma' is not a coefficient"),
        ("blur: 0=0.1 5=0.2", r"blur item #1 .*separate keys with ';'"),
    ],
)
def test_bad_strings_name_the_item(text: str, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern) as info:
        parse_keyframes(text)
    assert str(info.value).startswith("keyframe string")


# -- files --------------------------------------------------------------------------------------

TOML = """\
[[blur]]
at = 0
value = "auto"

[[blur]]
at = "00:00:05.000"
value = 0.6
interp = "hold"

[[blur]]
at = 300
value = 0.2
interp = "smooth"

[[noise]]
at = "scene 1"
value = "+0.1"

[[noise]]
at = -1
value = "-0.05"
"""

STRING = "blur: 0=auto; 00:00:05.000|=0.6; 300~=0.2  noise: scene 1=+0.1; -1=-0.05"

JSON = {
    "blur": [
        {"at": 0, "value": "auto"},
        {"at": "00:00:05.000", "value": 0.6, "interp": "hold"},
        {"at": 300, "value": 0.2, "interp": "smooth"},
    ],
    "noise": [{"at": "scene 1", "value": "+0.1"}, {"at": -1, "value": "-0.05"}],
}


def test_string_toml_and_json_are_the_same(tmp_path: Path) -> None:
    (tmp_path / "k.toml").write_text(TOML)
    (tmp_path / "k.json").write_text(json.dumps(JSON, indent=2))
    forms = [
        parse_keyframes(STRING),
        parse_keyframes(tmp_path / "k.toml"),
        parse_keyframes(str(tmp_path / "k.json")),
    ]
    assert forms[0] == forms[1] == forms[2]
    assert forms[1].origin == str(tmp_path / "k.toml")
    auto = 0.2 + 0.1 * np.cos(np.arange(400) / 30)
    track = make_track(n=400, auto_blur=auto, auto_noise=auto[::-1].copy())
    results = [apply_keyframes(track, kf) for kf in forms]
    assert results[0] == results[1] == results[2]


def test_examples_parse_and_agree() -> None:
    files = sorted(EXAMPLES.glob("*.toml")) + sorted(EXAMPLES.glob("*.json"))
    assert files
    parsed = {p.name: parse_keyframes(p) for p in files}
    for p in files:
        twin = p.with_suffix(".json" if p.suffix == ".toml" else ".toml")
        if twin.exists():
            assert parsed[p.name] == parsed[twin.name]


def _toml_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        parse_keyframes(path)
    message = str(info.value)
    assert message.startswith(str(path))
    return message


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('[[blur]]\nat = 0\nvalue = "auto"\n[[blur]\nat = 3\n', r"invalid TOML: .*line 4"),
        (
            '[[blur]]\nat = 0\nvalue = 0.5\ninterpolation = "hold"\n',
            r"blur key #1: unknown field 'interpolation'",
        ),
        (
            '[[blur]]\nat = 0\nvalue = 0.5\n[[noise]]\nat = 3\nvalue = "lots"\n',
            r"noise key #1: field 'value'",
        ),
        ("[[blur]]\nat = 0\nvalue = 1.5\n", r"blur key #1: field 'value': .*\[0, 1\]"),
        ('[[blur]]\nat = "soon"\nvalue = 0.5\n', r"blur key #1: field 'at': 'soon' is not a position"),
        ("[[blur]]\nat = 4.5\nvalue = 0.5\n", r"blur key #1: field 'at': .*write '4.5s'"),
        (
            '[[blur]]\nat = 0\nvalue = 0.5\ninterp = "cubic"\n',
            r"blur key #1: field 'interp': expected one of",
        ),
        ("[[blur]]\nat = 0\nvalue = [0.5]\n", r"blur key #1: field 'value': expected a number"),
        ("[[blur]]\nat = 0\nvalue = true\n", r"blur key #1: field 'value'"),
        ("[[blur]]\nvalue = 0.5\n", r"blur key #1: missing field 'at'"),
        ("[blur]\nat = 0\nvalue = 0.5\n", r"'blur' must be a list of keys \(\[\[blur\]\]\)"),
        ("[[gamma]]\nat = 0\nvalue = 0.5\n", r"unknown field 'gamma'"),
        (
            '[[noise]]\nat = "scene 2"\nvalue = 0.5\ninterp = "hold"\n',
            r"noise key #1: field 'interp': a scene key",
        ),
        (
            "[[blur]]\nat = 3\nvalue = 0.5\n[[blur]]\nat = 3\nvalue = 0.6\n",
            r"blur key #2: .*already keyed by key #1",
        ),
    ],
)
def test_bad_toml_files(tmp_path: Path, text: str, pattern: str) -> None:
    import re

    assert re.search(pattern, _toml_error(tmp_path, text))


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ('{"blur": [{"at": 0, "value": 0.5},\n  {"at": 3 "value": 0.6}]}', r"invalid JSON at line 2"),
        ('{"blur": [{"at": 0, "value": 0.5, "ease": 1}]}', r"blur key #1: unknown field 'ease'"),
        ('{"blur": [{"at": null, "value": 0.5}]}', r"blur key #1: field 'at'"),
        ('{"noise": {"at": 0, "value": 0.5}}', r"'noise' must be a list"),
        ('[{"at": 0, "value": 0.5}]', r"expected an object"),
        ('{"blur": [0.5]}', r"blur key #1: expected a table"),
    ],
)
def test_bad_json_files(tmp_path: Path, content: str, pattern: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(InputError, match=pattern) as info:
        parse_keyframes(path)
    assert str(info.value).startswith(str(path))


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such keyframe file"):
        parse_keyframes(tmp_path / "absent.toml")
    (tmp_path / "keys.txt").write_text("blur: 0=0.5")
    with pytest.raises(InputError, match="unknown keyframe file type"):
        parse_keyframes(tmp_path / "keys.txt")
    with pytest.raises(InputError, match="unknown keyframe file type"):
        parse_keyframes(str(tmp_path / "keys.txt"))


# -- fixed values -------------------------------------------------------------------------------


def test_apply_fixed() -> None:
    auto = np.linspace(0.0, 1.0, 300)
    track = make_track(auto_blur=auto, auto_noise=0.4)
    assert apply_fixed(track, None, parse_coefficient("auto")) is track
    out = apply_fixed(track, parse_coefficient("0.6"), None)
    assert np.all(out.column("blur") == 0.6) and np.all(out.column("noise") == 0.4)
    assert {f.source for f in out.frames} == {"fixed"}
    out = apply_fixed(track, parse_coefficient("+0.1"), parse_coefficient("-0.5"))
    np.testing.assert_array_equal(out.column("blur"), np.clip(auto + 0.1, 0, 1))
    assert np.all(out.column("noise") == 0.0)
    # A coefficient left alone keeps what keyframes gave it.
    keyed = apply_keyframes(track, parse_keyframes("noise: 0|=0.9"))
    out = apply_fixed(keyed, parse_coefficient("0.2"), None)
    assert np.all(out.column("noise") == 0.9) and np.all(out.column("blur") == 0.2)
    with pytest.raises(InputError, match="apply_fixed: blur"):
        apply_fixed(track, 0.5, None)  # type: ignore[arg-type]


def test_keyframes_dataclass_validation() -> None:
    with pytest.raises(InputError, match="interp"):
        Key(KeyPosition("frame", 0), CoefficientValue("auto"), "cubic")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="from_end position must be >= 1"):
        KeyPosition("from_end", 0)
    with pytest.raises(InputError, match="expected a Key"):
        Keyframes(blur=("0=0.5",))  # type: ignore[arg-type]
