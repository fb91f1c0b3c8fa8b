"""Image sequences as inputs and outputs of the video pipeline.

An input sequence is a folder (every image in it), a printf pattern (``frames/%05d.png``) or a glob
pattern (``frames/*.png``); its frames are ordered naturally (``frame2`` before ``frame10``). Each
image is read as :func:`mmrealsr_video.io.images.read_image` reads a still (RGB, 8 or 16 bits, alpha
apart) and handed to the pipeline as a PyAV RGB frame (``rgb24``, ``rgb48le``, ``rgba``,
``rgba64le``), so that a sequence takes exactly the path a decoded video frame takes: the same
colour conversion, analysis, batching and model calls.

An output sequence is a folder (an existing folder, a path ending in ``/``, or a path without an
extension) or a printf pattern; see :func:`image_output`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mmrealsr_video.errors import InputError, OutputError, SettingsError
from mmrealsr_video.io.images import IMAGE_SUFFIXES, read_image

__all__ = [
    "DEFAULT_FPS",
    "ImageOutput",
    "ImageSequence",
    "as_rate",
    "find_sequence",
    "image_output",
    "is_image_output",
    "is_sequence",
    "natural_key",
    "read_frames",
    "sequence_frame",
]

DEFAULT_FPS = Fraction(25)
_PRINTF = re.compile(r"%(0?)(\d*)d")
_GLOB = re.compile(r"[*?\[]")


def natural_key(name: str) -> list[str | int]:
    """Sort key that orders embedded numbers by value: ``frame2`` < ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def as_rate(value: float | Fraction | str | None) -> Fraction:
    """A frame rate as a Fraction (``25``, ``29.97``, ``"30000/1001"``); 25 when None.

    Raises:
        SettingsError: not a positive number (names ``fps``).
    """
    if value is None:
        return DEFAULT_FPS
    try:
        rate = Fraction(value) if isinstance(value, Fraction) else Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise SettingsError("fps", f"{value!r}: expected a frame rate such as 25, 29.97 or 30000/1001") from None
    if rate <= 0 or rate > 1000:
        raise SettingsError("fps", f"{value}: must be in (0, 1000]")
    return rate.limit_denominator(100000)


def is_sequence(source: str | Path) -> bool:
    """Whether ``source`` names an image sequence (a folder or a pattern) rather than a file."""
    text = str(source)
    p = Path(text)
    if p.is_dir():
        return True
    if p.is_file():
        return False
    return bool(_PRINTF.search(p.name) or _GLOB.search(p.name))


@dataclass(frozen=True)
class ImageSequence:
    """The files of an input sequence, in frame order."""

    source: str
    files: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.files)

    @property
    def suffix(self) -> str:
        """The first frame's extension (``.png``...), lower case."""
        return self.files[0].suffix.lower()

    def contains(self, folder: Path) -> bool:
        """Whether any frame lies in ``folder`` or below it."""
        root = folder.resolve()
        return any(f.resolve().is_relative_to(root) for f in self.files)


def find_sequence(source: str | Path) -> ImageSequence:
    """Lists a sequence's frames: a folder's images, a printf pattern's or a glob's matches.

    Raises:
        InputError: no such folder, a pattern the folder lacks, or no image in it.
    """
    text = str(source)
    p = Path(text)
    if p.is_dir():
        files = [
            f
            for f in p.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
        ]
        what = f"{p}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder"
    else:
        folder = p.parent
        if _GLOB.search(str(folder)) or _PRINTF.search(str(folder)):
            raise InputError(f"{text}: patterns are only understood in the file name, not in folders")
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
        match = _PRINTF.search(p.name)
        if match is not None:
            head, tail = p.name[: match.start()], p.name[match.end() :]
            if _PRINTF.search(tail):
                raise InputError(f"{text}: a pattern holds one %d placeholder")
            width = int(match.group(2) or 0)
            digits = rf"\d{{{width},}}" if match.group(1) and width else r"\d+"
            regex = re.compile(re.escape(head.replace("%%", "%")) + f"({digits})" + re.escape(tail))
            numbered = [(int(m.group(1)), f) for f in folder.iterdir() if (m := regex.fullmatch(f.name))]
            files = [f for _, f in sorted(numbered, key=lambda item: (item[0], natural_key(item[1].name)))]
        else:
            files = [f for f in folder.glob(p.name) if f.is_file()]
        what = f"{text}: no file matches this pattern"
    if not files:
        raise InputError(what)
    if p.is_dir() or _PRINTF.search(p.name) is None:
        files.sort(key=lambda f: natural_key(f.name))
    return ImageSequence(text, tuple(files))


def sequence_frame(path: Path, rgb: np.ndarray, alpha: np.ndarray | None) -> av.VideoFrame:
    """An image's pixels as a PyAV RGB frame (8 or 16 bits per sample, alpha kept)."""
    deep = rgb.dtype == np.uint16
    if alpha is not None:
        array = np.dstack([rgb, alpha.astype(rgb.dtype)])
        fmt = "rgba64le" if deep else "rgba"
    else:
        array, fmt = rgb, ("rgb48le" if deep else "rgb24")
    try:
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=fmt)
    except (ValueError, av.error.FFmpegError) as e:  # pragma: no cover - odd sizes are fine for RGB
        raise InputError(f"{path}: cannot be used as a frame ({e})") from None


def read_frames(
    sequence: ImageSequence, rate: Fraction, *, stop: threading.Event | None = None
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Reads the frames in order as PyAV frames timed at ``rate`` (pts = index, time base 1/rate).

    Raises:
        InputError: an unreadable image, or one whose size differs from the first frame's (names
            the file and both sizes).
    """
    size: tuple[int, int] | None = None
    first: Path | None = None
    time_base = 1 / rate
    for index, path in enumerate(sequence.files):
        if stop is not None and stop.is_set():
            return
        rgb, alpha = read_image(path)
        h, w = rgb.shape[:2]
        if size is None:
            size, first = (w, h), path
        elif (w, h) != size:
            raise InputError(
                f"{path}: {w}x{h}, but the sequence's first frame ({first}) is {size[0]}x{size[1]}; "
                "every frame of a sequence must have the same size"
            )
        frame = sequence_frame(path, rgb, alpha)
        frame.pts = index
        frame.time_base = time_base
        yield index, frame


# --- output ---------------------------------------------------------------------------------------

_FORMATS = {
    "png": ".png",
    "jpg": ".jpg",
    "jpeg": ".jpg",
    "tif": ".tif",
    "tiff": ".tif",
    "webp": ".webp",
    "bmp": ".bmp",
}


@dataclass(frozen=True)
class ImageOutput:
    """Where and how an output sequence is written.

    Attributes:
        folder: the folder that will hold the images (written through a temporary folder).
        suffix: the images' extension (``.png``, ``.jpg``, ``.tif``...).
        pattern: a printf pattern for the names (formatted with the input frame's index), or None
            to keep the input's names (sequences) or use ``%06d`` (videos).
    """

    folder: Path
    suffix: str
    pattern: str | None = None

    def name(self, index: int, stems: Sequence[str] | None) -> str:
        """The file name of input frame ``index``: the pattern's, the input's stem (``stems``, for
        sequences) with this suffix, or the index on six digits (videos)."""
        if self.pattern is not None:
            return self.pattern % index
        if stems is not None:
            return stems[index] + self.suffix
        return f"{index:06d}{self.suffix}"


def is_image_output(output: str | Path) -> bool:
    """Whether ``output`` asks for images: an existing folder, a path ending in a separator, a path
    without an extension, or a printf pattern."""
    text = str(output)
    p = Path(text)
    return p.is_dir() or text.endswith(("/", os.sep)) or not p.suffix or _PRINTF.search(p.name) is not None


def image_output(output: str | Path, image_format: str | None, default_suffix: str) -> ImageOutput:
    """How to write an output sequence; ``image_format`` (png, jpg, tif...) overrides the default.

    Raises:
        OutputError: an unknown image format, or a pattern whose extension is not an image type or
            disagrees with ``image_format``.
    """
    suffix = default_suffix
    if image_format is not None:
        key = image_format.lower().lstrip(".")
        if key not in _FORMATS:
            raise SettingsError("image_format", f"must be one of png, jpg, tif, not {image_format!r}")
        suffix = _FORMATS[key]
    text = str(output)
    p = Path(text)
    if not p.is_dir() and _PRINTF.search(p.name) is not None:
        if _PRINTF.search(str(p.parent)):
            raise OutputError(f"{text}: the pattern must be in the file name, not in a folder")
        ext = p.suffix.lower()
        if ext not in IMAGE_SUFFIXES:
            raise OutputError(
                f"{text}: a pattern needs an image extension ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        if image_format is not None and _FORMATS.get(ext.lstrip(".")) != suffix:
            raise OutputError(f"{text}: the pattern's extension disagrees with the image format {image_format!r}")
        try:
            p.name % 0
        except (TypeError, ValueError):
            raise OutputError(
                f"{text}: not a valid pattern (one %d placeholder, %% for a percent sign)"
            ) from None
        return ImageOutput(p.parent, ext, p.name)
    if suffix not in IMAGE_SUFFIXES:
        suffix = ".png"
    return ImageOutput(p, suffix, None)
