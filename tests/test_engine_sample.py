"""The bundled sample clip restored as the README's main command does (bundled default model, CPU)
gives exactly the frames, coefficient track and audio packets recorded in
``tests/data/sample_x4_reference.json`` (made before the package moved into stage folders; see
tests/data/README.md). Frames are compared through a lossless (FFV1) output so that the check is
the pipeline's, not the encoder's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import av
import pytest

from mmrealsr_video.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample.mp4"
REFERENCE = Path(__file__).parent / "data" / "sample_x4_reference.json"


def fingerprint(path: Path) -> dict[str, list[list[Any]]]:
    """md5 of every decoded frame's planes (with pts, size, format) and of every audio packet."""
    out: dict[str, list[list[Any]]] = {"video": [], "audio": []}
    with av.open(str(path)) as c:
        for packet in c.demux():
            if packet.stream.type == "audio" and packet.size:
                digest = hashlib.md5(bytes(packet)).hexdigest()
                out["audio"].append([packet.pts, packet.dts, packet.duration, digest])
            elif packet.stream.type == "video":
                for f in packet.decode():
                    h = hashlib.md5()
                    for plane in f.planes:
                        h.update(bytes(plane))
                    out["video"].append([f.pts, f.width, f.height, f.format.name, h.hexdigest()])
    return out


@pytest.mark.slow
def test_sample_clip_restores_as_recorded(tmp_path: Path) -> None:
    ref = json.loads(REFERENCE.read_text())
    assert hashlib.md5(SAMPLE.read_bytes()).hexdigest() == ref["input_md5"], "examples/sample.mp4 changed"
    out, track = tmp_path / "sample.mkv", tmp_path / "sample.track.json"
    assert main(["restore", str(SAMPLE), str(out), "--codec", "ffv1", "--save-track", str(track), "-q"]) == 0
    got = fingerprint(out)
    assert len(got["video"]) == len(ref["video"]) == 90
    for k, (a, b) in enumerate(zip(got["video"], ref["video"], strict=True)):
        assert a == b, f"frame {k} differs from the recorded restore"
    assert got["audio"] == ref["audio"]
    assert json.loads(track.read_text()) == ref["track"]
