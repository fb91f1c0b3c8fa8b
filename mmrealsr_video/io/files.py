"""Writing outputs so that nothing is ever half-written: a temporary file in the target's folder,
renamed over the target only when complete, removed on any error. The one way every output of
the package (images, tracks, checkpoints, videos) is written.

Temporary names carry the writer's process id (``.NAME.<pid>.<random>.partial.EXT``), so that what a
killed writer (``kill -9``, a power cut) left behind can be told from what a live one is writing:
the next write to the same target removes the partials of writers that are gone, and says so.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mmrealsr_video.errors import InputError, OutputError

__all__ = [
    "atomic_folder",
    "atomic_output",
    "check_output_file",
    "is_file",
    "partial_names",
    "read_text",
    "remove_stale_partials",
    "write_bytes_atomic",
]

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False  # not a process id this system can have
    return True


def partial_names(target: Path, *, folder: bool = False) -> re.Pattern[str]:
    """The names of ``target``'s temporary files (``folder``: temporary folders), with the writer's
    process id as group 1."""
    if folder:
        return re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^.]+\.(?:partial|old)")
    return re.compile(rf"\.{re.escape(target.stem)}\.(\d+)\.[^.]+\.partial{re.escape(target.suffix)}")


def remove_stale_partials(target: str | Path, *, folder: bool = False) -> list[Path]:
    """Removes the temporary files (``folder``: folders) of ``target`` left by writers that are no
    longer running, and logs their names.

    Returns:
        What was removed.
    """
    target = Path(target)
    pattern = partial_names(target, folder=folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as e:
            log.warning(
                "%s: left by a writer that is gone (process %s), but cannot be removed: %s",
                path,
                m.group(1),
                e,
            )
            continue
        removed.append(path)
        log.warning("%s: removed, left by an interrupted write (process %s is gone)", path, m.group(1))
    return removed


def check_output_file(path: str | Path, *, force: bool, what: str = "output") -> Path:
    """Refuses, before any work, a file output that cannot be written: no folder, a folder in its
    place, an existing file without ``force``, or a folder where no file can be made (tried).

    Raises:
        OutputError: naming the file and what to do.
    """
    p = Path(path)
    if not p.parent.is_dir():
        raise OutputError(f"{p.parent}: {what} folder does not exist")
    if p.is_dir():
        raise OutputError(f"{p}: is a folder; name a file for the {what}")
    if p.exists() and not force:
        raise OutputError(f"{p}: already exists (pass --force to overwrite)")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.{os.getpid()}.", suffix=".probe", dir=p.parent)
    except OSError as e:
        raise OutputError(f"{p.parent}: cannot write there ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)
    return p


def _commit(tmp: Path, target: Path, force: bool) -> None:
    """Moves the complete ``tmp`` to ``target``: replacing it only with ``force``; otherwise the
    check that ``target`` does not exist and the move are one step (a hard link fails on an
    existing name), so two writers to one name cannot both succeed."""
    if force:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputError(
            f"{target}: already exists (written meanwhile by another process?); pass --force to overwrite"
        ) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links: claim the name first (O_EXCL fails on an existing one).
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
        except FileExistsError:
            raise OutputError(
                f"{target}: already exists (written meanwhile by another process?); pass --force to overwrite"
            ) from None
        os.close(fd)
        try:
            os.replace(tmp, target)
        except BaseException:
            Path(target).unlink(missing_ok=True)  # the empty name claimed above
            raise
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_output(path: str | Path, *, force: bool = True, fsync: bool = False) -> Iterator[Path]:
    """Yields a temporary path (same folder and extension as ``path``) to write to.

    When the block ends normally the file gets the usual permissions and takes ``path``'s place;
    when it raises (``KeyboardInterrupt`` and a SIGTERM turned into one included), the temporary
    file is removed and ``path`` is left as it was. Temporary files that earlier writers of
    ``path`` left when they were killed are removed first (see :func:`remove_stale_partials`).

    Args:
        path: the file to write.
        force: replace an existing ``path``. Without it an existing file is refused, at the start
            and again, atomically, when the complete file is moved into place (another process may
            have written it meanwhile).
        fsync: flush the file to disk before it is moved into place.

    Raises:
        OutputError: the folder does not exist or cannot be written, or ``path`` exists without ``force``.
    """
    target = Path(path)
    check_output_file(target, force=force)
    remove_stale_partials(target)
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{target.stem}.{os.getpid()}.", suffix=f".partial{target.suffix}", dir=target.parent
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
        _commit(tmp, target, force)
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
    aside, the new one renamed in, then the old one removed). Without ``force`` the final rename
    itself refuses a folder that was filled meanwhile. When the block raises, the temporary
    folder and everything in it are removed and ``path`` is left as it was.

    Raises:
        OutputError: the parent folder does not exist or cannot be written, ``path`` is a file, or
            a non-empty folder without ``force``.
    """
    target = Path(path)
    _check_folder_target(target, force)
    remove_stale_partials(target, folder=True)
    try:
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".partial", dir=target.parent)
        )
    except OSError as e:
        raise OutputError(f"{target.parent}: cannot write there ({e.strerror})") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if force:
            _check_folder_target(target, force)  # a file may have taken its name meanwhile
            _replace_folder(tmp, target)
        else:
            try:
                os.rename(tmp, target)  # POSIX: replaces an empty folder, fails on a non-empty one
            except OSError as e:
                if e.errno == errno.ENOTDIR:
                    raise OutputError(f"{target}: exists and is not a folder") from None
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                raise OutputError(
                    f"{target}: the folder exists and is not empty (filled meanwhile by another process?); "
                    "pass --force to replace it"
                ) from None
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OutputError):
            raise
        raise OutputError(f"{target}: cannot write ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_folder(tmp: Path, target: Path) -> None:
    old: Path | None = None
    if target.is_dir():
        old = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".old", dir=target.parent)
        )
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


def _check_folder_target(target: Path, force: bool) -> None:
    if not target.parent.is_dir():
        raise OutputError(f"{target.parent}: output folder does not exist")
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise OutputError(f"{target}: the folder exists and is not empty (pass --force to replace it)")


def write_bytes_atomic(path: str | Path, data: bytes, *, force: bool = True) -> Path:
    """Writes ``data`` to ``path`` through :func:`atomic_output` (``force``: replace an existing file)."""
    with atomic_output(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def is_file(path: str | Path) -> bool:
    """``Path.is_file``, False for a name the system refuses to look up (too long: a keyframe
    string or a list of cuts can be taken for a file name)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


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
