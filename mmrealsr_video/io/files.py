"""Writing outputs so that nothing is ever half-written: a temporary file in the target's folder,
renamed over the target only when complete, removed on any error. The one way every output of
the package (images, tracks, checkpoints, videos) is written."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mmrealsr_video.errors import InputError, OutputError

__all__ = ["atomic_folder", "atomic_output", "read_text", "write_bytes_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yields a temporary path (same folder and extension as ``path``) to write to.

    When the block ends normally the file gets the usual permissions and replaces ``path``; when
    it raises, the temporary file is removed and ``path`` is left as it was.

    Raises:
        OutputError: the folder does not exist or cannot be written.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise OutputError(f"{target.parent}: output folder does not exist")
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent
        )
    except OSError as e:
        raise OutputError(f"{target.parent}: cannot write there ({e.strerror})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OutputError):
            raise
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yields a temporary folder (next to ``path``) to fill; the folder version of :func:`atomic_output`.

    When the block ends normally the folder gets the usual permissions and takes the place of
    ``path``: an empty folder there is replaced; a non-empty one only with ``force`` (it is moved
    aside, the new one renamed in, then the old one removed). When the block raises, the temporary
    folder and everything in it are removed and ``path`` is left as it was.

    Raises:
        OutputError: the parent folder does not exist or cannot be written, ``path`` is a file, or
            a non-empty folder without ``force``.
    """
    target = Path(path)
    _check_folder_target(target, force)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as e:
        raise OutputError(f"{target.parent}: cannot write there ({e.strerror})") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        _check_folder_target(target, force)  # it may have appeared meanwhile
        old: Path | None = None
        if target.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
        try:
            os.replace(tmp, target)
        except OSError:
            if old is not None:  # put the old folder back
                os.replace(old / target.name, target)
                old.rmdir()
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OutputError):
            raise
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_folder_target(target: Path, force: bool) -> None:
    if not target.parent.is_dir():
        raise OutputError(f"{target.parent}: output folder does not exist")
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise OutputError(f"{target}: the folder exists and is not empty (pass --force to replace it)")


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Writes ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def read_text(path: Path, kind: str) -> str:
    """Reads a UTF-8 text input; errors name the file and say what a ``kind`` file it should be.

    Raises:
        InputError: missing, unreadable, or not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such {kind} file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
