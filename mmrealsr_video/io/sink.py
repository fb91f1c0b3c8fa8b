"""Frame sinks: where restored pictures go. A video file (encoded in a thread, with a video input's
audio, subtitles, data streams, chapters and metadata copied) or a folder of images.

Containers are chosen by the output's extension from one table, :data:`MUXERS`; the checks that
refuse an output before any work (:func:`check_video_output`, :func:`check_image_output`) use it too.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, cast

import av
import av.error
import numpy as np
import torch

from mmrealsr_video.errors import InputError, OutputError, SettingsError
from mmrealsr_video.io.colour import (
    ColourDescription,
    output_pix_fmt,
    output_planes,
    planes_to_frame,
    supported_pix_fmts,
    tag_codec_context,
)
from mmrealsr_video.io.images import from_tensor, write_image
from mmrealsr_video.io.sequences import ImageOutput, ImageSequence
from mmrealsr_video.io.source import copyable_streams, drain

__all__ = [
    "CRF_RANGES",
    "MUXERS",
    "EncodeSettings",
    "FrameSink",
    "ImageSink",
    "VideoSink",
    "add_output_streams",
    "check_encoder",
    "check_image_output",
    "check_unique_names",
    "check_video_output",
    "copy_chapters",
    "keeps_packet",
    "resolved_codec",
    "shift_packet",
]

log = logging.getLogger(__name__)

#: Output containers by extension: the FFmpeg muxer that writes each.
MUXERS: dict[str, str] = {
    ".mkv": "matroska",
    ".mp4": "mp4",
    ".mov": "mov",
    ".m4v": "mp4",
    ".webm": "webm",
    ".avi": "avi",
    ".nut": "nut",
}
#: The encoder used when none is asked for; libx264 where the extension is not listed.
_DEFAULT_CODEC = {".webm": "libsvtav1"}
#: The encoders that take a CRF, and its range in each (FFmpeg itself takes any number and clamps it).
CRF_RANGES: dict[str, tuple[int, int]] = {"libx264": (0, 51), "libx265": (0, 51), "libsvtav1": (0, 63)}
#: The CRF when none is asked for.
_DEFAULT_CRF = 18
#: The picture size the encoder is tried with before any work (see :func:`check_encoder`).
_PROBE_SIZE = (64, 64)


@dataclass(frozen=True)
class EncodeSettings:
    """How the restored video is encoded. ``None`` picks a default from the output's extension.

    Attributes:
        codec: an FFmpeg video encoder (``libx264``, ``libx265``, ``libsvtav1``, ``ffv1``...).
        crf: the quality of the encoders in :data:`CRF_RANGES`, within their range.
        preset: the encoder's preset.
        pix_fmt: the output pixel format; None keeps the input's bit depth and chroma.
        options: more of the encoder's own options (``ffmpeg -h encoder=NAME``).
    """

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.crf is not None and (isinstance(self.crf, bool) or not isinstance(self.crf, int) or self.crf < 0):
            raise SettingsError("crf", f"must be a whole number of 0 or more, not {self.crf!r}")
        for key, value in self.options.items():
            if not isinstance(key, str) or not key or not isinstance(value, str):
                raise SettingsError("options", f"expected option names and values as text, not {key!r}={value!r}")


def resolved_codec(encode: EncodeSettings, dst: Path) -> str:
    """The encoder that writes ``dst``: the one asked for, or the default for its extension."""
    return encode.codec or _DEFAULT_CODEC.get(dst.suffix.lower(), "libx264")


def _encoder_options(encode: EncodeSettings, codec: str) -> dict[str, str]:
    """The options the encoder is opened with: the user's, and the CRF and preset."""
    options = dict(encode.options)
    if codec in CRF_RANGES:
        options.setdefault("crf", str(encode.crf if encode.crf is not None else _DEFAULT_CRF))
        if codec == "libx264":
            options.setdefault("preset", encode.preset or "medium")
        elif encode.preset is not None:
            options.setdefault("preset", encode.preset)
    return options


def check_encoder(encode: EncodeSettings, dst: Path, input_pix_fmt: str | None = None) -> str:
    """Refuses, before any work, encoder settings that the encoder would refuse, ignore or clamp:
    an unknown encoder, a CRF outside its range, a pixel format it cannot code, options it does
    not have. The encoder is opened once, on a small picture, with the settings a restore uses
    (FFmpeg reports the options it did not use; they would be dropped without a word).

    Args:
        encode: the settings.
        dst: the output (its extension picks the default encoder).
        input_pix_fmt: the input's pixel format (the output's is chosen from it), if known.

    Returns:
        The encoder's name.

    Raises:
        SettingsError: naming the setting (``codec``, ``crf``, ``pix_fmt``, ``options``).
    """
    codec = resolved_codec(encode, dst)
    try:
        encoder = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        raise SettingsError("codec", f"{codec!r}: no such encoder (see 'ffmpeg -encoders' for names)") from None
    if encoder.type != "video":
        raise SettingsError("codec", f"{codec!r}: not a video encoder")
    if encode.crf is not None and codec in CRF_RANGES:
        lo, hi = CRF_RANGES[codec]
        if not lo <= encode.crf <= hi:
            raise SettingsError("crf", f"must be {lo}-{hi} for {codec}, not {encode.crf}")
    names = [f.name for f in encoder.video_formats or ()]
    pix_fmt = encode.pix_fmt
    if pix_fmt is not None:
        if pix_fmt not in supported_pix_fmts():
            raise SettingsError(
                "pix_fmt",
                f"{pix_fmt!r}: not a pixel format this program writes (8-16 bit YUV, RGB or gray, "
                "e.g. yuv420p, yuv420p10le, yuv444p, gbrp)",
            )
        if names and pix_fmt not in names:
            usable = [n for n in names if n in supported_pix_fmts()]
            raise SettingsError("pix_fmt", f"{pix_fmt!r}: {codec} cannot code it; it takes {', '.join(usable)}")
    else:
        try:
            pix_fmt = output_pix_fmt(input_pix_fmt or "yuv420p", codec)
        except InputError:
            pix_fmt = next((n for n in names if n in supported_pix_fmts()), "yuv420p")
    options = _encoder_options(encode, codec)
    ctx = cast(av.video.codeccontext.VideoCodecContext, av.codec.CodecContext.create(codec, "w"))
    try:
        ctx.width, ctx.height = _PROBE_SIZE
        ctx.pix_fmt = pix_fmt
        ctx.time_base = Fraction(1, 25)
        ctx.framerate = Fraction(25)
        ctx.options = dict(options)
        ctx.open()
        unused = sorted(ctx.options)  # what avcodec_open2 left: options the encoder does not have
    except (av.error.FFmpegError, ValueError) as e:
        shown = ", ".join(f"{k}={v}" for k, v in options.items())
        raise SettingsError("options", f"{codec} refuses its settings ({shown}): {e}") from None
    finally:
        del ctx
    if unused:
        raise SettingsError(
            "options", f"{', '.join(unused)}: not an option of {codec} (see 'ffmpeg -h encoder={codec}')"
        )
    return codec


class FrameSink(Protocol):
    """Where restored pictures go, in order; opened with the first picture's description."""

    #: Output sizes are rounded up to these multiples (width, height): 4:2:0 encoders need even sizes.
    size_multiple: tuple[int, int]

    @property
    def copied_streams(self) -> frozenset[int]:
        """The input streams (by index) whose packets the output copies, once opened."""
        ...

    def send_packet(self, packet: Any) -> None:
        """A copied stream's packet, in file order."""
        ...

    def stop_at(self, end: float) -> None:
        """Copied packets from ``end`` seconds on are not kept (the end of a part of the input,
        once known)."""
        ...

    def open(
        self, first: av.VideoFrame, t: float, desc: ColourDescription, size: tuple[int, int], shifted: bool
    ) -> None:
        """Starts the output: the first kept picture (at ``t`` seconds), its colour description,
        the output size (width, height); ``shifted``: timestamps start from ``t``."""
        ...

    def write(self, index: int, frame: av.VideoFrame, rgb: torch.Tensor, alpha: torch.Tensor | None) -> None:
        """A restored picture (RGB float in [0, 1], C x H x W) of input frame ``index``."""
        ...

    def check(self) -> None:
        """Raises the sink's background error, if any."""
        ...

    def finish(self) -> None:
        """Flushes and closes the output."""
        ...

    def abort(self) -> None:
        """Stops without finishing (the caller removes the temporary output)."""
        ...


def check_video_output(inputs: Sequence[Path], dst: Path, force: bool) -> None:
    """Refuses an output that is an input, exists (without ``force``), has no folder or no known
    container.

    Raises:
        OutputError: naming the output and what is wrong.
    """
    if any(dst.resolve() == f.resolve() or (dst.exists() and dst.samefile(f)) for f in inputs):
        raise OutputError(f"{dst}: the output would overwrite the input")
    if dst.exists() and not force:
        raise OutputError(f"{dst}: already exists (pass --force to overwrite)")
    if not dst.parent.is_dir():
        raise OutputError(f"{dst.parent}: output folder does not exist")
    if dst.suffix.lower() not in MUXERS:
        raise OutputError(f"{dst}: unknown container {dst.suffix!r}; use one of {', '.join(sorted(MUXERS))}")


def check_image_output(inputs: Sequence[Path], out: ImageOutput, force: bool) -> None:
    """Refuses an output folder that holds the input, is a file, or is not empty (without force).

    Raises:
        OutputError: naming the folder and what is wrong.
    """
    folder = out.folder.resolve()
    if any(f.resolve().is_relative_to(folder) for f in inputs):
        raise OutputError(f"{out.folder}: the output folder holds the input, which it would replace")
    if not out.folder.parent.is_dir():
        raise OutputError(f"{out.folder.parent}: output folder does not exist")
    if out.folder.exists() and not out.folder.is_dir():
        raise OutputError(f"{out.folder}: exists and is not a folder")
    if out.folder.is_dir() and any(out.folder.iterdir()) and not force:
        raise OutputError(f"{out.folder}: the folder exists and is not empty (pass --force to replace it)")


def check_unique_names(sequence: ImageSequence, out: ImageOutput, stems: Sequence[str]) -> None:
    """Refuses an output sequence whose names (the input's stems) would collide."""
    seen: dict[str, Path] = {}
    for path, stem in zip(sequence.files, stems, strict=True):
        name = stem + out.suffix
        if name in seen:
            raise OutputError(f"{out.folder}: {seen[name].name} and {path.name} would both be written as {name}")
        seen[name] = path


# --- what travels on the encoder's queue -------------------------------------------------------------


@dataclass(frozen=True)
class _PictureToCode:
    """A restored picture to turn into a frame and encode; ``slot`` is released once it is coded."""

    build: Callable[[], av.VideoFrame]
    slot: threading.BoundedSemaphore


@dataclass(frozen=True)
class _PacketToMux:
    packet: Any
    stream_index: int


class _End:
    pass


_END = _End()
_Item = _PictureToCode | _PacketToMux | _End


def _encode(
    output: av.container.OutputContainer,
    stream: av.video.stream.VideoStream,
    streams: Mapping[int, Any],
    items: queue.Queue[_Item],
    errors: list[BaseException],
    log: list[tuple[int | None, int | None, int, Fraction | None]] | None = None,
) -> None:
    """Encodes restored frames and muxes them with the copied packets; the coded video packets'
    exact timestamps (the encoder's, before the muxer rounds them to its own time base) go to
    ``log``, if given."""

    def mux_video(packet: Any) -> None:
        if log is not None and packet.size:
            log.append((packet.pts, packet.dts, int(packet.duration or 0), packet.time_base))
        output.mux(packet)

    try:
        while True:
            item = items.get()
            if isinstance(item, _End):
                break
            if isinstance(item, _PictureToCode):
                try:
                    frame = item.build()
                finally:
                    item.slot.release()
                for packet in stream.encode(frame):
                    mux_video(packet)
            else:
                packet = item.packet
                packet.stream = streams[item.stream_index]
                output.mux(packet)
        for packet in stream.encode(None):
            mux_video(packet)
    except BaseException as e:
        errors.append(e)
        while not isinstance(item := items.get(), _End):  # keep the producer from blocking
            if isinstance(item, _PictureToCode):
                item.slot.release()


def _add_video_stream(
    output: av.container.OutputContainer,
    enc: EncodeSettings,
    width: int,
    height: int,
    desc: ColourDescription,
    dst: Path,
    *,
    rate: Fraction,
    time_base: Fraction | None,
    input_pix_fmt: str,
    metadata: Mapping[str, str],
) -> av.video.stream.VideoStream:
    codec = resolved_codec(enc, dst)
    try:
        av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        raise OutputError(f"{dst}: unknown encoder {codec!r} (see 'ffmpeg -encoders' for names)") from None
    options = _encoder_options(enc, codec)
    if codec not in CRF_RANGES and enc.crf is not None:
        log.warning("crf is ignored by %s", codec)
    try:
        stream = cast(av.video.stream.VideoStream, output.add_stream(codec, rate=rate, options=options))
    except (av.error.FFmpegError, ValueError) as e:
        raise OutputError(f"{dst}: cannot use encoder {codec!r} here ({e})") from None
    stream.width, stream.height = width, height
    stream.pix_fmt = enc.pix_fmt or output_pix_fmt(input_pix_fmt, codec)
    if time_base is not None:
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
    tag_codec_context(stream.codec_context, desc)
    # The pictures are turned upright before restoring (see the engine), so no rotation is written.
    stream.metadata.update({k: v for k, v in metadata.items() if k.lower() != "rotate"})
    return stream


def add_output_streams(
    input_: av.container.InputContainer,
    output: av.container.OutputContainer,
    video_index: int,
    add_video: Callable[[], av.video.stream.VideoStream],
) -> tuple[av.video.stream.VideoStream, dict[int, Any]]:
    """Adds the output streams in the input's order: the restored video in place of the source's,
    and a copy of every copyable stream that the output container accepts."""
    video: av.video.stream.VideoStream | None = None
    mapping: dict[int, Any] = {}
    copyable = {s.index for s in copyable_streams(input_, video_index)}
    for s in input_.streams:
        if s.index == video_index:
            video = add_video()
            continue
        if s.index not in copyable:
            continue
        try:
            o = output.add_stream_from_template(s)
        except (av.error.FFmpegError, ValueError, TypeError, NotImplementedError) as e:
            name = s.codec_context.name if s.codec_context else "?"
            log.warning("stream #%d (%s, %s) cannot be copied into this container: %s", s.index, s.type, name, e)
            continue
        if s.metadata:
            o.metadata.update(s.metadata)
        mapping[s.index] = o
    assert video is not None
    return video, mapping


def copy_chapters(input_: av.container.InputContainer, output: av.container.OutputContainer) -> None:
    """Copies the input's chapters into the output, where the container takes them."""
    chapters = getattr(input_, "chapters", None)
    setter = getattr(output, "set_chapters", None)
    if chapters is None or setter is None:
        return
    try:
        found = chapters()
        if found:
            setter(found)
    except (av.error.FFmpegError, ValueError, TypeError) as e:
        log.warning("chapters could not be copied: %s", e)


def keeps_packet(t: float | None, t0: float | None, t1: float | None) -> bool:
    """Whether a copied packet at ``t`` seconds (None: untimed) is inside the kept part [t0, t1)."""
    return t is None or not ((t0 is not None and t < t0 - 1e-6) or (t1 is not None and t >= t1))


def shift_packet(packet: Any, offset: float) -> None:
    """Moves a copied packet ``offset`` seconds earlier, as the restored video of a part is."""
    if not offset or packet.time_base is None:
        return
    delta = round(offset / float(packet.time_base))
    if packet.pts is not None:
        packet.pts -= delta
    if packet.dts is not None:
        packet.dts -= delta


def _shifted_pts(frame: av.VideoFrame, offset: float, time_base: Fraction | None) -> int | None:
    if frame.pts is None:
        return None
    if not offset or time_base is None:
        return int(frame.pts)
    return int(frame.pts) - round(offset / float(time_base))


def _code_in_producer(rgb: torch.Tensor) -> bool:
    """Whether a restored picture is coded to YUV in the restoring thread (see VideoSink.write)."""
    return rgb.device.type != "cpu"


class VideoSink:
    """Encodes restored frames (in a thread) into a new container, with a video input's other
    streams, chapters and metadata copied.

    Args:
        tmp: the file actually written (renamed into place by the caller when complete).
        dst: the output's name, for the container and messages.
        encode: the encoder settings.
        keep: (first, end) seconds of the copied streams' packets to keep; None is unbounded.
        video: the input's container and video stream whose other streams are copied, or None.
        rate, time_base: the output's frame rate and time base.
        offset: seconds subtracted from every timestamp; None: the first picture's time for a part
            of the input, else 0 (a job's segments are given the whole restore's offset).
        timestamps: receives each coded video packet's exact (pts, dts, duration, time base),
            which a container may round (a job's segments keep them beside the file).
    """

    size_multiple = (2, 2)  # 4:2:0 encoders need even sizes

    def __init__(
        self,
        tmp: Path,
        dst: Path,
        encode: EncodeSettings,
        keep: tuple[float | None, float | None],
        video: tuple[av.container.InputContainer, av.video.stream.VideoStream] | None,
        rate: Fraction,
        time_base: Fraction | None,
        offset: float | None = None,
        timestamps: list[tuple[int | None, int | None, int, Fraction | None]] | None = None,
    ) -> None:
        self.dst, self.encode, self.keep, self.video = dst, encode, keep, video
        self.given_offset = offset
        self.timestamps = timestamps
        self.rate, self.time_base = rate, time_base
        try:
            self.output = av.open(str(tmp), "w", format=MUXERS.get(dst.suffix.lower()))
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"{dst}: cannot write this container ({e})") from None
        if video is not None:
            self.output.metadata.update(video[0].metadata)
            copy_chapters(video[0], self.output)
        self.mapping: dict[int, Any] = {}
        self.offset: float | None = None  # seconds subtracted from every kept timestamp
        self.early_packets: list[Any] = []
        self.items: queue.Queue[_Item] = queue.Queue(maxsize=16)
        # Restored pictures waiting to be coded as frames (float RGB at output size: bounded apart).
        self.converting = threading.BoundedSemaphore(3)
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None
        self.desc: ColourDescription | None = None
        self.stream: av.video.stream.VideoStream | None = None

    @property
    def copied_streams(self) -> frozenset[int]:
        return frozenset(self.mapping)

    def stop_at(self, end: float) -> None:
        t0, t1 = self.keep
        self.keep = (t0, end if t1 is None else min(t1, end))

    def send_packet(self, packet: Any) -> None:
        """A copied stream's packet: kept if inside the range, shifted like the video."""
        t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
        if not keeps_packet(t, *self.keep):
            return
        if self.offset is None:
            self.early_packets.append(packet)
            return
        if packet.stream.index not in self.mapping:
            return  # a stream this container cannot hold (warned about once)
        shift_packet(packet, self.offset)
        self.items.put(_PacketToMux(packet, packet.stream.index))

    def open(
        self, first: av.VideoFrame, t: float, desc: ColourDescription, size: tuple[int, int], shifted: bool
    ) -> None:
        self.desc = desc

        def add() -> av.video.stream.VideoStream:
            return _add_video_stream(
                self.output,
                self.encode,
                size[0],
                size[1],
                desc,
                self.dst,
                rate=self.rate,
                time_base=self.time_base,
                input_pix_fmt=(
                    (self.video[1].codec_context.pix_fmt or "yuv420p") if self.video else first.format.name
                ),
                metadata=dict(self.video[1].metadata) if self.video else {},
            )

        if self.video is not None:
            self.stream, streams = add_output_streams(self.video[0], self.output, self.video[1].index, add)
            self.mapping.update(streams)
        else:
            self.stream = add()
        self.offset = self.given_offset if self.given_offset is not None else (t if shifted else 0.0)
        if shifted and self.keep[0] is None:  # a part given in frames: its audio starts with its first frame
            self.keep = (t, self.keep[1])
        self.thread = threading.Thread(
            target=_encode,
            args=(self.output, self.stream, self.mapping, self.items, self.errors, self.timestamps),
            name="encode",
            daemon=True,
        )
        self.thread.start()
        for p in self.early_packets:
            self.send_packet(p)
        self.early_packets.clear()

    def write(self, index: int, frame: av.VideoFrame, rgb: torch.Tensor, alpha: torch.Tensor | None) -> None:
        """Queues a restored picture for the encode thread. A picture on the CPU is coded (RGB ->
        YUV) there too, so that the conversion overlaps the model's next batch instead of following
        it; one on a GPU is coded here, on the GPU (a few kernels), so that only the 8/16-bit codes
        cross to the CPU (an eighth of the float picture at 8 bits) and the encode thread, which
        bounds a GPU run's speed, is left with the encoder alone."""
        assert self.stream is not None and self.desc is not None
        desc, pix_fmt, time_base = self.desc, self.stream.pix_fmt or "yuv420p", self.time_base
        pts = _shifted_pts(frame, self.offset or 0.0, time_base)
        coded = output_planes(rgb, desc, pix_fmt, alpha) if _code_in_producer(rgb) else None

        def build() -> av.VideoFrame:
            codes = coded if coded is not None else output_planes(rgb, desc, pix_fmt, alpha)
            out = planes_to_frame(codes, desc, pix_fmt)
            out.pts = pts
            if time_base is not None:
                out.time_base = time_base
            return out

        while not self.converting.acquire(timeout=0.5):
            self.check()
        self.items.put(_PictureToCode(build, self.converting))

    def check(self) -> None:
        if self.errors:
            raise self.errors[0]

    def finish(self) -> None:
        self.items.put(_END)
        assert self.thread is not None
        self.thread.join()
        self.check()
        self.output.close()

    def abort(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            drain(self.items)
            self.items.put(_END)
            self.thread.join(timeout=30)
        with contextlib.suppress(av.error.FFmpegError, OSError):
            self.output.close()


class ImageSink:
    """Writes restored frames as images into a (temporary) folder: 16-bit PNG/TIFF from inputs of
    more than 8 bits, 8-bit otherwise; names from ``out`` (see :class:`ImageOutput`)."""

    size_multiple = (1, 1)

    def __init__(self, folder: Path, out: ImageOutput, stems: Sequence[str] | None) -> None:
        self.folder, self.out, self.stems = folder, out, stems
        self.dtype: type[np.generic] = np.uint8

    copied_streams: frozenset[int] = frozenset()

    def send_packet(self, packet: Any) -> None:  # pragma: no cover - image outputs copy no stream
        pass

    def stop_at(self, end: float) -> None:
        pass

    def open(
        self, first: av.VideoFrame, t: float, desc: ColourDescription, size: tuple[int, int], shifted: bool
    ) -> None:
        bits = max(c.bits for c in first.format.components)
        deep = bits > 8 and self.out.suffix in (".png", ".tif", ".tiff")
        self.dtype = np.uint16 if deep else np.uint8

    def write(self, index: int, frame: av.VideoFrame, rgb: torch.Tensor, alpha: torch.Tensor | None) -> None:
        pixels = from_tensor(rgb.cpu(), self.dtype)
        a = None
        if alpha is not None:
            a = from_tensor(alpha.expand(3, -1, -1), self.dtype)[:, :, 0]
        write_image(self.folder / self.out.name(index, self.stems), pixels, a)

    def check(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass

