"""Atomic outputs: the existence check repeated at the rename, temporary names that carry the
writer's process id, and the partials of killed writers removed by the next write."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from mmrealsr_video.errors import OutputError
from mmrealsr_video.io.files import atomic_folder, atomic_output, remove_stale_partials


def _dead_pid() -> int:
    """A process id no process can have: above the kernel's largest."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1000
    except OSError:
        return 2**22 + 1000


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".old"))


def test_a_target_written_meanwhile_is_not_replaced_without_force(tmp_path: Path) -> None:
    """Two writers of one name: the check at the start passes for both, the one at the rename
    (a hard link, which fails on an existing name) refuses the second."""
    out = tmp_path / "out.mkv"
    meanwhile = r"out\.mkv: already exists \(written meanwhile by another process\?\)"
    with pytest.raises(OutputError, match=meanwhile), atomic_output(out, force=False) as tmp:
        tmp.write_bytes(b"mine")
        out.write_bytes(b"theirs")  # the other writer finished first
    assert out.read_bytes() == b"theirs"
    assert _partials(tmp_path) == []


def test_force_replaces_and_no_force_creates(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with atomic_output(out, force=False) as tmp:
        tmp.write_bytes(b"first")
    assert out.read_bytes() == b"first" and oct(out.stat().st_mode & 0o777) != "0o600"
    with pytest.raises(OutputError, match="already exists"), atomic_output(out, force=False):
        pass
    with atomic_output(out, force=True) as tmp:
        tmp.write_bytes(b"second")
    assert out.read_bytes() == b"second"
    assert _partials(tmp_path) == []


def test_temporary_names_carry_the_writers_pid(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "clip.v2.mp4") as tmp:
        assert re.fullmatch(rf"\.clip\.v2\.{os.getpid()}\.[^.]+\.partial\.mp4", tmp.name), tmp.name
    with atomic_folder(tmp_path / "frames") as folder:
        assert re.fullmatch(rf"\.frames\.{os.getpid()}\.[^.]+\.partial", folder.name), folder.name


def test_partials_of_writers_that_are_gone_are_removed_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".out.{dead}.k2j4h5g6.partial.mkv"
    live = tmp_path / f".out.{alive}.a1b2c3d4.partial.mkv"
    other = tmp_path / f".other.{dead}.a1b2c3d4.partial.mkv"  # another target's: not this write's business
    stale_folder = tmp_path / f".frames.{dead}.zz9yy8xx.partial"
    for p in (stale, live, other):
        p.write_bytes(b"half")
    stale_folder.mkdir()
    (stale_folder / "000001.png").write_bytes(b"half")
    with caplog.at_level(logging.WARNING, logger="mmrealsr_video.io.files"):
        with atomic_output(tmp_path / "out.mkv") as tmp:
            tmp.write_bytes(b"whole")
        with atomic_folder(tmp_path / "frames") as folder:
            (folder / "000001.png").write_bytes(b"whole")
    assert not stale.exists() and not stale_folder.exists()
    assert live.exists() and other.exists()
    assert f"{stale}: removed, left by an interrupted write (process {dead} is gone)" in caplog.text
    assert str(stale_folder) in caplog.text and str(live) not in caplog.text
    assert (tmp_path / "out.mkv").read_bytes() == b"whole"
    assert remove_stale_partials(tmp_path / "out.mkv") == []


def test_a_folder_filled_meanwhile_is_not_replaced_without_force(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    with (
        pytest.raises(OutputError, match="filled meanwhile by another process"),
        atomic_folder(target) as folder,
    ):
        (folder / "a.png").write_bytes(b"mine")
        target.mkdir()
        (target / "b.png").write_bytes(b"theirs")
    assert [p.name for p in target.iterdir()] == ["b.png"]
    assert _partials(tmp_path) == []
