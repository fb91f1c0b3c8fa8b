"""The VapourSynth filter (vs_plugin/, imported as ``vsmmrealsr``): real ``vspipe`` on the example
scripts with a real source filter (BestSource) on clips made here, compared frame by frame with the
CLI; random access; props; bad inputs."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")
vsmmrealsr = pytest.importorskip("vsmmrealsr")

from mmrealsr_video import analyze  # noqa: E402
from mmrealsr_video.plan.track import CoefficientTrack  # noqa: E402
from tests.media import Scene, photos, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "vapoursynth"
VSPIPE = Path(sys.executable).with_name("vspipe")
CLI = Path(sys.executable).with_name("mmrealsr-video")
core = vs.core

pytestmark = pytest.mark.skipif(
    not hasattr(core, "bs") or not VSPIPE.exists(), reason="vapoursynth-bestsource and vspipe needed"
)


def planes_of_file(path: Path) -> list[list[np.ndarray]]:
    """Every frame's planes (line padding removed) of a video file or y4m stream."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            planes = []
            for p in f.planes:
                a = np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)
                planes.append(a[:, : p.width * (2 if "p10" in f.format.name or "16" in f.format.name else 1)])
            out.append(planes)
    return out


def planes_of_frame(f: vs.VideoFrame) -> list[np.ndarray]:
    return [np.array(f[p], copy=True) for p in range(f.format.num_planes)]


def vspipe(script: Path, out: Path, **args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(VSPIPE), "-c", "y4m"]
    for k, v in args.items():
        cmd += ["-a", f"{k}={v}"]
    cmd += [str(script), str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def clip3(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """Three scenes of different photographs and degradations, 40 frames, 64x48, BT.709 limited."""
    path = tmp_path_factory.mktemp("vs") / "three.mkv"
    p = photos()
    scenes = [Scene(p[0], 14, 0.0, 4.0), Scene(p[1], 13, 2.0, 0.0), Scene(p[2], 13, 0.5, 12.0)]
    return path, write_clip(path, scenes, size=(64, 48), pix_fmt="yuv420p", colour=("ITU709", "MPEG"))


def source(path: Path) -> vs.VideoNode:
    return core.bs.VideoSource(str(path))


# --- vspipe against the CLI ----------------------------------------------------------------------


@pytest.mark.slow
def test_vspipe_matches_the_cli_for_the_same_track(clip3: tuple[Path, list[int]], tmp_path: Path) -> None:
    path, cuts = clip3
    cli_out, track = tmp_path / "cli.mkv", tmp_path / "track.json"
    r = subprocess.run(
        [
            str(CLI),
            "restore",
            str(path),
            str(cli_out),
            "--codec",
            "ffv1",
            "--save-track",
            str(track),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    # The CLI found the three scenes and wrote one record per frame.
    saved = CoefficientTrack.load(track)
    assert len(saved) == 40 and [a for a, _ in saved.scenes()] == [0, *cuts]

    y4m = tmp_path / "vs.y4m"
    r = vspipe(EXAMPLES / "two_pass.vpy", y4m, input=str(path), track=str(track))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # vspipe owns stdout
    ours, theirs = planes_of_file(y4m), planes_of_file(cli_out)
    assert len(ours) == len(theirs) == 40
    assert ours[0][0].shape == (192, 256)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for pa, pb in zip(a, b, strict=True):
            assert np.array_equal(pa, pb), f"frame {k} differs from the CLI's"


@pytest.mark.slow
def test_auto_example_equals_the_two_pass_analysis(clip3: tuple[Path, list[int]], tmp_path: Path) -> None:
    path, _ = clip3
    # Pass 1 of two_pass.vpy writes the track; it must equal the CLI's analysis of the same file.
    track = tmp_path / "vs.track.json"
    a = vspipe(EXAMPLES / "two_pass.vpy", tmp_path / "two.y4m", input=str(path), track=str(track))
    assert a.returncode == 0, a.stderr
    ours, cli = CoefficientTrack.load(track), analyze(path)
    assert [r.scene for r in ours.frames] == [r.scene for r in cli.frames]
    np.testing.assert_allclose(ours.column("auto_blur"), cli.column("auto_blur"), atol=1e-6)
    np.testing.assert_allclose(ours.column("auto_noise"), cli.column("auto_noise"), atol=1e-6)
    # The auto example analyses inside the filter: the same frames as restoring from that track.
    b = vspipe(EXAMPLES / "restore_auto.vpy", tmp_path / "auto.y4m", input=str(path))
    assert b.returncode == 0, b.stderr
    for x, y in zip(planes_of_file(tmp_path / "auto.y4m"), planes_of_file(tmp_path / "two.y4m"), strict=True):
        for px, py in zip(x, y, strict=True):
            assert np.array_equal(px, py)


@pytest.mark.slow
def test_untagged_file_restores_as_the_cli_restores_it(tmp_path: Path) -> None:
    """An untagged SD file (no matrix, no range, the common case for old footage) straight from
    BestSource restores through vspipe, automatic coefficients, with the CLI's frames."""
    path = tmp_path / "untagged.mkv"
    p = photos()
    write_clip(path, [Scene(p[3], 10, 1.0, 6.0), Scene(p[4], 8, 0.0, 0.0)], size=(64, 48), pix_fmt="yuv420p")
    first = source(path).get_frame(0).props
    assert first.get("_Matrix", 2) == 2  # untagged, as BestSource reads it
    cli_out = tmp_path / "cli.mkv"
    r = subprocess.run(
        [str(CLI), "restore", str(path), str(cli_out), "--codec", "ffv1", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    y4m = tmp_path / "vs.y4m"
    r = vspipe(EXAMPLES / "restore_auto.vpy", y4m, input=str(path))
    assert r.returncode == 0, r.stderr
    ours, theirs = planes_of_file(y4m), planes_of_file(cli_out)
    assert len(ours) == len(theirs) == 18
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for pa, pb in zip(a, b, strict=True):
            assert np.array_equal(pa, pb), f"frame {k} differs from the CLI's"


def test_analyze_equals_the_python_api(clip3: tuple[Path, list[int]]) -> None:
    """vsmmrealsr.analyze gives the track mmrealsr_video.analyze gives for the same file (float32
    estimator on both fronts)."""
    path, _ = clip3
    ours = vsmmrealsr.analyze(source(path), device_index=None)
    theirs = analyze(path)
    assert [r.scene for r in ours.frames] == [r.scene for r in theirs.frames]
    for name in ("raw_blur", "raw_noise", "auto_blur", "auto_noise", "blur", "noise"):
        np.testing.assert_array_equal(ours.column(name), theirs.column(name))


@pytest.mark.slow
def test_keyframes_example_applies_the_keys(clip3: tuple[Path, list[int]], tmp_path: Path) -> None:
    path, _ = clip3
    keys = "blur: 0|=auto; 10|=0.7; 20=auto  noise: 0=+0.1"
    clip = vsmmrealsr.mmrealsr(source(path), keyframes=keys)
    props = [clip.get_frame(n).props for n in range(40)]
    assert all(p["MMRealSR_Blur"] == pytest.approx(0.7) for p in props[10:20])
    assert all(p["MMRealSR_Blur"] == pytest.approx(p["MMRealSR_BlurAuto"]) for p in props[:10])
    for p in props:
        assert p["MMRealSR_Noise"] == pytest.approx(min(1.0, p["MMRealSR_NoiseAuto"] + 0.1))
    r = vspipe(EXAMPLES / "restore_keyframes.vpy", tmp_path / "k.y4m", input=str(path), keyframes=keys)
    assert r.returncode == 0, r.stderr
    assert len(planes_of_file(tmp_path / "k.y4m")) == 40


# --- random access, props ------------------------------------------------------------------------


def test_random_access_equals_sequential(clip3: tuple[Path, list[int]]) -> None:
    path, cuts = clip3
    sequential = vsmmrealsr.mmrealsr(source(path), batch_size=2)
    seq = [sequential.get_frame(n) for n in range(40)]
    order = list(range(40))
    random.Random(7).shuffle(order)
    shuffled = vsmmrealsr.mmrealsr(source(path), batch_size=2)  # a fresh filter: analysis from scratch
    futures = {n: shuffled.get_frame_async(n) for n in order}  # all at once, from VapourSynth's threads
    for n in order:
        f = futures[n].result()
        for a, b in zip(planes_of_frame(f), planes_of_frame(seq[n]), strict=True):
            assert np.array_equal(a, b), f"frame {n}"
        for key in ("MMRealSR_Blur", "MMRealSR_Noise", "MMRealSR_Scene"):
            assert f.props[key] == seq[n].props[key]
    scenes = [f.props["MMRealSR_Scene"] for f in seq]
    assert [n for n in range(1, 40) if scenes[n] != scenes[n - 1]] == cuts


def test_props_on_every_frame(clip3: tuple[Path, list[int]], tmp_path: Path) -> None:
    path, _ = clip3
    track = analyze(path)
    track.save(tmp_path / "t.json")
    # FFV1 in Matroska leaves BestSource without frame durations: set them as players expect them.
    src = core.std.SetFrameProps(source(path), MyNote="kept", _DurationNum=1, _DurationDen=24)
    clip = vsmmrealsr.mmrealsr(src, track=tmp_path / "t.json", noise=0.25)
    assert (clip.width, clip.height, clip.format.id) == (256, 192, vs.YUV420P8)
    for n in range(40):
        f, s, rec = clip.get_frame(n), src.get_frame(n), track.frames[n]
        for key in s.props:
            if key not in ("_Matrix", "_Range"):
                assert f.props[key] == s.props[key], key
        assert f.props["MyNote"] == b"kept" or f.props["MyNote"] == "kept"
        assert f.props["_Matrix"] == 1 and int(f.props["_Range"]) == int(vs.RANGE_LIMITED)
        assert (f.props["_DurationNum"], f.props["_DurationDen"]) == (1, 24)
        assert f.props["MMRealSR_Blur"] == pytest.approx(rec.blur)
        assert f.props["MMRealSR_Noise"] == pytest.approx(0.25)
        assert f.props["MMRealSR_BlurAuto"] == pytest.approx(rec.auto_blur)
        assert f.props["MMRealSR_NoiseAuto"] == pytest.approx(rec.auto_noise)
        assert f.props["MMRealSR_Scene"] == rec.scene


def test_upstream_scene_change_props_are_used(clip3: tuple[Path, list[int]]) -> None:
    path, _ = clip3
    marks = {7: "_SceneChangePrev", 24: "_SceneChangeNext"}  # cuts at 7 and 25, not the clip's own

    def mark(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        out.props["_SceneChangePrev"] = int(marks.get(n) == "_SceneChangePrev")
        out.props["_SceneChangeNext"] = int(marks.get(n) == "_SceneChangeNext")
        return out

    src = source(path)
    marked = core.std.ModifyFrame(src, src, mark)
    clip = vsmmrealsr.mmrealsr(marked, scenes="auto")
    scenes = [clip.get_frame(n).props["MMRealSR_Scene"] for n in range(40)]
    assert [n for n in range(1, 40) if scenes[n] != scenes[n - 1]] == [7, 25]
    listed = vsmmrealsr.mmrealsr(src, scenes=[5])
    assert [listed.get_frame(n).props["MMRealSR_Scene"] for n in (4, 5, 39)] == [0, 1, 1]


def test_float_rgb_and_format_conversion(clip3: tuple[Path, list[int]]) -> None:
    path, _ = clip3
    src = source(path)
    yuv = vsmmrealsr.mmrealsr(src, track=None, blur=0.5, noise=0.5, format=vs.RGBS)
    rgbs = core.resize.Bicubic(src, format=vs.RGBS, matrix_in=1)
    direct = vsmmrealsr.mmrealsr(rgbs, blur=0.5, noise=0.5)
    assert direct.format.id == vs.RGBS and yuv.format.id == vs.RGBS
    a, b = planes_of_frame(yuv.get_frame(3)), planes_of_frame(direct.get_frame(3))
    assert a[0].dtype == np.float32 and a[0].shape == (192, 256)
    assert all(p.min() >= 0.0 and p.max() <= 1.0 for p in a)
    # Two conversions to RGB (ours with linear chroma, zimg's bicubic): close, not equal.
    assert max(float(np.abs(x - y).mean()) for x, y in zip(a, b, strict=True)) < 0.02
    assert yuv.get_frame(3).props["_Matrix"] == 0
    half = vsmmrealsr.mmrealsr(src, blur=0.5, noise=0.5, scale=2)
    assert (half.width, half.height) == (128, 96)
    rgbh = vsmmrealsr.mmrealsr(core.resize.Bicubic(src, format=vs.RGBH, matrix_in=1), blur=0.5, noise=0.5)
    h = planes_of_frame(rgbh.get_frame(3))
    assert rgbh.format.id == vs.RGBH and h[0].dtype == np.float16
    assert max(float(np.abs(x.astype(np.float32) - y).mean()) for x, y in zip(h, b, strict=True)) < 1e-3
    gray = vsmmrealsr.mmrealsr(core.std.ShufflePlanes(src, 0, vs.GRAY), blur=0.5, noise=0.5)
    g = planes_of_frame(gray.get_frame(3))
    assert gray.format.id == vs.GRAY8 and len(g) == 1 and g[0].shape == (192, 256)


# --- bad input -----------------------------------------------------------------------------------


def test_bad_inputs_name_the_filter() -> None:
    variable = core.std.Splice(
        [
            core.std.BlankClip(width=32, height=32, length=2),
            core.std.BlankClip(width=48, height=32, length=2),
        ],
        mismatch=True,
    )
    with pytest.raises(vs.Error, match=r"mmrealsr: .*variable format or size"):
        vsmmrealsr.mmrealsr(variable)
    with pytest.raises(vs.Error, match=r"mmrealsr: format YUV410P8 is not supported"):
        vsmmrealsr.mmrealsr(core.std.BlankClip(format=vs.YUV410P8, width=32, height=32, length=2))
    with pytest.raises(vs.Error, match=r"mmrealsr: clip must be a vs.VideoNode"):
        vsmmrealsr.mmrealsr("not a clip")
    with pytest.raises(vs.Error, match=r"mmrealsr: blur: expected a number"):
        vsmmrealsr.mmrealsr(core.std.BlankClip(format=vs.RGB24, length=2), blur="sharp")
    untagged = core.std.BlankClip(format=vs.YUV420P8, width=32, height=32, length=2, color=[60, 120, 140])
    wrong_type = core.std.SetFrameProps(untagged, _Matrix=1.0)
    with pytest.raises(vs.Error, match=r"mmrealsr: frame prop _Matrix holds float 1\.0, expected int"):
        vsmmrealsr.mmrealsr(wrong_type, blur=0.5, noise=0.5, scenes="none").get_frame(0)
    with pytest.raises(vs.Error, match=r"mmrealsr: scenes must be one of"):
        vsmmrealsr.mmrealsr(untagged, scenes="sometimes")


def test_untagged_clips_get_the_cli_defaults() -> None:
    """No _Matrix (or _Matrix=2) and no range: BT.601 limited below 720 lines, as the CLI reads an
    untagged file; BT.709 from 720 lines up."""
    for height, matrix in ((32, 6), (720, 1)):
        untagged = core.std.BlankClip(format=vs.YUV420P8, width=32, height=height, length=1, color=[60, 120, 140])
        unspecified = core.std.SetFrameProps(untagged, _Matrix=2)
        tagged = core.std.SetFrameProps(untagged, _Matrix=matrix, _Range=int(vs.RANGE_LIMITED))
        out = [
            vsmmrealsr.mmrealsr(c, blur=0.5, noise=0.5, scenes="none", scale=0.5).get_frame(0)
            for c in (untagged, unspecified, tagged)
        ]
        for f in out[:2]:
            assert all(np.array_equal(np.asarray(f[p]), np.asarray(out[2][p])) for p in range(3))
            assert f.props["_Matrix"] == matrix


def test_track_of_another_clip_is_refused(clip3: tuple[Path, list[int]], tmp_path: Path) -> None:
    path, _ = clip3
    track = analyze(path)
    short = CoefficientTrack(track.frames[:10], model=track.model, fps=track.fps)
    short.save(tmp_path / "short.json")
    with pytest.raises(vs.Error, match=r"mmrealsr: the track has 10 frames but the clip has 40"):
        vsmmrealsr.mmrealsr(source(path), track=tmp_path / "short.json")
    (tmp_path / "broken.json").write_text(json.dumps({"frames": "nope"}))
    with pytest.raises(vs.Error, match=r"mmrealsr: .*broken\.json"):
        vsmmrealsr.mmrealsr(source(path), track=tmp_path / "broken.json")


def test_attached_alpha_is_not_copied() -> None:
    src = core.std.BlankClip(format=vs.RGB24, width=32, height=24, length=2, color=[90, 140, 60])
    alpha = core.std.BlankClip(format=vs.GRAY8, width=32, height=24, length=2, color=[255])

    def attach(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = f[0].copy()
        out.props["_Alpha"] = f[1]
        return out

    with_alpha = core.std.ModifyFrame(src, [src, alpha], attach)
    assert "_Alpha" in with_alpha.get_frame(0).props
    out = vsmmrealsr.mmrealsr(with_alpha, blur=0.5, noise=0.5, scenes="none").get_frame(1)
    assert "_Alpha" not in out.props and out.props["MMRealSR_Scene"] == 0
    assert (out.width, out.height) == (128, 96)


@pytest.mark.gpu
def test_cuda_streams_give_the_same_frames(clip3: tuple[Path, list[int]]) -> None:
    path, _ = clip3
    one = vsmmrealsr.mmrealsr(source(path), device_index=0, precision="fp32", num_streams=1)
    two = vsmmrealsr.mmrealsr(source(path), device_index=0, precision="fp32", num_streams=2, batch_size=2)
    futures = [two.get_frame_async(n) for n in range(40)]
    for n, fut in enumerate(futures):
        for a, b in zip(planes_of_frame(fut.result()), planes_of_frame(one.get_frame(n)), strict=True):
            assert np.abs(a.astype(int) - b).max() <= 1, f"frame {n}"
