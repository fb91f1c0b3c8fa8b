"""A resumable restore: the job folder beside the output, its manifest, the chunks and the final join.

::

    job = RestoreJob("film.mkv", "film_x4.mkv", RestoreSettings(device="cuda"), JobSettings(workers=2))
    summary = job.run()          # again after a crash: resumes where the manifest says

A job first decides every frame's coefficients (the analysis of the kept frames, a track, keyframes
and fixed values: one track, kept in the folder), then plans chunks at scene cuts, restores each
chunk into its own segment (on local workers or Ray actors), and at the end joins the segments by
stream copy with the input's other streams, renames the result into place and removes the folder.
The output is the same whichever way the job got there: interrupted and resumed, on one worker or
many, locally or on a cluster.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from mmrealsr_video._version import __version__
from mmrealsr_video.errors import InputError, OutputError, SettingsError
from mmrealsr_video.io.sink import EncodeSettings, check_encoder, check_video_output, resolved_codec
from mmrealsr_video.io.source import open_source
from mmrealsr_video.jobs.chunks import DEFAULT_CHUNK_FRAMES, plan_chunks
from mmrealsr_video.jobs.concat import join_segments
from mmrealsr_video.jobs.manifest import (
    ChunkRecord,
    Manifest,
    file_sha256,
    input_fingerprint,
    model_fingerprint,
    settings_record,
)
from mmrealsr_video.jobs.segment import (
    TIMESTAMPS_SUFFIX,
    SegmentResult,
    SegmentSpec,
    segment_sha256,
    timestamps_path,
)
from mmrealsr_video.models.loader import ModulatedModel, load_model
from mmrealsr_video.passes import FrameRange, PassResult, RestoreSummary, planned_track, summarize
from mmrealsr_video.plan.keyframes import parse_keyframes
from mmrealsr_video.plan.track import CoefficientTrack
from mmrealsr_video.preflight import check_before_work, check_save_track
from mmrealsr_video.settings import RestoreSettings

__all__ = ["ENCODER_THREADS", "JobSettings", "RestoreJob", "job_folder"]

log = logging.getLogger(__name__)

#: Threads each segment's encoder uses, the same on every machine: x264's output depends on its
#: thread count, and a job's segments must not depend on where they were made. Parallelism comes
#: from running chunks side by side (``workers``).
ENCODER_THREADS = 2
_TRACK = "track.json"
_LOCK = "lock"


@dataclass(frozen=True)
class JobSettings:
    """How a job runs; none of it changes the output except ``chunk_frames``.

    Attributes:
        workers: chunks restored and coded at once (threads sharing one model per device).
        ray: run the chunks on Ray actors: ``True`` for a local Ray instance, an address
            (``"ray://head:10001"`` or ``"auto"``) for a cluster; needs the ``ray`` extra.
        chunk_frames: frames per chunk at most (cut at scene cuts, long scenes split).
        keep_job: keep the job folder after the output is written.
        restart: discard an existing job folder for this output and start over.
        folder: the job folder; default ``.NAME.job`` beside the output (with Ray, on storage
            every worker sees).
    """

    workers: int = 1
    ray: bool | str = False
    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    keep_job: bool = False
    restart: bool = False
    folder: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or self.workers < 1:
            raise SettingsError("workers", f"must be at least 1, not {self.workers!r}")
        if self.chunk_frames < 1:
            raise SettingsError("chunk_frames", f"must be at least 1, not {self.chunk_frames}")


def job_folder(output: Path, folder: Path | None = None) -> Path:
    """The job folder of an output: ``.NAME.job`` beside it unless given."""
    return folder if folder is not None else output.with_name(f".{output.name}.job")


class RestoreJob:
    """A restore of a video file into a video file, as a resumable job (see the module's docstring).

    Raises (from :meth:`run`):
        InputError: unreadable input, or a job folder made for another input, model or settings
            (names what changed; ``restart`` starts over).
        OutputError: the output exists (without ``force``), a segment cannot be written (a full
            disk: the job resumes once there is room).
    """

    def __init__(
        self,
        source: str | Path,
        output: str | Path,
        settings: RestoreSettings | None = None,
        job: JobSettings | None = None,
    ) -> None:
        self.source = Path(source)
        self.output = Path(output)
        self.settings = settings or RestoreSettings()
        self.job = job or JobSettings()
        self.folder = job_folder(self.output, self.job.folder)

    # -- the steps ----------------------------------------------------------------------------------

    def run(self) -> RestoreSummary:
        """Plans (or resumes), restores every chunk not done, joins, renames into place."""
        t0 = time.perf_counter()
        self._preflight()
        if self.job.restart and self.folder.exists():
            log.info("%s: starting over (--restart)", self.folder)
            shutil.rmtree(self.folder)
        created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            manifest, track, resumed = self._run_locked()
        except BaseException as e:
            # A job this run began is removed when it cannot be resumed usefully: stopped before its
            # plan was saved, or refused by the input (bad or damaged: running again cannot help).
            planned = (self.folder / Manifest.NAME).exists()
            if created and not self.job.keep_job and (not planned or isinstance(e, InputError)):
                shutil.rmtree(self.folder, ignore_errors=True)
            raise
        if not self.job.keep_job:
            shutil.rmtree(self.folder, ignore_errors=True)
        width, height = _size_of(self.output)
        result = PassResult(track.frames, len(track), width, height)
        return summarize(
            self.output, result, time.perf_counter() - t0, chunks=len(manifest.chunks), resumed=resumed
        )

    def _run_locked(self) -> tuple[Manifest, CoefficientTrack, int]:
        s = self.settings
        with self._locked():
            model = load_model(s.model, device=s.device, dtype=s.dtype)
            manifest, track = self._prepare(model)
            pending = [c for c in manifest.chunks if c.state != "done"]
            resumed = len(manifest.chunks) - len(pending)
            if resumed:
                log.info(
                    "%s: resuming, %d of %d chunks already done", self.folder, resumed, len(manifest.chunks)
                )
            try:
                self._restore(manifest, track, model, pending)
            except (OutputError, OSError) as e:
                raise OutputError(
                    f"{e}. The job folder {self.folder} keeps every finished chunk: once there is room "
                    "(or the problem is fixed), run the same command again to resume"
                ) from None
            offset = self._offset(track)
            rng = FrameRange(s)
            start = rng.t0 if rng.t0 is not None else (offset if rng.shifted else None)
            end = manifest.extra.get("end_time")
            join_segments(
                self.source,
                self.output,
                [self.folder / c.file for c in manifest.chunks if c.file is not None],
                keep=(start, end),
                offset=offset,
                force=s.force,
            )
            if s.save_track is not None:
                track.save(s.save_track, force=s.force)
        return manifest, track, resumed

    def _preflight(self) -> None:
        """Everything that can be checked before a job folder is made or a frame decoded."""
        s = self.settings
        if not self.source.is_file():
            raise InputError(f"{self.source}: no such file")
        check_video_output([self.source], self.output, s.force)
        check_save_track(s, [self.source], self.output, None)
        keys = parse_keyframes(s.keyframes) if s.keyframes is not None else None
        track = CoefficientTrack.load(s.track) if s.track is not None else None
        src = open_source(self.source, fps=s.fps)  # refuses an image sequence's frame rate for a video
        try:
            video = src.video
            check_encoder(
                s.encode, self.output, video[1].codec_context.pix_fmt if video is not None else None
            )
            check_before_work(src, s, FrameRange(s), keys, track)
        finally:
            src.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One run per job folder at a time (an advisory lock, released when the process ends)."""
        path = self.folder / _LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputError(
                    f"{self.folder}: another run is working on this job right now; wait for it, or stop it"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)

    def _prepare(self, model: ModulatedModel) -> tuple[Manifest, CoefficientTrack]:
        """The manifest and track of this job: read back and checked, or made (analysis, plan)."""
        s = self.settings
        fresh = Manifest(
            input=input_fingerprint(self.source),
            settings=settings_record(s, output_suffix=self.output.suffix, chunk_frames=self.job.chunk_frames),
            model=model_fingerprint(s.model),
            track_sha256="",
            chunks=[],
            tool=_tool(),
        )
        track_path = self.folder / _TRACK
        if (self.folder / Manifest.NAME).exists():
            old = Manifest.load(self.folder)
            why = old.differences(fresh)
            if why:
                raise InputError(
                    f"{self.folder}: this job was started with another input, model or settings: "
                    + "; ".join(why)
                    + ". Run the same command as before to finish it, or add --restart to start over."
                )
            if not track_path.is_file() or file_sha256(track_path) != old.track_sha256:
                raise InputError(
                    f"{track_path}: the job's track is missing or damaged; add --restart to start over"
                )
            self._check_segments(old)
            return old, CoefficientTrack.load(track_path)
        track, end_time = planned_track(self.source, model, s)
        track.save(track_path, force=True)
        fresh.extra = {"end_time": end_time}
        chunks = plan_chunks(track, self.job.chunk_frames)
        fresh.track_sha256 = file_sha256(track_path)
        fresh.chunks = [ChunkRecord(c.number, c.first, c.end, c.start) for c in chunks]
        fresh.save(self.folder)
        log.info(
            "%s: %d frames in %d scenes, %d chunks", self.folder, len(track), len(track.scenes()), len(chunks)
        )
        return fresh, track

    def _check_segments(self, manifest: Manifest) -> None:
        """Keeps the done chunks whose segment is there, whole; the others are done again. Removes
        what an interrupted run left: temporary segments, and segments no chunk records."""
        changed = False
        for c in manifest.chunks:
            if c.state != "done":
                continue
            path = self.folder / (c.file or "")
            whole = c.file and path.is_file() and path.stat().st_size == c.size
            if not (
                whole
                and timestamps_path(path).is_file()
                and segment_sha256(path) == c.sha256
            ):
                log.warning(
                    "%s: chunk %d's segment is missing or damaged; it is done again", self.folder, c.number
                )
                c.state, c.file, c.size, c.sha256 = "pending", None, None, None
                changed = True
        recorded = {c.chunk.name for c in manifest.chunks if c.state == "done"}
        for p in sorted(self.folder.iterdir()):
            name = p.name.removesuffix(TIMESTAMPS_SUFFIX).removesuffix(self.output.suffix)
            leftover = ".partial" in p.name or (p.name.startswith("chunk-") and name not in recorded)
            if leftover:
                log.info("%s: removing %s, left by an interrupted run", self.folder, p.name)
                p.unlink(missing_ok=True)
        if changed:
            manifest.save(self.folder)

    def _offset(self, track: CoefficientTrack) -> float:
        """Seconds subtracted from every timestamp: the first kept frame's, for a part of the input."""
        return track.frames[0].pts_time if FrameRange(self.settings).shifted else 0.0

    def _specs(self, track: CoefficientTrack, records: list[ChunkRecord]) -> list[SegmentSpec]:
        s = self.settings
        enc = s.encode
        codec = resolved_codec(enc, self.output)
        options = dict(enc.options)
        options.setdefault("threads", str(ENCODER_THREADS))
        encode = EncodeSettings(
            codec=codec, crf=enc.crf, preset=enc.preset, pix_fmt=enc.pix_fmt, options=options
        )
        offset = self._offset(track)
        return [
            SegmentSpec(
                source=self.source,
                folder=self.folder,
                chunk=r.chunk,
                records=track.frames[r.start : r.start + (r.end - r.first)],
                model_name=track.model,
                settings=replace(s, force=True),
                encode=encode,
                offset=offset,
                suffix=self.output.suffix.lower(),
            )
            for r in records
        ]

    def _restore(
        self, manifest: Manifest, track: CoefficientTrack, model: ModulatedModel, pending: list[ChunkRecord]
    ) -> None:
        if not pending:
            return
        specs = self._specs(track, pending)
        lock = threading.Lock()
        by_number = {c.number: c for c in manifest.chunks}

        def done(result: SegmentResult) -> None:
            with lock:
                c = by_number[result.number]
                c.state, c.file, c.size, c.sha256 = "done", result.file, result.size, result.sha256
                manifest.save(self.folder)

        total = sum(s.chunk.frames for s in specs)
        if self.job.ray:
            from mmrealsr_video.jobs.ray_backend import run_on_ray

            run_on_ray(specs, self.job, done, address=None if self.job.ray is True else str(self.job.ray))
        else:
            from mmrealsr_video.jobs.workers import run_locally

            run_locally(specs, model, self.job.workers, done, total=total, progress=self.settings.progress)


def _size_of(path: Path) -> tuple[int, int]:
    src = open_source(path)
    try:
        video = src.video
        assert video is not None
        ctx = video[1].codec_context
        return int(ctx.width), int(ctx.height)
    finally:
        src.close()


def _tool() -> str:
    return f"mmrealsr-video {__version__}"
