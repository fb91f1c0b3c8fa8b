"""The one answer to "which coefficients does frame N get?", for every front.

A :class:`CoefficientResolver` takes where the automatic values come from (a track, or an analysis
that gives frame N's record) and the user's overrides (keyframes, then fixed ``blur``/``noise``),
and gives ``record(n)``: frame N's record with its final values and their source. The CLI, the
Python API and the VapourSynth filter all restore with ``resolver.record(n).blur/.noise``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mmrealsr_video.errors import InputError
from mmrealsr_video.plan.coefficients import CoefficientValue
from mmrealsr_video.plan.keyframes import Keyframes, apply_fixed_frame, apply_keyframes
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients

__all__ = ["CoefficientResolver"]

log = logging.getLogger(__name__)


class CoefficientResolver:
    """Frame number -> the record used to restore it.

    Build it with :meth:`from_track` or :meth:`from_analysis`. Keyframes are applied to the whole
    track at once (a key at ``-24`` or a smooth curve needs the whole timeline), then the fixed
    values, frame by frame, on top.
    """

    def __init__(
        self,
        records: Callable[[int], FrameCoefficients],
        *,
        blur: CoefficientValue | None = None,
        noise: CoefficientValue | None = None,
    ) -> None:
        self._records = records
        self.blur = None if blur is None or blur.kind == "auto" else blur
        self.noise = None if noise is None or noise.kind == "auto" else noise

    @classmethod
    def from_track(
        cls,
        track: CoefficientTrack,
        *,
        keyframes: Keyframes | None = None,
        blur: CoefficientValue | None = None,
        noise: CoefficientValue | None = None,
        model: str | None = None,
        source: str = "the input",
        frames: int | None = None,
    ) -> CoefficientResolver:
        """Coefficients from a track (made by ``analyze`` or edited by hand), keyframes on top.

        A track may hold a part of a video: frames are looked up by their number in the source.

        Args:
            track: the automatic (or already final) values.
            keyframes, blur, noise: the user's overrides, applied in that order.
            model: the model that will restore; a track made with another one is warned about.
            source: the input's name, for messages.
            frames: when given, the track must hold exactly frames 0 to ``frames - 1``.

        Raises:
            InputError: the track does not cover ``frames``, or a keyframe does not fit the track.
        """
        if frames is not None and (len(track) != frames or track.frames[0].index != 0):
            raise InputError(
                f"the track has {len(track)} frames but {source} has {frames}; was it made from this input?"
            )
        if model is not None and track.model != model:
            log.warning(
                "the track was made with model %r, restoring with %r: coefficients may not match",
                track.model,
                model,
            )
        final = apply_keyframes(track, keyframes) if keyframes is not None else track
        by_index = {r.index: r for r in final.frames}

        def lookup(n: int) -> FrameCoefficients:
            rec = by_index.get(n)
            if rec is None:
                held = f"frames {min(by_index)}-{max(by_index)}" if by_index else "no frames"
                raise InputError(
                    f"the track holds {held} but not frame {n} of {source}; was it made from this input?"
                )
            return rec

        return cls(lookup, blur=blur, noise=noise)

    @classmethod
    def from_analysis(
        cls,
        record: Callable[[int], FrameCoefficients],
        *,
        whole: Callable[[], CoefficientTrack] | None = None,
        keyframes: Keyframes | None = None,
        blur: CoefficientValue | None = None,
        noise: CoefficientValue | None = None,
    ) -> CoefficientResolver:
        """Coefficients from an analysis: ``record(n)`` gives frame N's automatic record.

        With keyframes, ``whole()`` must give the analysis of every frame; it is called once, on
        the first request, and the keyed track answers from then on.

        Raises:
            InputError: keyframes without ``whole``.
        """
        if keyframes is None:
            return cls(record, blur=blur, noise=noise)
        if whole is None:
            raise InputError("keyframes need the analysis of the whole video, which this source cannot give")
        keyed: list[dict[int, FrameCoefficients]] = []
        lock = threading.Lock()

        def lookup(n: int) -> FrameCoefficients:
            with lock:
                if not keyed:
                    keyed.append({r.index: r for r in apply_keyframes(whole(), keyframes).frames})
            return keyed[0][n]

        return cls(lookup, blur=blur, noise=noise)

    def record(self, n: int) -> FrameCoefficients:
        """Frame ``n``'s record, final values included (``source`` says what set them)."""
        return apply_fixed_frame(self._records(n), self.blur, self.noise)
