"""The end of a job: its segments joined by stream copy, in order, with the input's audio,
subtitle and data streams, chapters and metadata, into the output, written under a temporary
name and renamed into place when complete.

Segments carry the final timestamps (shifted for a partial restore), so joining them copies
packets as they are; the input's other streams are copied as the streaming restore copies them
(the same range and shift, :class:`~mmrealsr_video.io.sink.VideoSink` rules), read until every one
of them has passed the end of the range. Packets are interleaved by time as they are read, so
memory stays flat however long the film.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.io.files import atomic_output
from mmrealsr_video.io.sink import MUXERS, add_output_streams, copy_chapters, keeps_packet, shift_packet
from mmrealsr_video.io.source import copyable_streams
from mmrealsr_video.io.video import open_video
from mmrealsr_video.jobs.segment import read_timestamps, timestamps_path

__all__ = ["join_segments"]


def _time(packet: Any) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base) if ts is not None and packet.time_base else 0.0


def _segment_packets(segments: Sequence[Path]) -> Iterator[tuple[float, int, Any, Any]]:
    """(time, order, packet, extradata) of every video packet of the segments, in order, each
    given back the exact timestamps the encoder gave it (kept beside the segment)."""
    order = itertools.count()
    for path in segments:
        time_base, stamps = read_timestamps(
            timestamps_path(path)
        )
        try:
            with av.open(str(path)) as c:
                if not c.streams.video:
                    raise InputError(f"{path}: a segment without video; the job folder is damaged")
                stream = c.streams.video[0]
                extradata = stream.codec_context.extradata
                packets = (p for p in c.demux(stream) if p.size)
                for packet, (pts, dts, duration) in itertools.zip_longest(packets, stamps):
                    if packet is None or (pts is None and dts is None and duration is None):
                        raise InputError(
                            f"{path}: its packets and its timestamps do not match; run again to redo it"
                        )
                    packet.time_base = time_base
                    packet.pts, packet.dts, packet.duration = pts, dts, duration
                    yield _time(packet), next(order), packet, extradata
        except av.error.FFmpegError as e:
            raise InputError(f"{path}: a damaged segment ({e}); run again to redo it") from None


def _copied_packets(
    container: av.container.InputContainer,
    streams: list[Any],
    keep: tuple[float | None, float | None],
    offset: float,
) -> Iterator[tuple[float, int, Any]]:
    """(output time, order, packet) of the copied streams' packets in ``keep`` (seconds, [t0, t1)),
    shifted by ``offset``; stops once every stream has passed the end."""
    if not streams:
        return
    t0, t1 = keep
    order = itertools.count(start=1 << 40)
    passed: set[int] = set()
    for packet in container.demux(streams):
        if packet.dts is None or not packet.size:
            continue
        t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
        if t1 is not None and t is not None and t >= t1:
            passed.add(packet.stream.index)
            if len(passed) == len(streams):
                return
            continue
        if not keeps_packet(t, t0, t1):
            continue
        shift_packet(packet, offset)
        yield _time(packet), next(order), packet


def join_segments(
    source: Path,
    output: Path,
    segments: Sequence[Path],
    *,
    keep: tuple[float | None, float | None],
    offset: float,
    force: bool,
) -> None:
    """Writes ``output`` from the segments and ``source``'s other streams in ``keep`` (seconds,
    [t0, t1); None: unbounded), shifted by ``offset`` (see the module).

    Raises:
        InputError: a missing or damaged segment.
        OutputError: the output cannot be written, or exists (without ``force``) at the rename.
    """
    if not segments:
        raise InputError(f"{source}: no segment to join")
    time_base, _ = read_timestamps(
        timestamps_path(segments[0])
    )
    container, vstream = open_video(source)
    try:
        with av.open(str(segments[0])) as first:
            template = first.streams.video[0]
            with atomic_output(output, force=force) as tmp:
                try:
                    out = av.open(str(tmp), "w", format=MUXERS.get(output.suffix.lower()))
                except (av.error.FFmpegError, ValueError) as e:
                    raise OutputError(f"{output}: cannot write this container ({e})") from None
                try:
                    _join(container, vstream, out, template, time_base, segments, keep, offset)
                finally:
                    out.close()
    except av.error.FFmpegError as e:
        raise OutputError(f"{output}: writing failed ({e})") from None
    finally:
        container.close()


def _join(
    container: av.container.InputContainer,
    vstream: av.video.stream.VideoStream,
    out: av.container.OutputContainer,
    template: Any,
    time_base: Fraction,
    segments: Sequence[Path],
    keep: tuple[float | None, float | None],
    offset: float,
) -> None:
    out.metadata.update(container.metadata)
    copy_chapters(container, out)
    video_out: list[Any] = []

    def add_video() -> Any:
        stream = out.add_stream_from_template(template)
        # The encoder's time base (the input's), as a single pass sets it: containers that derive
        # their frame rate from it (AVI) need it, and the others keep the timestamps exact.
        stream.time_base = time_base
        # The pictures were turned upright, so the input's rotation is not carried over.
        stream.metadata.update({k: v for k, v in vstream.metadata.items() if k.lower() != "rotate"})
        video_out.append(stream)
        return stream

    copied = copyable_streams(container, vstream.index)
    _, mapping = add_output_streams(container, out, vstream.index, add_video)
    kept = [s for s in copied if s.index in mapping]
    reference = template.codec_context.extradata
    video = ((t, k, ("video", p, x)) for t, k, p, x in _segment_packets(segments))
    others = ((t, k, ("copy", p, None)) for t, k, p in _copied_packets(container, kept, keep, offset))
    for _, _, (kind, packet, extradata) in heapq.merge(video, others, key=lambda item: (item[0], item[1])):
        if kind == "video":
            if extradata != reference:
                raise OutputError(
                    f"{out.name}: segments were coded with different encoder headers; they cannot be "
                    "joined by stream copy (was the job resumed with another FFmpeg?); run with --restart"
                )
            packet.stream = video_out[0]
        else:
            packet.stream = mapping[packet.stream.index]
        out.mux(packet)
