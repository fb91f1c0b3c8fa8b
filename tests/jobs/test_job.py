"""Jobs with real files: a restore cut into chunks, interrupted (kill -9, SIGTERM, Ctrl-C, a full
disk) and resumed, or run on several workers, gives the output of one uninterrupted run: the same
decoded frames and timestamps, the same track, the same audio and subtitle packets."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmrealsr_video import JobSettings, RestoreJob, RestoreSettings
from mmrealsr_video.errors import InputError
from mmrealsr_video.jobs.job import job_folder
from tests.conftest import Cli
from tests.jobs.conftest import CHUNK, fingerprint

EXE = Path(sys.executable).with_name("mmrealsr-video")


def _settings(**kw: object) -> RestoreSettings:
    return RestoreSettings(progress=False, **kw)  # type: ignore[arg-type]


def test_a_job_keeps_every_stream_and_frame(film: Path, reference: dict[str, object]) -> None:
    source, restored = fingerprint(film), reference["fingerprint"]
    assert isinstance(restored, dict)
    assert [v[0] for v in restored["video"]] == [v[0] for v in source["video"]]  # every pts, in order
    assert restored["video"][0][1:3] == (192, 128)
    assert restored["audio"] == source["audio"] and restored["subtitle"] == source["subtitle"]
    assert restored["chapters"] == source["chapters"] and restored["title"] == source["title"]


def test_two_workers_give_the_same_output(film: Path, reference: dict[str, object], tmp_path: Path) -> None:
    out = tmp_path / "film_x4.mkv"
    RestoreJob(
        film, out, _settings(save_track=tmp_path / "t.json"), JobSettings(workers=2, chunk_frames=CHUNK)
    ).run()
    assert fingerprint(out) == reference["fingerprint"]
    assert json.loads((tmp_path / "t.json").read_text()) == reference["track"]


def _default_sigint() -> None:
    # A shell that starts the suite in the background ignores SIGINT, and children inherit that;
    # the restore should see Ctrl-C as a terminal would deliver it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(film: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(EXE), "restore", str(film), str(out), "--chunk-frames", str(CHUNK), "-q", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _done_chunks(folder: Path) -> int:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return 0
    return sum(1 for c in manifest["chunks"] if c["state"] == "done")


def _wait_for_chunks(folder: Path, n: int, proc: subprocess.Popen[str], timeout: float = 300) -> bool:
    """Waits until ``n`` chunks are done; False if the job finished first."""
    deadline = time.monotonic() + timeout
    while _done_chunks(folder) < n:
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.communicate()[1]
            return False
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.02)
    return True


@pytest.mark.slow
def test_kill_9_at_five_random_points_then_resume(
    film: Path, reference: dict[str, object], tmp_path: Path
) -> None:
    out = tmp_path / "film_x4.mkv"
    folder = job_folder(out)
    rng = random.Random(20261207)
    killed_after: list[int] = []
    # Five points spread over the job: while planning (0 chunks done), then after a random number
    # of finished chunks, each time a random moment later (inside a chunk, or between two).
    for target in [0, *sorted(rng.sample(range(1, 14), 4))]:
        proc = _start(film, out, "--save-track", str(tmp_path / "t.json"))
        if not _wait_for_chunks(folder, target, proc):
            break
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is not None:
            break  # it finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        killed_after.append(_done_chunks(folder))
    r = subprocess.run(
        [
            str(EXE),
            "restore",
            str(film),
            str(out),
            "--chunk-frames",
            str(CHUNK),
            "-q",
            "--save-track",
            str(tmp_path / "t.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert len(killed_after) == 5, killed_after
    assert fingerprint(out) == reference["fingerprint"]
    assert json.loads((tmp_path / "t.json").read_text()) == reference["track"]
    assert not folder.exists()
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_leave_a_resumable_job(
    film: Path, reference: dict[str, object], tmp_path: Path, sig: int, code: int
) -> None:
    out = tmp_path / "film_x4.mkv"
    folder = job_folder(out)
    proc = _start(film, out)
    _wait_for_chunks(folder, 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "interrupted" in err and "resume" in err and "Traceback" not in err
    assert (folder / "manifest.json").is_file() and not out.exists()
    assert [p.name for p in folder.iterdir() if ".partial" in p.name] == []
    done = _done_chunks(folder)
    r = subprocess.run(
        [str(EXE), "restore", str(film), str(out), "--chunk-frames", str(CHUNK), "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert done >= 2
    assert fingerprint(out) == reference["fingerprint"]


@pytest.mark.slow
def test_a_changed_setting_is_refused_and_restart_starts_over(
    film: Path, reference: dict[str, object], tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "film_x4.mkv"
    folder = job_folder(out)
    proc = _start(film, out)
    _wait_for_chunks(folder, 1, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    manifest = (folder / "manifest.json").read_bytes()
    r = cli("restore", film, out, "--chunk-frames", CHUNK, "-q", "--noise", "0.3")
    assert r.returncode == 1
    assert "setting 'noise' changed" in r.stderr and "--restart" in r.stderr
    assert (folder / "manifest.json").read_bytes() == manifest  # untouched
    r = cli("restore", film, out, "--chunk-frames", CHUNK, "-q", "--noise", "0.3", "--restart")
    assert r.returncode == 0, r.stderr
    assert fingerprint(out) != reference["fingerprint"]  # another noise: other pictures


def test_a_changed_input_is_refused(film: Path, tmp_path: Path) -> None:
    source = tmp_path / "film.mkv"
    source.write_bytes(film.read_bytes())
    out = tmp_path / "film_x4.mkv"
    job = JobSettings(chunk_frames=CHUNK, keep_job=True)
    RestoreJob(source, out, _settings(frames=(0, 10)), job).run()
    out.unlink()
    os.utime(source, ns=(time.time_ns(), time.time_ns()))
    with pytest.raises(InputError, match="the input was modified since the job started"):
        RestoreJob(source, out, _settings(frames=(0, 10)), job).run()


@pytest.mark.slow
def test_a_full_disk_is_a_clear_error_and_the_job_resumes(
    film: Path, reference: dict[str, object], tmp_path: Path
) -> None:
    """The job folder on a small tmpfs where this machine allows mounting one; otherwise the
    write error is made real by the file-size limit (RLIMIT_FSIZE: writes past it fail with EFBIG)."""
    out = tmp_path / "film_x4.mkv"
    folder = job_folder(out)
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
        ).returncode
        == 0
    )
    try:
        cmd = [str(EXE), "restore", str(film), str(out), "--chunk-frames", str(CHUNK), "-q"]
        if mounted:
            cmd += ["--job-folder", str(disk / "job")]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            folder = disk / "job"
        else:
            limit = "import resource, signal, sys, os; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            limit += "resource.setrlimit(resource.RLIMIT_FSIZE, (40000, 40000)); "
            limit += f"os.execv({str(EXE)!r}, sys.argv[1:])"
            r = subprocess.run(
                [sys.executable, "-c", limit, *cmd], capture_output=True, text=True, timeout=600
            )
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr
        assert ("No space left" in r.stderr or "too large" in r.stderr) and "run the same command" in r.stderr
        assert (folder / "manifest.json").is_file() and not out.exists()
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # room again
        assert r.returncode == 0, r.stderr
        assert fingerprint(out) == reference["fingerprint"]
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".mov", ".avi", ".nut"])
def test_every_listed_container_takes_a_job(tmp_path: Path, suffix: str) -> None:
    """The command line's default path: the joined segments and the copied audio in each container
    the docs list, for part of the bundled sample."""
    import av

    sample = Path(__file__).resolve().parents[2] / "examples" / "sample.mp4"
    out = tmp_path / f"sample{suffix}"
    summary = RestoreJob(sample, out, _settings(frames=(0, 6)), JobSettings(chunk_frames=3)).run()
    assert summary.frames == 6 and summary.chunks == 2
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
        assert len(c.streams.audio) == 1
    assert len(frames) == 6 and (frames[0].width, frames[0].height) == (960, 640)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
