"""Scene-cut detection on streamed frames (no seeking), on a small proxy of each frame.

The detectors are PySceneDetect's, fed frame by frame: a well-kept library whose content and
adaptive detectors are what the field uses; we give them a proxy (the frame downscaled to at most
``PROXY_WIDTH`` pixels wide), so detection costs a fraction of a millisecond per frame.

Hard cuts are found exactly to the frame. A single flash frame is not a cut (the content detector's
flash filter merges it). Fades and dissolves are gradual: they produce at most one cut somewhere
inside the transition, or none when every step is small; the coefficients of the frames inside a
transition are those of the scene they are assigned to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from mmrealsr_video.errors import InputError, SettingsError

__all__ = ["DETECTORS", "PROXY_WIDTH", "SceneDetector", "SceneDetectorConfig", "normalize_cuts"]

#: Width of the frame proxy the detectors see.
PROXY_WIDTH = 64
DETECTORS = ("content", "adaptive")


@dataclass(frozen=True)
class SceneDetectorConfig:
    """``method``: ``content`` (fixed threshold on HSV change, with a flash filter) or ``adaptive``
    (ratio to the neighbouring frames' change; robust to fast motion, 2 frames of lookahead).
    ``min_scene_len``: frames; a cut closer than this to the previous one is dropped, so a
    too-short scene joins the scene before it."""

    method: str = "content"
    threshold: float = 27.0
    adaptive_threshold: float = 3.0
    min_scene_len: int = 12

    def __post_init__(self) -> None:
        if self.method not in DETECTORS:
            raise InputError(
                f"scene detector: method must be one of {', '.join(DETECTORS)}, not {self.method!r}"
            )
        if self.min_scene_len < 1:
            raise SettingsError("min_scene_len", f"must be at least 1 frame, not {self.min_scene_len}")
        if self.threshold <= 0 or self.adaptive_threshold <= 0:
            raise InputError("scene detector: thresholds must be positive")


def _proxy(rgb: np.ndarray) -> np.ndarray:
    """BGR uint8 at most PROXY_WIDTH wide (PySceneDetect expects OpenCV's channel order)."""
    h, w = rgb.shape[:2]
    if w > PROXY_WIDTH:
        rgb = cv2.resize(rgb, (PROXY_WIDTH, max(1, round(h * PROXY_WIDTH / w))), interpolation=cv2.INTER_AREA)
    if rgb.dtype != np.uint8:
        rgb = (
            (rgb / 257).astype(np.uint8)
            if rgb.dtype == np.uint16
            else np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
        )
    return np.ascontiguousarray(rgb[:, :, ::-1])


class SceneDetector:
    """Streaming detector: ``process_frame`` once per frame in order, then ``post_process``.

    Both return the cuts confirmed by then, as the index of the first frame of each new scene.
    Cuts may be confirmed up to ``lookahead`` frames after they happen.
    """

    def __init__(self, config: SceneDetectorConfig | None = None, *, fps: float = 25.0) -> None:
        from scenedetect.common import FrameTimecode
        from scenedetect.detectors import AdaptiveDetector, ContentDetector

        self.config = c = config or SceneDetectorConfig()
        self._fps = float(fps) if fps and fps > 0 else 25.0
        self._timecode = FrameTimecode
        if c.method == "adaptive":
            self._detector = AdaptiveDetector(
                adaptive_threshold=c.adaptive_threshold, min_scene_len=c.min_scene_len
            )
            self.lookahead = 2
        else:
            self._detector = ContentDetector(threshold=c.threshold, min_scene_len=c.min_scene_len)
            self.lookahead = c.min_scene_len  # the flash filter holds a cut until the scene is long enough
        self._next = 0

    def process_frame(self, index: int, rgb: np.ndarray) -> list[int]:
        """Feeds frame ``index`` (RGB, any size); returns newly confirmed cuts."""
        if index != self._next:
            raise InputError(
                f"scene detector: frames must arrive in order (expected {self._next}, got {index})"
            )
        self._next += 1
        found = self._detector.process_frame(self._timecode(index, self._fps), _proxy(rgb))
        return [int(t.frame_num) for t in found if int(t.frame_num) > 0]

    def post_process(self) -> list[int]:
        """Flushes the detector at the end of the stream; returns its last cuts."""
        if self._next == 0:
            return []
        found = self._detector.post_process(self._timecode(self._next - 1, self._fps))
        return [int(t.frame_num) for t in found if 0 < int(t.frame_num) < self._next]


def normalize_cuts(
    cuts: Iterable[int], frames: int, *, min_scene_len: int = 1, source: str = "cuts"
) -> list[int]:
    """Sorted unique cuts inside (0, frames), dropping any closer than ``min_scene_len`` to the previous.

    Raises:
        InputError: a cut that is not a whole frame number (names ``source``).
    """
    clean: list[int] = []
    for i, c in enumerate(sorted(set(cuts))):
        if isinstance(c, bool) or not isinstance(c, int | np.integer):
            raise InputError(f"{source}: entry {i} ({c!r}) is not a frame number")
        if c <= 0 or c >= frames:
            continue
        if clean and c - clean[-1] < min_scene_len:
            continue
        if not clean and c < min_scene_len:
            continue
        clean.append(int(c))
    return clean
