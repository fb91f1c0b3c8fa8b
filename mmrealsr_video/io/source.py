"""Frame sources: where pictures come from, decoded in a background thread into a bounded queue.

A :class:`FrameSource` yields ``(index, time, picture)`` in presentation order; a video file's other
streams (audio, subtitles, data) come along as packets, handed to ``on_packet`` in file order so
that a sink can copy them. :func:`open_source` opens a video file or an image sequence;
:func:`decoded_frames` gives any source's frames as 8-bit RGB, as the analysis sees them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, cast

import av
import av.error

from mmrealsr_video.errors import InputError
from mmrealsr_video.io.colour import ColourDescription, frame_to_tensor, to_rgb8
from mmrealsr_video.io.sequences import ImageSequence, as_rate, find_sequence, is_sequence, read_frames
from mmrealsr_video.io.video import DecodedFrame, Orientation, as_fraction, check_complete, open_video

__all__ = [
    "MAX_INTERLEAVE_LAG",
    "FrameSource",
    "SequenceSource",
    "VideoSource",
    "copyable_streams",
    "decoded_frames",
    "drain",
    "open_source",
]

#: Pictures and packets waiting between the decoding thread and the consumer.
_QUEUE_SIZE = 16
#: How far (seconds) a file is read past the end of a part for the copied streams' last packets:
#: muxers store a stream's packets up to this much later than the video's of the same time
#: (FFmpeg's ``max_interleave_delta`` default), and a sparse stream (subtitles) may have none after.
MAX_INTERLEAVE_LAG = 10.0


# --- what travels on a source's queue ---------------------------------------------------------------


@dataclass(frozen=True)
class _Picture:
    frame: av.VideoFrame


@dataclass(frozen=True)
class _Packet:
    packet: Any  # av.Packet of a copied stream


@dataclass(frozen=True)
class _Failure:
    error: BaseException


@dataclass(frozen=True)
class _Position:
    """A video packet demuxed but not decoded (once the pictures are no longer wanted): how far
    the file has been read, in seconds."""

    seconds: float | None


class _End:
    """The producer is done (after the last item, or after a failure)."""


_END = _End()
_Item = _Picture | _Packet | _Failure | _Position | _End


class FrameSource(Protocol):
    """Pictures in presentation order, with what a sink and the engine need to know of them."""

    #: Receives the other streams' packets, in file order, as they are demuxed.
    on_packet: Callable[[Any], None]

    @property
    def name(self) -> str:
        """The input's name, for messages."""
        ...

    @property
    def fps(self) -> float | None:
        """The declared frame rate, when there is one."""
        ...

    @property
    def rate(self) -> Fraction:
        """The rate an output is timed at."""
        ...

    @property
    def time_base(self) -> Fraction | None: ...

    @property
    def total(self) -> int | None:
        """Frames, as declared."""
        ...

    @property
    def duration(self) -> float | None:
        """Seconds, as declared."""
        ...

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the coded pictures, as declared."""
        ...

    @property
    def video(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream] | None:
        """A video file's container and stream (a video sink copies its other streams), else None."""
        ...

    def frames(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        """``(index, seconds, picture)`` of every frame, from the first."""
        ...

    def complete(self, last_time: float) -> None:
        """Raises :class:`InputError` if the frames ended before the source declares it ends."""
        ...

    def read_packets_until(self, end: float, streams: frozenset[int]) -> None:
        """After ``frames()`` was left early (a part of the input): goes on reading, without
        decoding pictures, so that ``on_packet`` also gets the packets that the file stores after
        the part's last picture, until each of ``streams`` has one at ``end`` seconds or later, the
        file has been read :data:`MAX_INTERLEAVE_LAG` seconds past ``end``, or it ends."""
        ...

    def close(self) -> None:
        """Stops the reading thread (idempotent); the caller closes what it opened."""
        ...


def drain(q: queue.Queue[Any] | None) -> None:
    """Empties a queue without blocking."""
    if q is None:
        return
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _stop_thread(thread: threading.Thread, stop: threading.Event, items: queue.Queue[Any]) -> None:
    """Stops a producer thread that may be blocked on a full queue."""
    stop.set()
    if not thread.is_alive():
        drain(items)
        return
    deadline = time.monotonic() + 30
    while thread.is_alive() and time.monotonic() < deadline:
        drain(items)
        thread.join(timeout=0.05)
    drain(items)


def _consume(items: queue.Queue[_Item], on_packet: Callable[[Any], None]) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yields decoded pictures with their index; passes copied packets on as they come."""
    index = 0
    while True:
        item = items.get()
        if isinstance(item, _End):
            return
        if isinstance(item, _Failure):
            raise item.error
        if isinstance(item, _Packet):
            on_packet(item.packet)
            continue
        if isinstance(item, _Position):
            continue
        yield index, item.frame
        index += 1


def _seconds(pts: int | None, time_base: Any) -> float | None:
    return float(pts * time_base) if pts is not None and time_base else None


def copyable_streams(container: av.container.InputContainer, video_index: int) -> list[Any]:
    """The input streams whose packets are copied: every audio, subtitle and data stream."""
    return [s for s in container.streams if s.index != video_index and s.type in ("audio", "subtitle", "data")]


def _demux(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    copied: list[Any],
    out: queue.Queue[_Item],
    stop: threading.Event,
    pictures_done: threading.Event,
) -> None:
    """Demuxes every stream; decoded video frames and copied packets go to ``out`` in file order.
    Once ``pictures_done`` is set, video packets are no longer decoded, only their times passed on."""
    try:
        for packet in container.demux([video, *copied]):
            if stop.is_set():
                break
            if packet.stream.index == video.index:
                if pictures_done.is_set():
                    out.put(_Position(_seconds(packet.dts, packet.time_base)))
                    continue
                for frame in packet.decode():
                    out.put(_Picture(cast(av.VideoFrame, frame)))
            elif packet.dts is not None and packet.size:
                out.put(_Packet(packet))
    except av.error.FFmpegError as e:
        out.put(
            _Failure(InputError(f"{container.name}: decoding failed ({e}); the file may be truncated or corrupt"))
        )
    except BaseException as e:  # pragma: no cover - surfaced in the consuming thread
        out.put(_Failure(e))
    finally:
        out.put(_END)


class VideoSource:
    """A video file's frames, decoded in a thread; with ``copy_streams`` its other streams'
    packets go to ``on_packet``."""

    def __init__(
        self,
        container: av.container.InputContainer,
        vstream: av.video.stream.VideoStream,
        *,
        copy_streams: bool,
    ) -> None:
        ctx = vstream.codec_context
        if not ctx.width or not ctx.height:
            raise InputError(f"{container.name}: the video stream has no picture size")
        self.video = (container, vstream)
        self.name = container.name
        self.fps = float(vstream.average_rate) if vstream.average_rate else None
        self.rate = as_fraction(vstream.average_rate or vstream.guessed_rate) or Fraction(25)
        self.time_base = as_fraction(vstream.time_base)
        self.total = int(vstream.frames) or None
        self.duration: float | None = None
        if vstream.duration is not None and vstream.time_base is not None:
            self.duration = float(vstream.duration * vstream.time_base)
        elif container.duration is not None:
            self.duration = container.duration / av.time_base
        self.size: tuple[int, int] | None = (ctx.width, ctx.height)
        self.on_packet: Callable[[Any], None] = lambda _packet: None
        copied = copyable_streams(container, vstream.index) if copy_streams else []
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._stop = threading.Event()
        self._pictures_done = threading.Event()
        self._thread = threading.Thread(
            target=_demux,
            args=(container, vstream, copied, self._queue, self._stop, self._pictures_done),
            name="decode",
            daemon=True,
        )

    def frames(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        self._thread.start()
        for index, frame in _consume(self._queue, self.on_packet):
            t = (
                float(frame.pts * frame.time_base)
                if frame.pts is not None and frame.time_base
                else index / (self.fps or 25)
            )
            yield index, t, frame

    def complete(self, last_time: float) -> None:
        container, vstream = self.video
        check_complete(container, vstream, last_time + 1 / (self.fps or 25.0), self.name)

    def read_packets_until(self, end: float, streams: frozenset[int]) -> None:
        if not streams or self._thread.ident is None:  # never started: nothing was read
            return
        self._pictures_done.set()
        waiting = set(streams)
        read = end
        while waiting and read < end + MAX_INTERLEAVE_LAG:
            item = self._queue.get()
            if isinstance(item, _End | _Failure):  # a file damaged past the part does not spoil it
                return
            if isinstance(item, _Packet):
                self.on_packet(item.packet)
                t = _seconds(item.packet.pts, item.packet.time_base)
                if t is not None:
                    read = max(read, t)
                    if t >= end:
                        waiting.discard(item.packet.stream.index)
            elif isinstance(item, _Position) and item.seconds is not None:
                read = max(read, item.seconds)

    def close(self) -> None:
        _stop_thread(self._thread, self._stop, self._queue)


class SequenceSource:
    """An image sequence's frames, read in a thread, timed at ``rate``."""

    def __init__(self, sequence: ImageSequence, rate: Fraction) -> None:
        self.video = None
        self.name = sequence.source
        self.fps: float | None = float(rate)
        self.rate = rate
        self.time_base: Fraction | None = 1 / rate
        self.total: int | None = len(sequence)
        self.duration: float | None = float(len(sequence) / rate)
        self.size: tuple[int, int] | None = None
        self.on_packet: Callable[[Any], None] = lambda _packet: None
        self.sequence = sequence
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="read", daemon=True)

    def _read(self) -> None:
        try:
            for _, frame in read_frames(self.sequence, self.rate, stop=self._stop):
                self._queue.put(_Picture(frame))
        except BaseException as e:
            self._queue.put(_Failure(e))
        finally:
            self._queue.put(_END)

    def frames(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        self._thread.start()
        for index, frame in _consume(self._queue, self.on_packet):
            yield index, float(index / self.rate), frame

    def complete(self, last_time: float) -> None:
        """Nothing to check: a sequence has no declared length."""

    def read_packets_until(self, end: float, streams: frozenset[int]) -> None:
        """Nothing to read: a sequence has no other streams."""

    def close(self) -> None:
        _stop_thread(self._thread, self._stop, self._queue)


class _OpenedVideo(VideoSource):
    """A :class:`VideoSource` that owns its container and closes it."""

    def close(self) -> None:
        super().close()
        self.video[0].close()


def open_source(
    source: str | Path, *, fps: float | Fraction | str | None = None, copy_streams: bool = False
) -> FrameSource:
    """Opens a video file or an image sequence (a folder, ``frames/%05d.png`` or ``frames/*.png``).

    Args:
        source: the input.
        fps: an image sequence's frame rate (default 25); refused for a video, which keeps its own.
        copy_streams: pass a video's other streams' packets to ``on_packet``.

    Returns:
        The source; ``close()`` it (it closes the file).

    Raises:
        InputError: no such input, not a video, no video stream.
        SettingsError: ``fps`` given for a video.
    """
    if is_sequence(source):
        return SequenceSource(find_sequence(source), as_rate(fps))
    if fps is not None:
        from mmrealsr_video.errors import SettingsError

        raise SettingsError("fps", f"sets an image sequence's frame rate; {source} is a video and keeps its own")
    container, vstream = open_video(source)
    try:
        return _OpenedVideo(container, vstream, copy_streams=copy_streams)
    except BaseException:
        container.close()
        raise


def decoded_frames(src: FrameSource) -> Iterator[DecodedFrame]:
    """Every frame of ``src`` as 8-bit RGB with its time, as the analysis sees it: converted with
    the first frame's colour description and turned upright (see :class:`Orientation`), exactly as
    the engine converts the frames it restores. Checks that a video is complete; closes ``src``.

    Raises:
        InputError: no decodable frame, or a file that breaks off (names the file).
    """
    desc: ColourDescription | None = None
    orientation = Orientation()
    last: float | None = None
    try:
        for index, t, frame in src.frames():
            if desc is None:
                desc = ColourDescription.from_frame(frame)
                orientation = Orientation.of(frame)
            rgb, _ = frame_to_tensor(frame, desc)
            last = t
            yield DecodedFrame(index, t, to_rgb8(orientation.apply(rgb)))
        if last is None:
            raise InputError(f"{src.name}: the video stream holds no decodable frame")
        src.complete(last)
    finally:
        src.close()
