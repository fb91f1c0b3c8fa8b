"""Jobs on Ray (a local instance on this machine's CPUs): two actors give the output of one
process, and an actor killed in the middle of a chunk is restarted and its chunk retried, with the
same output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmrealsr_video.jobs.job import job_folder
from tests.jobs.conftest import CHUNK, fingerprint

pytest.importorskip("ray")

EXE = Path(sys.executable).with_name("mmrealsr-video")
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _ray_workers() -> list[int]:
    """PIDs of the processes Ray runs the chunk actors in (their title is ``ray::ChunkWorker...``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::ChunkWorker"):
            pids.append(int(entry.name))
    return pids


def _restore(film: Path, out: Path) -> subprocess.Popen[str]:
    cmd = [
        str(EXE),
        "restore",
        str(film),
        str(out),
        "--chunk-frames",
        str(CHUNK),
        "-q",
        "--ray",
        "--workers",
        "2",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


@pytest.mark.slow
def test_two_ray_workers_give_the_output_of_one_process(
    film: Path, reference: dict[str, object], tmp_path: Path
) -> None:
    out = tmp_path / "film_x4.mkv"
    proc = _restore(film, out)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert fingerprint(out) == reference["fingerprint"]
    assert not job_folder(out).exists()


@pytest.mark.slow
def test_a_worker_killed_mid_chunk_is_retried(
    film: Path, reference: dict[str, object], tmp_path: Path
) -> None:
    out = tmp_path / "film_x4.mkv"
    folder = job_folder(out)
    proc = _restore(film, out)
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        # A chunk in flight: its temporary segment exists; kill an actor then, mid-chunk.
        partial = folder.is_dir() and any(".partial" in p.name for p in folder.iterdir())
        workers = _ray_workers()
        if partial and workers:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    _, err = proc.communicate(timeout=600)
    assert killed is not None, "no actor was caught mid-chunk"
    assert proc.returncode == 0, err
    assert fingerprint(out) == reference["fingerprint"]
    assert not folder.exists()
