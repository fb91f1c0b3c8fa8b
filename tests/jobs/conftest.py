"""A short 'film' for the job tests: several scenes of real photographs, AAC audio, ASS subtitles,
chapters and metadata, in Matroska; made in a fraction of a second."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from mmrealsr_video import JobSettings, RestoreJob, RestoreSettings
from mmrealsr_video.jobs.job import job_folder
from tests.media import ASS_HEADER, Scene, mux_subtitles, photos, render_frame


def write_film(
    path: Path, scene_frames: list[int], *, size: tuple[int, int] = (48, 32), fps: int = 24
) -> None:
    """Scenes of different photographs and degradations, with audio, subtitles and chapters."""
    rng = np.random.default_rng(0)
    ph = photos()
    scenes = [Scene(ph[k % len(ph)], n, 0.6 * (k % 3), 3.0 * (k % 4)) for k, n in enumerate(scene_frames)]
    frames = sum(scene_frames)
    with av.open(str(path), "w") as out:
        out.metadata["title"] = "mmrealsr-video job test"
        v = out.add_stream("libx264", rate=Fraction(fps))
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        # Kept apart: the muxer replaces the stream's time base once it writes its header.
        time_base = v.time_base = Fraction(1, fps * 10)
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        s = out.add_stream("ass")
        s.codec_context.time_base = Fraction(1, 1000)
        s.time_base = Fraction(1, 1000)
        s.codec_context.subtitle_header = ASS_HEADER
        end_ms = int(1000 * frames / fps)
        out.set_chapters(
            [
                {
                    "id": 1,
                    "start": 0,
                    "end": end_ms // 2,
                    "time_base": Fraction(1, 1000),
                    "metadata": {"title": "A"},
                },
                {
                    "id": 2,
                    "start": end_ms // 2,
                    "end": end_ms,
                    "time_base": Fraction(1, 1000),
                    "metadata": {"title": "B"},
                },
            ]
        )
        n = 0
        for scene in scenes:
            for t in range(scene.frames):
                frame = av.VideoFrame.from_ndarray(render_frame(scene, t, size, rng), format="rgb24")
                frame.pts = 10 * n
                frame.time_base = time_base
                out.mux(v.encode(frame))
                n += 1
        out.mux(v.encode(None))
        samples = int(48000 * frames / fps)
        tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 48000)).astype(np.float32)
        for i in range(0, samples - 1024, 1024):
            af = av.AudioFrame.from_ndarray(
                np.stack([tone[i : i + 1024]] * 2), format="fltp", layout="stereo"
            )
            af.sample_rate = 48000
            af.pts = i
            out.mux(a.encode(af))
        out.mux(a.encode(None))
        mux_subtitles(out, s, range(100, end_ms - 300, 700))


def fingerprint(path: Path) -> dict[str, Any]:
    """Everything the job tests compare: each decoded frame's pts and pixels (md5), every audio and
    subtitle packet's timestamps and bytes, the chapters and the title."""
    out: dict[str, Any] = {"video": [], "audio": [], "subtitle": []}
    with av.open(str(path)) as c:
        out["chapters"] = [(ch["start"], ch["end"], ch["metadata"].get("title")) for ch in c.chapters()]
        out["title"] = c.metadata.get("title")
        for packet in c.demux():
            kind = packet.stream.type
            if kind == "video":
                for f in packet.decode():
                    h = hashlib.md5()
                    for p in f.planes:
                        h.update(bytes(p))
                    out["video"].append((f.pts, f.width, f.height, h.hexdigest()))
            elif kind in ("audio", "subtitle") and packet.size:
                out[kind].append(
                    (packet.pts, packet.dts, packet.duration, hashlib.md5(bytes(packet)).hexdigest())
                )
    return out


@pytest.fixture(scope="session")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames in five scenes (one of them longer than the tests' chunk limit)."""
    path = tmp_path_factory.mktemp("film") / "film.mkv"
    write_film(path, [9, 14, 5, 20, 12])
    return path


#: Frames per chunk in the job tests: the 60-frame film makes about 16 chunks.
CHUNK = 4


@pytest.fixture(scope="session")
def reference(film: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One uninterrupted job, one worker: the output every other way must reproduce."""
    folder = tmp_path_factory.mktemp("reference")
    out = folder / "film_x4.mkv"
    settings = RestoreSettings(progress=False, save_track=folder / "t.json")
    summary = RestoreJob(film, out, settings, JobSettings(chunk_frames=CHUNK)).run()
    assert summary.chunks >= 15 and summary.resumed == 0 and summary.frames == 60
    assert not job_folder(out).exists()  # removed once the output is in place
    return {"fingerprint": fingerprint(out), "track": json.loads((folder / "t.json").read_text())}
