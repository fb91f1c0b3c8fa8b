"""Streaming analysis: frames in order -> scene cuts and sampled estimates -> settled records.

One sequential pass (no seeking). Each frame goes to the scene detector (a 64-px proxy); every
``sample_every``-th frame, and the first frame of every scene, goes to the crop estimator
(:mod:`mmrealsr_video.analysis.estimate`); the plan (:mod:`mmrealsr_video.plan.aggregate`) turns a
scene's samples into every frame's automatic coefficients. Frames come from the caller (the engine
opens files); :class:`SequentialAnalysis` gives random access over a frame-fetching callable.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mmrealsr_video.analysis.estimate import CropEstimator
from mmrealsr_video.analysis.scenes import SceneDetector, SceneDetectorConfig, normalize_cuts
from mmrealsr_video.errors import InputError, SettingsError
from mmrealsr_video.io.video import DecodedFrame
from mmrealsr_video.models.loader import ModulatedModel
from mmrealsr_video.plan.aggregate import PlanConfig, plan_auto
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients

__all__ = ["AnalysisConfig", "FetchedFrame", "SequentialAnalysis", "StreamingAnalysis", "analyze_frames"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisConfig:
    """How a video is analysed.

    Attributes:
        sample_every: estimate every k-th frame (and each scene's first frame); ``raw`` mode uses 1.
        crops: crops per sampled frame given to the estimator.
        crop_size: side of a crop, in input pixels.
        batch: sampled frames per estimator batch.
        detector: scene-cut detection settings.
        plan: aggregation of the estimates (scene, drift or raw).
    """

    sample_every: int = 6
    crops: int = 4
    crop_size: int = 64
    batch: int = 8
    detector: SceneDetectorConfig = field(default_factory=SceneDetectorConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)

    def __post_init__(self) -> None:
        for name in ("sample_every", "crops", "crop_size", "batch"):
            if getattr(self, name) < 1:
                raise SettingsError(name, f"must be at least 1, not {getattr(self, name)}")
        if self.crops > 9:
            raise SettingsError("crops", f"must be at most 9 per frame (a 3x3 grid), not {self.crops}")


class StreamingAnalysis:
    """Scene detection, sampled estimation and the plan, one frame at a time.

    ``push`` takes frames in order and returns the records whose coefficients are settled: a
    scene's frames are settled when its end is known (the next cut, or the end of the stream).
    With a ``lookahead``, a scene longer than that is settled window by window: each window uses
    the scene's samples so far, and the values are blended from where the previous window ended,
    so that the curve stays continuous. Scenes shorter than the lookahead get exactly the values of
    an unbounded analysis.
    """

    def __init__(
        self,
        model: ModulatedModel,
        config: AnalysisConfig | None = None,
        *,
        fps: float | None = None,
        lookahead: int | None = None,
        cuts: Sequence[int] | None = None,
    ) -> None:
        self.config = cfg = config or AnalysisConfig()
        self._every = 1 if cfg.plan.mode == "raw" else cfg.sample_every
        self._detector = None if cuts is not None else SceneDetector(cfg.detector, fps=fps or 25.0)
        delay = self._detector.lookahead if self._detector else 0
        self._delay = delay
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=delay + 2)
        self._cuts = sorted({int(c) for c in cuts}) if cuts is not None else None
        self._estimator = CropEstimator(model, crops=cfg.crops, crop_size=cfg.crop_size, batch=cfg.batch)
        self._lookahead = lookahead
        self._times: dict[int, float] = {}
        self._n = 0
        self._pending = 0  # first frame not yet settled
        self._scene_start = 0
        self._scene = 0
        self._last: tuple[float, float] | None = None  # the last settled frame's auto values
        self.cuts: list[int] = []

    def push(
        self, index: int, pts_time: float, rgb: np.ndarray, *, cut: bool = False
    ) -> list[FrameCoefficients]:
        """Feeds frame ``index`` (RGB uint8/uint16, any size); returns newly settled records.

        ``cut`` marks the frame as the first of a new scene, for analyses made with external cuts
        (``cuts=``, possibly empty) whose cuts arrive with the frames (VapourSynth's
        ``_SceneChangePrev``); it is ignored when the detector runs.
        """
        if index != self._n:
            raise InputError(f"analysis: frames must arrive in order (expected {self._n}, got {index})")
        self._n += 1
        self._times[index] = pts_time
        self._recent.append((index, rgb))
        external = (
            self._detector is None and index > 0 and (cut or (self._cuts is not None and index in self._cuts))
        )
        if index % self._every == 0 or external:
            self._estimator.add(index, rgb)
        if self._detector is not None:
            new = self._detector.process_frame(index, rgb)
        else:
            new = [index] if external else []
        out: list[FrameCoefficients] = []
        for c in new:
            out += self._cut(c)
        if self._lookahead is not None and index + 1 - self._pending > self._lookahead:
            safe = index + 1 - self._delay  # no unconfirmed cut can fall before this frame
            if safe > self._pending:
                out += self._settle(safe, scene_ends=False)
        return out

    def finish(self) -> list[FrameCoefficients]:
        """Ends the stream: settles every remaining frame."""
        out: list[FrameCoefficients] = []
        if self._detector is not None:
            for cut in self._detector.post_process():
                out += self._cut(cut)
        if self._n == 0:
            raise InputError("analysis: the video holds no frame")
        if self._pending < self._n:
            out += self._settle(self._n, scene_ends=True)
        return out

    def _cut(self, cut: int) -> list[FrameCoefficients]:
        if cut <= self._scene_start or cut < self._pending:
            return []  # too late to honour (already settled past it)
        for i, rgb in self._recent:
            if i == cut:
                self._estimator.add(cut, rgb)
                break
        out = self._settle(cut, scene_ends=True)
        self.cuts.append(cut)
        self._scene += 1
        self._scene_start = cut
        return out

    def _settle(self, end: int, *, scene_ends: bool) -> list[FrameCoefficients]:
        self._estimator.flush()
        first, samples = self._scene_start, self._estimator.samples
        scene_samples = {i - first: v for i, v in samples.items() if first <= i < end}
        length = end - first
        if scene_samples:
            auto = plan_auto(length, [], scene_samples, self.config.plan)[self._pending - first :]
        else:
            fallback = self._last if self._last is not None else (0.0, 0.0)
            auto = np.tile(np.asarray(fallback, dtype=np.float64), (end - self._pending, 1))
        if self._pending > first and self._last is not None and len(auto):
            # Continue from the previous window: the difference fades out over this window.
            gap = np.asarray(self._last) - auto[0]
            ramp = 1.0 - np.arange(len(auto))[:, None] / len(auto)
            auto = np.clip(auto + gap * ramp, 0.0, 1.0)
        records = []
        for k, i in enumerate(range(self._pending, end)):
            raw = samples.get(i)
            b, n = float(auto[k, 0]), float(auto[k, 1])
            records.append(
                FrameCoefficients(
                    index=i,
                    pts_time=self._times.pop(i),
                    scene=self._scene,
                    raw_blur=raw[0] if raw else None,
                    raw_noise=raw[1] if raw else None,
                    auto_blur=b,
                    auto_noise=n,
                    blur=b,
                    noise=n,
                    source="auto",
                )
            )
        if records:
            self._last = (records[-1].auto_blur, records[-1].auto_noise)
        self._pending = end
        if scene_ends:
            for i in [i for i in samples if i < end]:
                del samples[i]  # memory stays bounded by the scene, not the video
        return records


def analyze_frames(
    frames: Iterable[DecodedFrame],
    model: ModulatedModel,
    *,
    config: AnalysisConfig | None = None,
    cuts: Sequence[int] | None = None,
    fps: float | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> CoefficientTrack:
    """Analyses decoded frames (in order) with ``model``'s estimator; see :func:`analyze`."""
    cfg = config or AnalysisConfig()
    clean_cuts = None
    if cuts is not None:
        clean_cuts = normalize_cuts(cuts, 2**62, source="external cuts")
    stream = StreamingAnalysis(model, cfg, fps=fps, cuts=clean_cuts)
    records: list[FrameCoefficients] = []
    for frame in frames:
        records += stream.push(frame.index, frame.pts_time, frame.rgb)
        if on_frame is not None:
            on_frame(frame.index)
    records += stream.finish()
    if clean_cuts:
        late = [c for c in clean_cuts if c >= len(records)]
        if late:
            log.warning("external cuts past the last frame (%d) ignored: %s", len(records) - 1, late[:5])
    return CoefficientTrack(tuple(records), model=model.name, fps=fps)


@dataclass(frozen=True)
class FetchedFrame:
    """What :class:`SequentialAnalysis` needs of a frame: its pixels (RGB uint8/uint16, H x W x 3),
    its time, and whether it opens a new scene (for analyses whose cuts arrive with the frames)."""

    rgb: np.ndarray
    pts_time: float
    cut: bool = False


class SequentialAnalysis:
    """Random access to the records of an analysis that reads frames in order.

    ``record(n)`` fetches frames from the first one not yet read up to where frame ``n`` is settled
    (a scene's value is known at its end), once, and keeps every record: frames asked for in any
    order, from any number of threads, get exactly the values of one sequential run. This is how a
    front that pulls frames by number (VapourSynth) gets the same coefficients as the streaming
    engine; it passes its frame fetching in as ``fetch``.
    """

    def __init__(
        self,
        fetch: Callable[[int], FetchedFrame],
        frames: int,
        model: ModulatedModel,
        config: AnalysisConfig | None = None,
        *,
        fps: float | None = None,
        cuts: Sequence[int] | None = None,
    ) -> None:
        if frames < 1:
            raise InputError("analysis: the video holds no frame")
        self._fetch = fetch
        self._model = model
        self._fps = fps
        self._stream = StreamingAnalysis(model, config, fps=fps, cuts=cuts)
        self._records: list[FrameCoefficients | None] = [None] * frames
        self._next = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def record(self, n: int) -> FrameCoefficients:
        """Frame ``n``'s record (its automatic values; nothing of the user's applied)."""
        if not 0 <= n < len(self._records):
            raise InputError(f"analysis: frame {n} is outside the video's {len(self._records)} frames")
        rec = self._records[n]
        if rec is None:
            with self._lock:
                while self._records[n] is None:
                    self._step()
            rec = self._records[n]
        assert rec is not None
        return rec

    def track(self) -> CoefficientTrack:
        """Every frame's record (reads the whole video on first use)."""
        self.record(len(self._records) - 1)
        frames = tuple(r for r in self._records if r is not None)
        return CoefficientTrack(frames, model=self._model.name, fps=self._fps)

    def _step(self) -> None:
        n = self._next
        frame = self._fetch(n)
        settled = self._stream.push(n, frame.pts_time, frame.rgb, cut=frame.cut)
        self._next = n + 1
        if self._next == len(self._records):
            settled += self._stream.finish()
        for rec in settled:
            self._records[rec.index] = rec
