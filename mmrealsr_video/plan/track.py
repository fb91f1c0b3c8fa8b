"""The coefficient track: for every frame its time, scene, raw estimate, automatic and final blur and
noise, and where the final values came from. Saved and loaded losslessly as JSON or CSV (and
plotted by :mod:`mmrealsr_video.plan.plot`), so that every coefficient used can be explained and reproduced."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.io.files import check_output_file, read_text, write_bytes_atomic

__all__ = [
    "FRAME_FIELDS",
    "SCHEMA_VERSION",
    "TRACK_SUFFIXES",
    "CoefficientTrack",
    "FrameCoefficients",
    "Source",
    "check_track_output",
]

#: The file types a track is written as and read from.
TRACK_SUFFIXES = (".json", ".csv")

#: The track file layout this version writes and reads.
SCHEMA_VERSION = 1

#: Where a frame's final values came from (see ``docs/keyframes.md``).
Source = Literal["auto", "keyframe", "fixed"]
_SOURCES: tuple[str, ...] = get_args(Source)

_INT_FIELDS = ("index", "scene")
_OPTIONAL_UNIT_FIELDS = ("raw_blur", "raw_noise")
_UNIT_FIELDS = ("auto_blur", "auto_noise", "blur", "noise")
#: Frame and scene numbers above this are refused (they would not fit the arrays tracks are read into).
_MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class FrameCoefficients:
    """One frame of a track.

    Attributes:
        index: frame number in the source (0-based, increasing along the track).
        pts_time: presentation time in seconds.
        scene: scene number (0-based); frames of one scene are contiguous.
        raw_blur: the estimator's blur on this frame, or None where it was not sampled.
        raw_noise: the estimator's noise on this frame, or None where it was not sampled.
        auto_blur: the automatic blur (per-scene aggregate of the raw samples).
        auto_noise: the automatic noise.
        blur: the final blur fed to the generator.
        noise: the final noise fed to the generator.
        source: ``auto`` (both final values are the automatic ones), ``keyframe`` (at least one
            comes from keyframes) or ``fixed`` (set by a fixed ``--blur``/``--noise``).
    """

    index: int
    pts_time: float
    scene: int
    raw_blur: float | None
    raw_noise: float | None
    auto_blur: float
    auto_noise: float
    blur: float
    noise: float
    source: Source = "auto"

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise InputError(f"field {name!r}: expected an integer, not {_show(v)}")
            if v < 0:
                raise InputError(f"field {name!r}: must be >= 0, not {_digits(v)}")
            if v > _MAX_INT:
                raise InputError(f"field {name!r}: {_digits(v)} is too large")
            object.__setattr__(self, name, int(v))
        t = self.pts_time
        if isinstance(t, bool) or not isinstance(t, int | float | np.floating | np.integer):
            raise InputError(f"field 'pts_time': expected a number, not {_show(t)}")
        if not _finite(t):
            raise InputError(f"field 'pts_time': must be finite, not {_digits(t)}")
        object.__setattr__(self, "pts_time", float(t))
        for name in _OPTIONAL_UNIT_FIELDS + _UNIT_FIELDS:
            v = getattr(self, name)
            if v is None and name in _OPTIONAL_UNIT_FIELDS:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer):
                raise InputError(f"field {name!r}: expected a number in [0, 1], not {_show(v)}")
            if not 0.0 <= v <= 1.0:  # also rejects NaN
                raise InputError(f"field {name!r}: must lie in [0, 1], not {_digits(v)}")
            object.__setattr__(self, name, float(v))
        if self.source not in _SOURCES:
            raise InputError(
                f"field 'source': expected one of {', '.join(_SOURCES)}, not {_show(self.source)}"
            )


#: Field names of a frame record, in file column order.
FRAME_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(FrameCoefficients))


@dataclass(frozen=True)
class CoefficientTrack:
    """Per-frame coefficients of one video for one model.

    Attributes:
        frames: the frames, in presentation order.
        model: name of the model (and its estimator) the values were made for.
        fps: nominal frame rate, if known (informative; times come from ``pts_time``).
        time_base: the stream's time base, if known, so that ``pts_time / time_base`` gives the
            integer timestamps back.
        schema_version: the file layout version; only ``SCHEMA_VERSION`` is supported.
    """

    frames: tuple[FrameCoefficients, ...]
    model: str
    fps: float | None = None
    time_base: Fraction | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise InputError(
                f"schema_version {self.schema_version!r} is not supported (this version reads "
                f"{SCHEMA_VERSION}); use a matching mmrealsr-video"
            )
        if not isinstance(self.model, str) or not self.model or self.model != self.model.strip():
            raise InputError(
                f"model: expected a non-empty name without surrounding spaces, not {self.model!r}"
            )
        if "\n" in self.model or "\r" in self.model:
            raise InputError(f"model: a name cannot contain line breaks: {self.model!r}")
        if self.fps is not None:
            if isinstance(self.fps, bool) or not isinstance(self.fps, int | float) or not self.fps > 0:
                raise InputError(f"fps: expected a positive number or none, not {_digits(self.fps)}")
            if not _finite(self.fps):
                raise InputError(f"fps: must be finite, not {_digits(self.fps)}")
            object.__setattr__(self, "fps", float(self.fps))
        if self.time_base is not None and (not isinstance(self.time_base, Fraction) or self.time_base <= 0):
            raise InputError(f"time_base: expected a positive Fraction or none, not {self.time_base!r}")
        frames = tuple(self.frames)
        object.__setattr__(self, "frames", frames)
        prev: FrameCoefficients | None = None
        for i, f in enumerate(frames):
            if not isinstance(f, FrameCoefficients):
                raise InputError(f"frames[{i}]: expected a FrameCoefficients, not {type(f).__name__}")
            if prev is not None and (why := _order_error(prev, f)):
                raise InputError(f"frames[{i}] (index {f.index}): {why}")
            prev = f

    def __len__(self) -> int:
        return len(self.frames)

    def scenes(self) -> list[tuple[int, int]]:
        """The scenes as ``(first, last_exclusive)`` positions in ``frames`` (frame numbers when the
        track starts at frame 0 without gaps)."""
        out: list[tuple[int, int]] = []
        start = 0
        for i in range(1, len(self.frames)):
            if self.frames[i].scene != self.frames[i - 1].scene:
                out.append((start, i))
                start = i
        if self.frames:
            out.append((start, len(self.frames)))
        return out

    @property
    def cuts(self) -> list[int]:
        """Positions of the first frame of every scene after the first."""
        return [first for first, _ in self.scenes()[1:]]

    def column(self, name: str) -> np.ndarray:
        """One field of every frame as an array: float64 (NaN for a missing raw sample) or int64.

        Raises:
            InputError: ``name`` is not a numeric frame field.
        """
        if name in _INT_FIELDS:
            return np.fromiter((getattr(f, name) for f in self.frames), np.int64, len(self.frames))
        if name in _UNIT_FIELDS or name in _OPTIONAL_UNIT_FIELDS or name == "pts_time":
            return np.fromiter(
                (math.nan if (v := getattr(f, name)) is None else v for f in self.frames),
                np.float64,
                len(self.frames),
            )
        raise InputError(f"no numeric frame field {name!r}; use one of {', '.join(FRAME_FIELDS[:-1])}")

    def coefficients(self) -> np.ndarray:
        """The final (blur, noise) of every frame as a float64 array of shape (N, 2)."""
        out = np.empty((len(self.frames), 2), np.float64)
        for i, f in enumerate(self.frames):
            out[i, 0] = f.blur
            out[i, 1] = f.noise
        return out

    def with_frames(self, frames: Iterable[FrameCoefficients]) -> CoefficientTrack:
        """A copy with other frames and the same metadata."""
        return replace(self, frames=tuple(frames))

    def with_final(
        self,
        blur: Sequence[float] | np.ndarray,
        noise: Sequence[float] | np.ndarray,
        source: Sequence[Source],
    ) -> CoefficientTrack:
        """A copy with new final values and sources, one per frame; everything else unchanged.

        Raises:
            InputError: a sequence's length is not the number of frames, or a value is invalid.
        """
        n = len(self.frames)
        for name, seq in (("blur", blur), ("noise", noise), ("source", source)):
            if len(seq) != n:
                raise InputError(f"{name}: expected {n} values (one per frame), got {len(seq)}")
        return self.with_frames(
            replace(f, blur=float(b), noise=float(z), source=s)
            for f, b, z, s in zip(self.frames, blur, noise, source, strict=True)
        )

    def save(self, path: str | Path, *, force: bool = True) -> Path:
        """Writes the track as JSON (``.json``) or CSV (``.csv``), atomically (temporary file in the
        same folder, then renamed).

        Args:
            path: the file.
            force: replace an existing file; without it an existing file is refused (see
                :func:`~mmrealsr_video.io.files.atomic_output`).

        Returns:
            The path written.

        Raises:
            OutputError: unknown extension, an existing file without ``force``, or the file cannot
                be written.
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == ".json":
            text = self._to_json()
        elif suffix == ".csv":
            text = self._to_csv()
        else:
            raise OutputError(f"{p}: unknown track file type {p.suffix!r}; use .json or .csv")
        write_bytes_atomic(p, text.encode("utf-8"), force=force)
        return p

    @classmethod
    def load(cls, path: str | Path) -> CoefficientTrack:
        """Reads a track written by ``save`` (or by hand), validating every field.

        Raises:
            InputError: the file cannot be read or is not a valid track; the message names the file,
                the frame (and line, for CSV) and the field.
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".json", ".csv"):
            raise InputError(f"{p}: unknown track file type {p.suffix!r}; use .json or .csv")
        text = read_text(p, "track")
        return _from_json(text, p) if suffix == ".json" else _from_csv(text, p)

    # -- writing --------------------------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "model": self.model,
            "fps": self.fps,
            "time_base": None
            if self.time_base is None
            else f"{self.time_base.numerator}/{self.time_base.denominator}",
        }

    def _to_json(self) -> str:
        # One frame per line: readable, diffable, and floats keep their repr (exact round trip).
        head = ",\n".join(
            f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in self._metadata().items()
        )
        rows = ",\n".join(
            "    " + json.dumps({k: getattr(f, k) for k in FRAME_FIELDS}, allow_nan=False)
            for f in self.frames
        )
        body = f"[\n{rows}\n  ]" if rows else "[]"
        return f'{{\n{head},\n  "frames": {body}\n}}\n'

    def _to_csv(self) -> str:
        buf = io.StringIO()
        for k, v in self._metadata().items():
            if v is not None:
                buf.write(f"# {k}: {v}\n")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(FRAME_FIELDS)
        for f in self.frames:
            w.writerow(
                [
                    "" if (v := getattr(f, k)) is None else repr(v) if isinstance(v, float) else v
                    for k in FRAME_FIELDS
                ]
            )
        return buf.getvalue()


def check_track_output(path: str | Path, *, force: bool) -> Path:
    """Refuses, before any work, a track file that could not be written: an unknown type, no
    folder, or an existing file without ``force``.

    Raises:
        OutputError: naming the file and what to do.
    """
    p = Path(path)
    if p.suffix.lower() not in TRACK_SUFFIXES:
        raise OutputError(f"{p}: unknown track file type {p.suffix!r}; use .json or .csv")
    return check_output_file(p, force=force, what="track")


def _finite(v: float | int | np.floating | np.integer) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _digits(v: object) -> str:
    """``v`` for a message: a huge integer by its number of digits (printing one of more than 4300
    digits raises a ``ValueError``)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 10**30:
        return f"a number of about {int(abs(v).bit_length() * math.log10(2)) + 1} digits"
    return repr(v)


def _json_loads(text: str, path: Path) -> Any:
    """``json.loads`` with its errors as messages naming the file (a number of more than 4300 digits
    is a ``ValueError`` of Python's, not a ``JSONDecodeError``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except ValueError:
        raise InputError(f"{path}: invalid JSON: a number has more than 4300 digits") from None


def _order_error(prev: FrameCoefficients, f: FrameCoefficients) -> str | None:
    if f.index <= prev.index:
        return f"field 'index': must increase, previous frame has {prev.index}"
    if f.scene < prev.scene:
        return f"field 'scene': scenes must not decrease, previous frame has {prev.scene}"
    if f.pts_time < prev.pts_time:
        return f"field 'pts_time': times must not decrease, previous frame has {prev.pts_time!r}"
    return None


# -- reading ------------------------------------------------------------------------------------


def _show(v: object) -> str:
    return f"{_digits(v)} ({type(v).__name__})"


def _track(path: Path, meta: Mapping[str, Any], frames: list[FrameCoefficients]) -> CoefficientTrack:
    time_base = meta.get("time_base")
    if time_base is not None:
        if not isinstance(time_base, str) or not re.fullmatch(r"\d+/\d+", time_base.strip()):
            raise InputError(f"{path}: time_base: expected 'num/den' like '1/24000', not {time_base!r}")
        if len(time_base.strip()) > 40:
            raise InputError(f"{path}: time_base: {time_base[:20]!r}...: the numbers are too large")
        num, den = (int(x) for x in time_base.split("/"))
        if num == 0 or den == 0:
            raise InputError(f"{path}: time_base: must be positive, not {time_base!r}")
        time_base = Fraction(num, den)
    try:
        return CoefficientTrack(
            frames=tuple(frames),
            model=meta["model"],
            fps=meta.get("fps"),
            time_base=time_base,
            schema_version=meta["schema_version"],
        )
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def _check_schema(path: Path, meta: Mapping[str, Any]) -> None:
    for key in ("schema_version", "model"):
        if key not in meta:
            raise InputError(f"{path}: missing {key!r}; not a coefficient track")
    if type(meta["schema_version"]) is not int or meta["schema_version"] != SCHEMA_VERSION:
        raise InputError(
            f"{path}: schema_version {_digits(meta['schema_version'])} is not supported (this version reads "
            f"{SCHEMA_VERSION}); use a matching mmrealsr-video"
        )


def _record(path: Path, where: str, rec: Mapping[str, Any]) -> FrameCoefficients:
    unknown = [k for k in rec if k not in FRAME_FIELDS]
    if unknown:
        raise InputError(
            f"{path}: {where}: unknown field {unknown[0]!r}; a frame has {', '.join(FRAME_FIELDS)}"
        )
    missing = [k for k in FRAME_FIELDS if k not in rec]
    if missing:
        raise InputError(f"{path}: {where}: missing field {missing[0]!r}")
    try:
        return FrameCoefficients(**rec)
    except InputError as e:
        raise InputError(f"{path}: {where}: {e}") from None


_META_KEYS = ("schema_version", "model", "fps", "time_base")


def _append(path: Path, where: str, frames: list[FrameCoefficients], f: FrameCoefficients) -> None:
    if frames and (why := _order_error(frames[-1], f)):
        raise InputError(f"{path}: {where}: {why}")
    frames.append(f)


def _from_json(text: str, path: Path) -> CoefficientTrack:
    obj = _json_loads(text, path)
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object with 'schema_version', 'model' and 'frames'")
    _check_schema(path, obj)
    unknown = [k for k in obj if k not in (*_META_KEYS, "frames")]
    if unknown:
        raise InputError(f"{path}: unknown field {unknown[0]!r}; a track has {', '.join(_META_KEYS)}, frames")
    raw = obj.get("frames")
    if not isinstance(raw, list):
        raise InputError(f"{path}: 'frames' must be a list of frame records, not {_show(raw)}")
    frames: list[FrameCoefficients] = []
    for i, rec in enumerate(raw):
        if not isinstance(rec, dict):
            raise InputError(f"{path}: frames[{i}]: expected an object, not {_show(rec)}")
        idx = rec.get("index")
        where = f"frames[{i}]" + (f" (index {_digits(idx)})" if isinstance(idx, int) else "")
        _append(path, where, frames, _record(path, where, rec))
    return _track(path, obj, frames)


def _from_csv(text: str, path: Path) -> CoefficientTrack:
    lines = text.splitlines()
    meta: dict[str, Any] = {}
    n_meta = 0
    for line in lines:
        if not line.startswith("#"):
            break
        n_meta += 1
        m = re.fullmatch(r"#\s*(\w+)\s*:\s?(.*)", line)
        if not m:
            raise InputError(f"{path}: line {n_meta}: expected '# key: value', not {line!r}")
        key, value = m.group(1), m.group(2)
        if key not in _META_KEYS:
            raise InputError(f"{path}: line {n_meta}: unknown field {key!r}; use {', '.join(_META_KEYS)}")
        if key in meta:
            raise InputError(f"{path}: line {n_meta}: {key!r} given twice")
        meta[key] = value
    for key, kind in (("schema_version", int), ("fps", float)):
        if key in meta:
            meta[key] = _number(path, "metadata", key, meta[key].strip(), kind)
    _check_schema(path, meta)
    reader = csv.reader(lines[n_meta:])
    header = next(reader, None)
    if header is None:
        raise InputError(f"{path}: line {n_meta + 1}: missing the header row ({','.join(FRAME_FIELDS)})")
    header = [h.strip() for h in header]
    for h in header:
        if h not in FRAME_FIELDS:
            raise InputError(
                f"{path}: line {n_meta + 1}: unknown field {h!r}; a frame has {', '.join(FRAME_FIELDS)}"
            )
    if len(set(header)) != len(header):
        raise InputError(f"{path}: line {n_meta + 1}: a column appears twice in the header")
    missing = [k for k in FRAME_FIELDS if k not in header]
    if missing:
        raise InputError(f"{path}: line {n_meta + 1}: missing field {missing[0]!r} in the header")
    frames: list[FrameCoefficients] = []
    for row in reader:
        if not row:
            continue
        line_no = n_meta + reader.line_num
        where = f"line {line_no}"
        if len(row) != len(header):
            raise InputError(f"{path}: {where}: expected {len(header)} cells, got {len(row)}")
        rec: dict[str, Any] = {}
        for name, cell in zip(header, row, strict=True):
            rec[name] = _cell(path, where, name, cell.strip())
        where = f"{where} (index {rec['index']})"
        _append(path, where, frames, _record(path, where, rec))
    return _track(path, meta, frames)


def _cell(path: Path, where: str, name: str, cell: str) -> object:
    if name == "source":
        return cell
    if cell == "":
        if name in _OPTIONAL_UNIT_FIELDS:
            return None
        raise InputError(f"{path}: {where}: field {name!r}: empty; a value is required")
    return _number(path, where, name, cell, int if name in _INT_FIELDS else float)


def _number(path: Path, where: str, name: str, cell: str, kind: type[int] | type[float]) -> int | float:
    if kind is int and len(cell) > 30 and cell.lstrip("+-").isdigit():  # int() refuses more than 4300 digits
        raise InputError(f"{path}: {where}: field {name!r}: a {len(cell)}-digit number is too large")
    try:
        return kind(cell)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        shown = repr(cell) if len(cell) <= 40 else repr(cell[:40]) + "..."
        raise InputError(f"{path}: {where}: field {name!r}: expected {what}, not {shown}") from None
