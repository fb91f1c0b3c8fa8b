"""A job's manifest: what the job restores (the input's fingerprint, the settings, the model's
hash, the coefficient track) and how far it got (each chunk's state and its segment's checksum).

It is the job's only state: written atomically (and synced) after every finished chunk, it is
what a later run reads to resume, and what makes a run with another input, model or setting
refuse instead of mixing segments. Chunks are not marked as started: a chunk without a recorded,
verifiable segment is simply done again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmrealsr_video.errors import InputError
from mmrealsr_video.io.files import atomic_output
from mmrealsr_video.jobs.chunks import Chunk
from mmrealsr_video.models.loader import bundled_model_path
from mmrealsr_video.settings import RestoreSettings

__all__ = [
    "FORMAT",
    "ChunkRecord",
    "Manifest",
    "file_sha256",
    "input_fingerprint",
    "model_fingerprint",
    "settings_record",
]

#: What the manifest file says it is, and its layout version.
FORMAT = "mmrealsr-video job"
VERSION = 1
_EDGE = 1 << 20  # bytes hashed at each end of the input


def file_sha256(path: Path) -> str:
    """The SHA-256 of a whole file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def input_fingerprint(path: Path) -> dict[str, Any]:
    """Size, modification time and hashes of the first and last MiB: cheap on a film, and a
    changed, replaced or re-encoded input shows in at least one of them."""
    st = path.stat()
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(_EDGE)).hexdigest()
        f.seek(max(0, st.st_size - _EDGE))
        tail = hashlib.sha256(f.read(_EDGE)).hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_sha256": head, "tail_sha256": tail}


def model_fingerprint(model: str | os.PathLike[str]) -> dict[str, str]:
    """The model's name and the SHA-256 of its weights file (a bundled name or a path)."""
    name = os.fspath(model)
    path = bundled_model_path(name) or Path(name).expanduser()
    if not path.is_file():
        raise InputError(f"{name}: the model's weights file cannot be found to fingerprint it")
    return {"name": name, "sha256": file_sha256(path)}


def _file_or_text(value: str | os.PathLike[str] | None) -> Any:
    """A setting that is a file or a string (keyframes, a track): the file's hash, or the text."""
    if value is None:
        return None
    p = Path(value)
    if p.is_file():
        return {"file": p.name, "sha256": file_sha256(p)}
    return {"text": os.fspath(value)}


def settings_record(settings: RestoreSettings, *, output_suffix: str, chunk_frames: int) -> dict[str, Any]:
    """The settings that decide the output, as plain JSON values: two runs with equal records
    make equal segments. What only changes how a run goes (progress, force, workers) is left out;
    the device counts by its type, since CPUs and GPUs round differently."""
    s = settings
    return {
        "device": torch.device(s.device).type,
        "dtype": str(s.dtype).removeprefix("torch."),
        "batch": s.batch,
        "tile": s.tile,
        "tile_overlap": s.tile_overlap,
        "blur": str(s.blur) if s.blur is not None else None,
        "noise": str(s.noise) if s.noise is not None else None,
        "keyframes": _file_or_text(s.keyframes),
        "track": _file_or_text(s.track),
        "analysis": _plain(dataclasses.asdict(s.analysis)),
        "encode": _plain(dataclasses.asdict(s.encode)),
        "outscale": s.outscale,
        "frames": list(s.frames) if s.frames is not None else None,
        "start": s.start,
        "duration": s.duration,
        "output": output_suffix.lower(),
        "chunk_frames": chunk_frames,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass
class ChunkRecord:
    """A chunk and, once done, its segment: file name, size and SHA-256."""

    number: int
    first: int
    end: int
    start: int
    state: str = "pending"  # "pending" or "done"
    file: str | None = None
    size: int | None = None
    sha256: str | None = None

    @property
    def chunk(self) -> Chunk:
        return Chunk(self.number, self.first, self.end, self.start)


@dataclass
class Manifest:
    """The job's state (see the module's docstring). ``save`` writes it into ``folder``."""

    input: dict[str, Any]
    settings: dict[str, Any]
    model: dict[str, str]
    track_sha256: str
    chunks: list[ChunkRecord]
    tool: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    NAME = "manifest.json"

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "version": VERSION,
            "tool": self.tool,
            "input": self.input,
            "settings": self.settings,
            "model": self.model,
            "track_sha256": self.track_sha256,
            "chunks": [dataclasses.asdict(c) for c in self.chunks],
            **self.extra,
        }
        return json.dumps(data, indent=1, sort_keys=False) + "\n"

    def save(self, folder: Path) -> None:
        """Writes the manifest atomically and syncs it, so that a crash leaves the old or the new."""
        with atomic_output(folder / self.NAME, fsync=True) as tmp:
            tmp.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        """Reads a job folder's manifest.

        Raises:
            InputError: no manifest, or not one this version reads (names the file).
        """
        path = folder / cls.NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no manifest; {folder} is not a restore job's folder") from None
        except (OSError, ValueError) as e:
            raise InputError(
                f"{path}: not a readable job manifest ({e}); start over with --restart"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise InputError(f"{path}: not a job manifest of this version; start over with --restart")
        try:
            chunks = [ChunkRecord(**c) for c in data["chunks"]]
            known = {"format", "version", "tool", "input", "settings", "model", "track_sha256", "chunks"}
            return cls(
                input=data["input"],
                settings=data["settings"],
                model=data["model"],
                track_sha256=data["track_sha256"],
                chunks=chunks,
                tool=data.get("tool", ""),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError) as e:
            raise InputError(f"{path}: a damaged job manifest ({e}); start over with --restart") from None

    def differences(self, other: Manifest) -> list[str]:
        """What makes ``other`` (a new run's) a different job: the input, the model or a setting."""
        why = []
        a, b = self.input, other.input
        if a.get("size") != b.get("size"):
            why.append(f"the input's size changed ({a.get('size')} -> {b.get('size')} bytes)")
        elif (a.get("head_sha256"), a.get("tail_sha256")) != (b.get("head_sha256"), b.get("tail_sha256")):
            why.append("the input's content changed")
        elif a.get("mtime_ns") != b.get("mtime_ns"):
            why.append("the input was modified since the job started")
        if self.model.get("sha256") != other.model.get("sha256"):
            why.append(f"the model changed ({self.model.get('name')} -> {other.model.get('name')})")
        for key in sorted(set(self.settings) | set(other.settings)):
            if self.settings.get(key) != other.settings.get(key):
                why.append(
                    f"setting {key!r} changed ({self.settings.get(key)!r} -> {other.settings.get(key)!r})"
                )
        return why
