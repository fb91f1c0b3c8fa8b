"""Keyframed overrides of blur and noise: parsed from a TOML or JSON file or a compact string
(``blur: 0=auto; 120|=0.6  noise: scene 3=+0.1``) and applied to a ``CoefficientTrack``.
The format and the rules are documented for users in ``docs/keyframes.md``."""

from __future__ import annotations

import json
import logging
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from mmrealsr_video.errors import InputError
from mmrealsr_video.io.files import is_file, read_text
from mmrealsr_video.plan.coefficients import COEFFICIENT_NAMES, CoefficientValue, parse_coefficient
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients, Source

__all__ = [
    "INTERPOLATIONS",
    "Interpolation",
    "Key",
    "KeyPosition",
    "Keyframes",
    "apply_fixed",
    "apply_fixed_frame",
    "apply_keyframes",
    "check_key_positions",
    "check_keyframes",
    "key_positions",
    "parse_keyframes",
    "parse_position",
]

log = logging.getLogger(__name__)

#: How a key's value goes on to the next key: hold it, straight line, or monotone cubic.
Interpolation = Literal["hold", "linear", "smooth"]
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)
_OPERATORS: dict[str, Interpolation] = {"": "linear", "|": "hold", "~": "smooth"}
_KEY_FIELDS = ("at", "value", "interp")

PositionKind = Literal["frame", "from_end", "time", "scene"]

_POSITION_HELP = (
    "expected a frame number (120), a count from the end (-1 is the last frame), seconds (4.5s), "
    "a timecode (00:01:05.250 or 01:05.250) or a scene (scene 12)"
)
_RE_FRAME = re.compile(r"\d+")
_RE_FROM_END = re.compile(r"-(\d+)")
_RE_SECONDS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*s")
_RE_TIMECODE = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")
_RE_SCENE = re.compile(r"scene\s*(\d+)", re.IGNORECASE)
#: The largest frame, scene or count a position may name (frame numbers are 64-bit everywhere).
_MAX_POSITION = 2**63 - 1


@dataclass(frozen=True)
class KeyPosition:
    """Where a key sits.

    Attributes:
        kind: ``frame`` (frame number), ``from_end`` (frames counted back from the end, 1 = the last
            frame), ``time`` (seconds from the first frame) or ``scene`` (a whole scene).
        value: the number for that kind.
    """

    kind: PositionKind
    value: int | float

    def __post_init__(self) -> None:
        if self.kind not in get_args(PositionKind):
            raise InputError(
                f"position kind must be one of {', '.join(get_args(PositionKind))}, not {self.kind!r}"
            )
        v = self.value
        if self.kind == "time":
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise InputError(f"a time position must be a finite number of seconds >= 0, not {v!r}")
            object.__setattr__(self, "value", float(v))
        else:
            if isinstance(v, bool) or not isinstance(v, int):
                raise InputError(f"a {self.kind} position must be an integer, not {v!r}")
            if v > _MAX_POSITION:
                raise InputError(f"a {self.kind} position of {_number_text(v)} is too large")
            if v < (1 if self.kind == "from_end" else 0):
                raise InputError(
                    f"a {self.kind} position must be >= {1 if self.kind == 'from_end' else 0}, not {v}"
                )

    def __str__(self) -> str:
        if self.kind == "frame":
            return str(self.value)
        if self.kind == "from_end":
            return f"-{self.value}"
        if self.kind == "time":
            return f"{self.value!r}s"
        return f"scene {self.value}"


@dataclass(frozen=True)
class Key:
    """One keyframe of one coefficient.

    Attributes:
        position: where it sits.
        value: absolute, relative to auto, or auto.
        interp: how the value goes on to the next key of the same coefficient (ignored on a scene
            key, which covers exactly its scene).
    """

    position: KeyPosition
    value: CoefficientValue
    interp: Interpolation = "linear"

    def __post_init__(self) -> None:
        if not isinstance(self.position, KeyPosition):
            raise InputError(f"position: expected a KeyPosition, not {type(self.position).__name__}")
        if not isinstance(self.value, CoefficientValue):
            raise InputError(f"value: expected a CoefficientValue, not {type(self.value).__name__}")
        if self.interp not in INTERPOLATIONS:
            raise InputError(f"interp: expected one of {', '.join(INTERPOLATIONS)}, not {self.interp!r}")

    def __str__(self) -> str:
        op = "" if self.position.kind == "scene" else {v: k for k, v in _OPERATORS.items()}[self.interp]
        return f"{self.position}{op}={_value_text(self.value)}"


@dataclass(frozen=True)
class Keyframes:
    """The keys of both coefficients; a coefficient without keys keeps its automatic value.

    Attributes:
        blur: keys for blur, in the order written.
        noise: keys for noise, in the order written.
        origin: where they came from (a file name or ``keyframe string``), for messages.
    """

    blur: tuple[Key, ...] = ()
    noise: tuple[Key, ...] = ()
    origin: str = field(default="keyframes", compare=False)

    def __post_init__(self) -> None:
        for name in COEFFICIENT_NAMES:
            keys = tuple(getattr(self, name))
            object.__setattr__(self, name, keys)
            seen: dict[KeyPosition, int] = {}
            for i, k in enumerate(keys, 1):
                if not isinstance(k, Key):
                    raise InputError(
                        f"{self.origin}: {name} key #{i}: expected a Key, not {type(k).__name__}"
                    )
                if k.position in seen:
                    raise InputError(
                        f"{self.origin}: {name} key #{i}: position {str(k.position)!r} is already keyed "
                        f"by key #{seen[k.position]}"
                    )
                seen[k.position] = i

    def __str__(self) -> str:
        """The compact string form; ``parse_keyframes(str(kf)) == kf`` when there is at least one key."""
        parts = [
            f"{name}: " + "; ".join(str(k) for k in getattr(self, name))
            for name in COEFFICIENT_NAMES
            if getattr(self, name)
        ]
        return "  ".join(parts)


def _value_text(v: CoefficientValue) -> str:
    # repr, not CoefficientValue.__str__ (which uses %g), so that values survive a round trip exactly.
    if v.kind == "auto":
        return "auto"
    text = repr(v.value)
    return "+" + text if v.kind == "relative" and not text.startswith("-") else text


# -- parsing ------------------------------------------------------------------------------------


def _number_text(v: int) -> str:
    """An integer for a message: a huge one by its digits (printing more than 4300 raises)."""
    return str(v) if abs(v) < 10**30 else f"about {int(abs(v).bit_length() * math.log10(2)) + 1} digits"


def _integer(digits: str, field: str, text: str) -> int:
    """``int(digits)`` for a position, refusing numbers longer than any frame number (and those
    Python would not convert)."""
    if len(digits) > len(str(_MAX_POSITION)):
        shown = text if len(text) <= 30 else text[:20] + "..."
        raise InputError(f"{field}: {shown!r}: a {len(digits)}-digit number is too large for a position")
    return int(digits)


def parse_position(text: str | int, *, field: str = "at") -> KeyPosition:
    """Parses ``120``, ``-24``, ``4.5s``, ``00:01:05.250``, ``01:05.250`` or ``scene 12``
    (an int is a frame number, or a count from the end when negative).

    Raises:
        InputError: naming ``field`` and what is wrong.
    """
    if isinstance(text, bool) or not isinstance(text, int | str):
        hint = f"; for seconds write '{text}s'" if isinstance(text, float) else ""
        raise InputError(f"{field}: expected a frame number or a position string, not {text!r}{hint}")
    if isinstance(text, int):
        try:
            return KeyPosition("from_end", -text) if text < 0 else KeyPosition("frame", text)
        except InputError as e:
            raise InputError(f"{field}: {e}") from None
    s = text.strip()
    if m := _RE_FRAME.fullmatch(s):
        return KeyPosition("frame", _integer(s, field, text))
    if m := _RE_FROM_END.fullmatch(s):
        count = _integer(m.group(1), field, text)
        if count == 0:
            raise InputError(f"{field}: {text!r}: a count from the end starts at -1 (the last frame)")
        return KeyPosition("from_end", count)
    if m := _RE_SECONDS.fullmatch(s):
        seconds = float(m.group(1))
        if not math.isfinite(seconds):
            raise InputError(f"{field}: {text[:30]!r}: too many seconds")
        return KeyPosition("time", seconds)
    if m := _RE_TIMECODE.fullmatch(s):
        hours = _integer(m.group(1), field, text) if m.group(1) is not None else 0
        minutes, seconds = _integer(m.group(2), field, text), float(m.group(3))
        if seconds >= 60 or (m.group(1) is not None and minutes >= 60):
            raise InputError(f"{field}: {text!r}: minutes and seconds of a timecode must be below 60")
        return KeyPosition("time", hours * 3600 + minutes * 60 + seconds)
    if m := _RE_SCENE.fullmatch(s):
        return KeyPosition("scene", _integer(m.group(1), field, text))
    raise InputError(f"{field}: {text!r} is not a position; {_POSITION_HELP}")


def parse_keyframes(source: str | Path) -> Keyframes:
    """Reads keyframes from a ``.toml`` or ``.json`` file, or from the compact string form.

    A ``Path``, or a ``str`` ending in ``.toml``/``.json``, is a file; any other ``str`` is the
    compact form (``blur: 0=auto; 120|=0.6  noise: 300~=0.2``).

    Raises:
        InputError: the file cannot be read or a key is malformed; the message names the file and
            line (syntax errors) or the coefficient and key number, the field and what is wrong.
    """
    if isinstance(source, Path):
        return _parse_file(source)
    if source.strip().lower().endswith((".toml", ".json")):
        return _parse_file(Path(source.strip()))
    if "=" not in source and is_file(source):
        raise InputError(f"{source}: unknown keyframe file type; use .toml or .json")
    return _parse_string(source)


def _parse_file(path: Path) -> Keyframes:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise InputError(f"{path}: unknown keyframe file type {path.suffix!r}; use .toml or .json")
    text = read_text(path, "keyframe")
    data: Any
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            # The message ends with "(at line L, column C)".
            raise InputError(f"{path}: invalid TOML: {e}") from None
        except ValueError:  # Python's limit on the digits of an int (4300), not a TOMLDecodeError
            raise InputError(f"{path}: invalid TOML: a number has more than 4300 digits") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
        except ValueError:  # as above
            raise InputError(f"{path}: invalid JSON: a number has more than 4300 digits") from None
    return _from_mapping(data, str(path), "[[{name}]]" if suffix == ".toml" else '"{name}"')


def _from_mapping(data: Any, origin: str, table: str) -> Keyframes:
    if not isinstance(data, dict):
        raise InputError(
            f"{origin}: expected an object with 'blur' and/or 'noise' lists, not {type(data).__name__}"
        )
    for name in data:
        if name not in COEFFICIENT_NAMES:
            raise InputError(
                f"{origin}: unknown field {name!r}; keyframes are listed under 'blur' and 'noise'"
            )
    out: dict[str, tuple[Key, ...]] = {}
    for name in COEFFICIENT_NAMES:
        entries = data.get(name, [])
        if not isinstance(entries, list):
            raise InputError(
                f"{origin}: {name!r} must be a list of keys ({table.format(name=name)}), not {type(entries).__name__}"
            )
        keys = []
        for i, entry in enumerate(entries, 1):
            where = f"{origin}: {name} key #{i}"
            if not isinstance(entry, dict):
                raise InputError(f"{where}: expected a table with 'at' and 'value', not {entry!r}")
            keys.append(_key_from_entry(entry, where))
        out[name] = tuple(keys)
    return Keyframes(blur=out["blur"], noise=out["noise"], origin=origin)


def _key_from_entry(entry: Mapping[str, Any], where: str) -> Key:
    for f in entry:
        if f not in _KEY_FIELDS:
            raise InputError(f"{where}: unknown field {f!r}; a key has {', '.join(_KEY_FIELDS)}")
    for f in ("at", "value"):
        if f not in entry:
            raise InputError(f"{where}: missing field {f!r}")
    try:
        position = parse_position(entry["at"], field="field 'at'")
        raw_value = entry["value"]
        if not isinstance(raw_value, str | int | float) or isinstance(raw_value, bool):
            raise InputError(
                f"field 'value': expected a number, 'auto' or a relative '+0.1', not {raw_value!r}"
            )
        value = parse_coefficient(raw_value, field="field 'value'")
        interp = entry.get("interp", "linear")
        if not isinstance(interp, str) or interp.strip().lower() not in INTERPOLATIONS:
            raise InputError(f"field 'interp': expected one of {', '.join(INTERPOLATIONS)}, not {interp!r}")
        if position.kind == "scene" and "interp" in entry:
            raise InputError("field 'interp': a scene key covers its scene exactly; interp does not apply")
        return Key(position, value, interp.strip().lower())  # type: ignore[arg-type]
    except InputError as e:
        raise InputError(f"{where}: {e}") from None


def _shorten(text: str) -> str:
    """A piece of the user's text for a message: its start when it is long."""
    return text if len(text) <= 40 else text[:30] + "..."


_RE_SECTION = re.compile(r"(?<![\w.])(blur|noise)\s*:", re.IGNORECASE)
_RE_ITEM = re.compile(r"(?P<position>[^=|~]*?)\s*(?P<op>[|~]?)=(?P<value>[^=]*)")


def _parse_string(text: str) -> Keyframes:
    origin = "keyframe string"
    if not text.strip():
        raise InputError(f"{origin}: empty; expected e.g. 'blur: 0=auto; 120|=0.6  noise: 300~=0.2'")
    heads = list(_RE_SECTION.finditer(text))
    start = heads[0].start() if heads else len(text)
    if text[:start].strip():
        raise InputError(
            f"{origin}: {_shorten(text[:start].strip())!r}: keys must follow 'blur:' or 'noise:', "
            "e.g. 'blur: 0=auto; 120|=0.6  noise: 300~=0.2'"
        )
    out: dict[str, tuple[Key, ...]] = {}
    for j, head in enumerate(heads):
        name = head.group(1).lower()
        if name in out:
            raise InputError(f"{origin}: '{name}:' given twice; list all its keys in one section")
        body = text[head.end() : heads[j + 1].start() if j + 1 < len(heads) else len(text)]
        items = [s.strip() for s in body.split(";")]
        if items and not items[-1]:
            items.pop()  # a trailing ';'
        keys = []
        for i, item in enumerate(items, 1):
            where = f"{origin}: {name} item #{i} ({_shorten(item)!r})"
            m = _RE_ITEM.fullmatch(item)
            if not m:
                hint = ""
                if word := re.search(r"([A-Za-z_]\w*)\s*:", item):
                    hint = f"; {word.group(1)!r} is not a coefficient (use 'blur:' or 'noise:')"
                elif item.count("=") > 1:
                    hint = "; separate keys with ';'"
                raise InputError(
                    f"{where}: expected POSITION=VALUE, POSITION|=VALUE (hold) or POSITION~=VALUE (smooth){hint}"
                )
            try:
                position = parse_position(m.group("position"), field="position")
                value = parse_coefficient(m.group("value").strip(), field="value")
                if position.kind == "scene" and m.group("op"):
                    raise InputError(
                        f"'{m.group('op')}=': a scene key covers its scene exactly; write 'scene N=VALUE'"
                    )
                keys.append(Key(position, value, _OPERATORS[m.group("op")]))
            except InputError as e:
                raise InputError(f"{where}: {e}") from None
        out[name] = tuple(keys)
    try:
        return Keyframes(blur=out.get("blur", ()), noise=out.get("noise", ()), origin=origin)
    except InputError as e:
        raise InputError(str(e).replace(" key #", " item #")) from None


# -- resolving positions ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Point:
    pos: int  # position in track.frames
    key: Key
    number: int  # 1-based key number, for messages


@dataclass(frozen=True)
class _Span:
    first: int
    last: int  # exclusive
    key: Key
    number: int


def _time_bounds(track: CoefficientTrack) -> np.ndarray:
    """Upper time bound of each frame (from the first frame): halfway to the next frame; the last
    frame gets half its predecessor's duration (or half a frame at ``fps``)."""
    t = track.column("pts_time")
    t = t - t[0]
    tail = 0.5 / track.fps if track.fps else 0.0
    if len(t) > 1:
        tail = (t[-1] - t[-2]) / 2
    return np.append((t[:-1] + t[1:]) / 2, t[-1] + tail)


def _resolve(
    track: CoefficientTrack, keyframes: Keyframes, name: str, *, warn: bool = True, strict: bool = False
) -> tuple[list[_Point], list[_Span]]:
    """Resolves the keys of one coefficient to frame positions; warns about and drops those that
    fall outside the track or name a missing scene (``strict``: raises :class:`InputError`
    instead). Later keys win on the same frame or scene."""
    n = len(track)
    index = track.column("index")
    bounds = _time_bounds(track) if n else np.empty(0)
    scene_ranges = {track.frames[first].scene: (first, last) for first, last in track.scenes()}
    points: dict[int, _Point] = {}
    spans: dict[int, _Span] = {}

    def drop(number: int, key: Key, why: str) -> None:
        if strict:
            raise InputError(f"{keyframes.origin}: {name} key #{number} (at {key.position}): {why}")
        if warn:
            log.warning(
                "%s: %s key #%d (at %s): %s; ignored", keyframes.origin, name, number, key.position, why
            )

    for number, key in enumerate(getattr(keyframes, name), 1):
        p = key.position
        if p.kind == "scene":
            if p.value not in scene_ranges:
                have = f"scenes {min(scene_ranges)}..{max(scene_ranges)}" if scene_ranges else "no frames"
                drop(number, key, f"the track has no scene {p.value} (it has {have})")
                continue
            first, last = scene_ranges[int(p.value)]
            spans[int(p.value)] = _Span(first, last, key, number)
            continue
        if n == 0:
            drop(number, key, "the track has no frames")
            continue
        if p.kind == "frame":
            if p.value > index[-1]:
                drop(number, key, f"frame {p.value} is past the end (the last frame is {index[-1]})")
                continue
            if p.value < index[0]:
                drop(number, key, f"frame {p.value} is before the track's first frame {index[0]}")
                continue
            pos = int(np.searchsorted(index, p.value, side="left"))
        elif p.kind == "from_end":
            if p.value > n:
                drop(number, key, f"{p} is before the first frame (the track has {n} frames)")
                continue
            pos = n - int(p.value)
        else:
            pos = int(np.searchsorted(bounds, p.value, side="left"))
            if pos >= n:
                drop(number, key, f"{p.value!r}s is past the end (the video ends at {bounds[-1]:.3f}s)")
                continue
        if pos in points and warn:
            old = points[pos]
            log.warning(
                "%s: %s keys #%d (at %s) and #%d (at %s) fall on the same frame %d; #%d is used",
                keyframes.origin,
                name,
                old.number,
                old.key.position,
                number,
                p,
                index[pos],
                number,
            )
        points[pos] = _Point(pos, key, number)
    return sorted(points.values(), key=lambda q: q.pos), list(spans.values())


def check_keyframes(track: CoefficientTrack, keyframes: Keyframes) -> None:
    """Refuses keys that fall outside ``track`` (past its end, before its start, a scene it does
    not have), which :func:`apply_keyframes` would ignore with a warning.

    Raises:
        InputError: naming the keyframes' origin, the key and why it does not fit.
    """
    for name in COEFFICIENT_NAMES:
        _resolve(track, keyframes, name, warn=False, strict=True)


def check_key_positions(
    keyframes: Keyframes, *, frames: int | None, duration: float | None, source: str = "the input"
) -> None:
    """Refuses, before any frame is decoded, keys that cannot fit a video of ``frames`` frames
    (as its container declares) lasting ``duration`` seconds; None skips that check. Scene keys
    need the analysis and are checked on the track (:func:`check_keyframes`).

    Raises:
        InputError: naming the keyframes' origin, the key and why it does not fit.
    """
    for name in COEFFICIENT_NAMES:
        for number, key in enumerate(getattr(keyframes, name), 1):
            p = key.position
            why = None
            if frames is not None and p.kind == "frame" and p.value >= frames:
                why = f"frame {p.value} is past the end ({source} declares {frames} frames, the last is {frames - 1})"
            elif frames is not None and p.kind == "from_end" and p.value > frames:
                why = f"{p} is before the first frame ({source} declares {frames} frames)"
            elif duration is not None and p.kind == "time" and p.value >= duration:
                why = f"{p.value!r}s is past the end ({source} declares {duration:.3f}s)"
            if why is not None:
                raise InputError(f"{keyframes.origin}: {name} key #{number} (at {p}): {why}")


def key_positions(
    track: CoefficientTrack, keyframes: Keyframes
) -> dict[str, tuple[list[int], list[tuple[int, int]]]]:
    """For plotting: per coefficient, the frame positions of point keys and the scene-key spans."""
    out = {}
    for name in COEFFICIENT_NAMES:
        points, spans = _resolve(track, keyframes, name, warn=False)
        out[name] = ([q.pos for q in points], [(s.first, s.last) for s in spans])
    return out


# -- applying -----------------------------------------------------------------------------------


def _resolved(value: CoefficientValue, auto: np.ndarray) -> np.ndarray:
    """``value.resolve`` for every frame's automatic value (same arithmetic, vectorised)."""
    if value.kind == "auto":
        return auto.copy()
    if value.kind == "relative":
        return np.clip(auto + value.value, 0.0, 1.0)
    return np.full(auto.shape, value.value)


def _pchip_slope(d_a: np.ndarray, d_b: np.ndarray, h_a: float, h_b: float) -> np.ndarray:
    """Fritsch–Carlson (as in PCHIP) slope at a key between secants ``d_a`` (left, length ``h_a``) and
    ``d_b`` (right): a weighted harmonic mean, zero where the secants differ in sign or one is zero."""
    w1, w2 = 2 * h_b + h_a, h_b + 2 * h_a
    same = d_a * d_b > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (w1 + w2) / (w1 / d_a + w2 / d_b)
    return np.where(same, d, 0.0)


def _curve(x: np.ndarray, auto: np.ndarray, points: Sequence[_Point]) -> tuple[np.ndarray, np.ndarray]:
    """The value of one coefficient on every frame from its point keys, and whether each frame's
    value depends on a key other than ``auto``. ``x`` is the frame numbers (the abscissa)."""
    n = len(x)
    if not points:
        return auto.copy(), np.zeros(n, bool)
    out = np.empty(n)
    keyed = np.empty(n, bool)
    pos = [q.pos for q in points]
    xs = [float(x[p]) for p in pos]
    is_auto = [q.key.value.kind == "auto" for q in points]
    m = len(points)

    def y(k: int, sl: slice) -> np.ndarray:
        return _resolved(points[k].key.value, auto[sl])

    # Before the first key and after the last: hold.
    out[: pos[0]] = y(0, slice(0, pos[0]))
    keyed[: pos[0]] = not is_auto[0]
    out[pos[-1] :] = y(m - 1, slice(pos[-1], n))
    keyed[pos[-1] :] = not is_auto[-1]
    for k in range(m - 1):
        sl = slice(pos[k], pos[k + 1])
        interp = points[k].key.interp
        y0 = y(k, sl)
        if interp == "hold":
            out[sl] = y0
            keyed[sl] = not is_auto[k]
            continue
        keyed[sl] = not (is_auto[k] and is_auto[k + 1])
        keyed[pos[k]] = not is_auto[k]
        y1 = y(k + 1, sl)
        h = xs[k + 1] - xs[k]
        s = (x[sl] - xs[k]) / h
        if interp == "linear":
            out[sl] = y0 + s * (y1 - y0)
            continue
        # smooth: cubic Hermite; slopes from Fritsch–Carlson where the neighbouring segment is a
        # line or a curve (not a hold, whose flat step calls for a zero slope), else zero.
        d = (y1 - y0) / h
        d0 = np.zeros(len(y0))
        d1 = np.zeros(len(y0))
        if k > 0 and points[k - 1].key.interp != "hold":
            h_prev = xs[k] - xs[k - 1]
            d_prev = (y0 - y(k - 1, sl)) / h_prev
            d0 = _pchip_slope(d_prev, d, h_prev, h)
        if k + 2 < m and points[k + 1].key.interp != "hold":
            h_next = xs[k + 2] - xs[k + 1]
            d_next = (y(k + 2, sl) - y1) / h_next
            d1 = _pchip_slope(d, d_next, h, h_next)
        s2, s3 = s * s, s * s * s
        # y0 + h01*(y1 - y0) + h*(h10*d0 + h11*d1): exactly y0 when the keys agree and slopes are 0.
        out[sl] = y0 + (3 * s2 - 2 * s3) * (y1 - y0) + h * ((s3 - 2 * s2 + s) * d0 + (s3 - s2) * d1)
    return np.clip(out, 0.0, 1.0), keyed


def apply_keyframes(track: CoefficientTrack, keyframes: Keyframes) -> CoefficientTrack:
    """A new track whose final blur and noise come from ``keyframes``.

    A coefficient with no applicable keys gets its automatic value. Point keys are interpolated in
    frame numbers, each key resolved against the automatic value *of the frame being computed*
    (so relative and auto keys follow a changing auto curve); before the first and after the last
    key the key's value is held; a scene key overrides its whole scene and is ignored elsewhere.
    ``source`` is ``keyframe`` on every frame whose value of either coefficient depends on a key
    that is not ``auto``, else ``auto``. ``raw_*`` and ``auto_*`` are unchanged.

    Keys outside the track (past the end, before the start, a scene that does not exist) are
    warned about through logging and ignored.

    Raises:
        InputError: ``keyframes`` is not a ``Keyframes``.
    """
    if not isinstance(keyframes, Keyframes):
        raise InputError(f"apply_keyframes: expected Keyframes, not {type(keyframes).__name__}")
    x = track.column("index").astype(np.float64)
    finals: dict[str, np.ndarray] = {}
    any_key = np.zeros(len(track), bool)
    for name in COEFFICIENT_NAMES:
        auto = track.column(f"auto_{name}")
        points, spans = _resolve(track, keyframes, name)
        values, keyed = _curve(x, auto, points)
        for sp in spans:
            sl = slice(sp.first, sp.last)
            values[sl] = _resolved(sp.key.value, auto[sl])
            keyed[sl] = sp.key.value.kind != "auto"
        finals[name] = values
        any_key |= keyed
    source: list[Source] = ["keyframe" if k else "auto" for k in any_key]
    return track.with_final(finals["blur"], finals["noise"], source)


def apply_fixed(
    track: CoefficientTrack, blur: CoefficientValue | None, noise: CoefficientValue | None
) -> CoefficientTrack:
    """Sets a coefficient to one value for the whole video (the CLI's ``--blur``/``--noise``).

    An absolute value replaces the coefficient on every frame; a relative one gives auto + offset
    (clamped) on every frame; ``auto`` or None leaves that coefficient as it is in ``track``. When
    either coefficient is set, every frame's ``source`` becomes ``fixed`` (the last thing that set
    its values); otherwise the track is returned unchanged.

    Raises:
        InputError: a value is not a ``CoefficientValue``.
    """
    chosen: dict[str, CoefficientValue] = {}
    for name, value in zip(COEFFICIENT_NAMES, (blur, noise), strict=True):
        if value is None:
            continue
        if not isinstance(value, CoefficientValue):
            raise InputError(f"apply_fixed: {name}: expected a CoefficientValue or None, not {value!r}")
        if value.kind != "auto":
            chosen[name] = value
    if not chosen:
        return track
    finals = {
        name: _resolved(chosen[name], track.column(f"auto_{name}")) if name in chosen else track.column(name)
        for name in COEFFICIENT_NAMES
    }
    fixed: list[Source] = ["fixed"] * len(track)
    return track.with_final(finals["blur"], finals["noise"], fixed)


def apply_fixed_frame(
    record: FrameCoefficients, blur: CoefficientValue | None, noise: CoefficientValue | None
) -> FrameCoefficients:
    """:func:`apply_fixed` on one frame's record (the streaming fronts settle frames one by one)."""
    if blur is None and noise is None:
        return record
    return apply_fixed(CoefficientTrack((record,), model="frame"), blur, noise).frames[0]
