"""vsmmrealsr: MM-RealSR restoration as a VapourSynth filter, a thin front over ``mmrealsr_video``.

::

    import vapoursynth as vs
    from vsmmrealsr import mmrealsr

    clip = vs.core.bs.VideoSource("old.mkv")
    clip = mmrealsr(clip)                    # blur and noise estimated per scene
    clip.set_output()

The frames equal what ``mmrealsr-video restore`` produces for the same input, model and
coefficients: both fronts convert with the same routine (``mmrealsr_video.io.colour``), restore with
the same call (``ModulatedModel.restore_frames``) and take their coefficients from the same
analysis (``StreamingAnalysis``) or track.

Coefficients in ``auto`` come from an analysis that runs inside the filter. It reads the clip
in order, from the first frame, as far as the frames asked for need (a scene's value is known at
its end), and keeps every frame's result: frames requested in any order, from any number of
threads, get exactly the values of a sequential run. The first request far into a clip therefore
reads the clip up to there once; for editing previews, analyse once (:func:`analyze`, or
``mmrealsr-video analyze``) and pass the track.

Nothing is ever written to stdout (``vspipe`` writes the video there); messages go to the
``vsmmrealsr`` logger.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import vapoursynth as vs

from mmrealsr_video.analysis import FetchedFrame, SequentialAnalysis
from mmrealsr_video.errors import MMRealSRVideoError, SettingsError
from mmrealsr_video.io.colour import (
    ColourDescription,
    planar_layout,
    planes_to_tensor,
    tensor_to_planes,
    to_rgb8,
)
from mmrealsr_video.models import ModulatedModel, load_model, precision_dtype
from mmrealsr_video.plan import (
    CoefficientResolver,
    CoefficientTrack,
    CoefficientValue,
    parse_coefficient,
    parse_keyframes,
)

__all__ = ["SCENE_MODES", "analyze", "get_prop", "mmrealsr"]

log = logging.getLogger("vsmmrealsr")

#: Where scene cuts come from: ``auto`` uses upstream ``_SceneChangePrev``/``_SceneChangeNext``
#: when the first frame has either, else the detector; ``props`` requires them; ``detect`` always
#: runs the detector (PySceneDetect's content detector, as the CLI); ``none`` makes the whole clip
#: one scene. A list of frame numbers gives the cuts (first frame of each new scene).
SCENE_MODES = ("auto", "props", "detect", "none")

_FAMILIES: dict[Any, Literal["yuv", "rgb", "gray"]] = {vs.YUV: "yuv", vs.RGB: "rgb", vs.GRAY: "gray"}
_SUBSAMPLING = {(0, 0), (1, 0), (1, 1), (0, 1), (2, 0)}  # 4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1
# Recent VapourSynth (R81 here) names the range prop _Range (0 limited, 1 full); older ones _ColorRange (0 full,
# 1 limited). The enum tells which: its values are those of the prop.
_RANGE_PROP = "_Range" if hasattr(vs, "Range") else "_ColorRange"
_RANGE_FULL, _RANGE_LIMITED = int(vs.RANGE_FULL), int(vs.RANGE_LIMITED)
_PROP_HELP = {
    "_Matrix": "e.g. clip = core.std.SetFrameProps(clip, _Matrix=1) for BT.709 (6 for BT.601, 9 for BT.2020)",
    _RANGE_PROP: f"e.g. clip = core.std.SetFrameProps(clip, {_RANGE_PROP}={_RANGE_LIMITED}) for limited (TV) "
    f"range, {_RANGE_FULL} for full (PC)",
}


def _error(func: str, message: str) -> vs.Error:
    return vs.Error(f"{func}: {message}")


# --- formats and colour --------------------------------------------------------------------------


def _check_clip(clip: Any, func: str) -> vs.VideoNode:
    if not isinstance(clip, vs.VideoNode):
        raise _error(func, f"clip must be a vs.VideoNode, not {type(clip).__name__}")
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise _error(
            func,
            "the clip has a variable format or size; make it constant first "
            "(e.g. core.resize.Bicubic(clip, width=..., height=..., format=...))",
        )
    if clip.num_frames == 0:
        raise _error(func, "the clip has no frames")
    _layout(clip.format, func)
    return clip


def _layout(fmt: vs.VideoFormat, func: str) -> Any:
    family = _FAMILIES.get(fmt.color_family)
    floating = fmt.sample_type == vs.FLOAT
    bits = fmt.bits_per_sample
    sub = (fmt.subsampling_w, fmt.subsampling_h)
    ok = (
        family is not None
        and ((floating and bits in (16, 32)) or (not floating and 8 <= bits <= 16))
        and ((family == "yuv" and sub in _SUBSAMPLING) or sub == (0, 0))
    )
    if not ok or family is None:
        raise _error(
            func,
            f"format {fmt.name} is not supported: use YUV (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1), RGB or GRAY "
            "with 8-16-bit integer or 16/32-bit float samples (RGBS and RGBH are taken as they are)",
        )
    return planar_layout(family, bits, sub_x=1 << sub[0], sub_y=1 << sub[1], floating=floating)


def get_prop[T: (int, float, bytes)](
    props: Any, name: str, kind: type[T], default: T | None = None, *, func: str = "mmrealsr"
) -> T | None:
    """Frame prop ``name`` as ``kind`` (int, float or bytes), or ``default`` when absent.

    A prop of another type raises instead of being guessed at (a float ``_Matrix`` or a string
    ``_SceneChangePrev`` is a mistake upstream), naming the prop, its type and the function.

    Raises:
        vs.Error: the prop holds another type.
    """
    if name not in props:
        return default
    value = props[name]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return kind(value)
    if not ok:
        raise _error(func, f"frame prop {name} holds {type(value).__name__} {value!r}, expected {kind.__name__}")
    return value


def _description(props: Any, fmt: vs.VideoFormat, height: int, n: int, func: str) -> ColourDescription:
    """The frame's colour description from its props. What is untagged (no ``_Matrix`` or
    ``_Matrix=2``, no range) gets the CLI's defaults for an untagged file (BT.601 below 720 lines,
    BT.709 above; limited range, full for GRAY), with a warning logged once."""
    family = _FAMILIES[fmt.color_family]
    matrix = get_prop(props, "_Matrix", int, func=func)
    colour_range = get_prop(props, _RANGE_PROP, int, func=func)
    if colour_range is not None and colour_range not in (_RANGE_FULL, _RANGE_LIMITED):
        raise _error(func, f"frame {n} has {_RANGE_PROP}={colour_range}; set it, {_PROP_HELP[_RANGE_PROP]}")
    if family != "yuv" and (matrix is None or matrix not in (1, 4, 5, 6, 7, 9)):
        matrix = None  # RGB/GRAY: only used if asked to code YUV; the default, as the CLI
    location = get_prop(props, "_ChromaLocation", int, func=func)
    try:
        return ColourDescription.from_codes(
            matrix=matrix,
            full_range=None if colour_range is None or family == "rgb" else colour_range == _RANGE_FULL,
            height=height,
            gray=family == "gray",
            primaries=get_prop(props, "_Primaries", int, func=func),
            transfer=get_prop(props, "_Transfer", int, func=func),
            chroma_location=location + 1 if location is not None else None,
            where=f"frame {n}",
        )
    except MMRealSRVideoError as e:
        raise _error(func, str(e)) from None


def _planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.asarray(frame[p]) for p in range(frame.format.num_planes)]


def _frame_time(props: Any, n: int, fps: Fraction | None, func: str) -> float:
    t = get_prop(props, "_AbsoluteTime", float, func=func)
    if t is not None:
        return t
    return float(n / fps) if fps else n / 25.0


def _fps(clip: vs.VideoNode) -> Fraction | None:
    return Fraction(clip.fps.numerator, clip.fps.denominator) if clip.fps.numerator else None


# --- the analysis inside the filter ----------------------------------------------------------------


def _analysis(
    clip: vs.VideoNode, model: ModulatedModel, scenes: str | Sequence[int], device: torch.device, func: str
) -> SequentialAnalysis:
    """The analysis of ``clip``, reading frames in order as far as the frames asked for need."""
    fps = _fps(clip)
    layout = _layout(clip.format, func)
    mode: str | Sequence[int] = scenes
    if mode == "auto":
        first = clip.get_frame(0).props
        mode = "props" if ("_SceneChangePrev" in first or "_SceneChangeNext" in first) else "detect"
    cuts: Sequence[int] | None
    if mode == "detect":
        cuts = None
    elif mode in ("props", "none"):
        cuts = []  # props: the cuts arrive with the frames
    else:
        cuts = [int(c) for c in mode]
    log.info("analysis: scenes from %s", mode if isinstance(mode, str) else "the given cuts")
    cut_next = [False]  # the previous frame said _SceneChangeNext

    def fetch(n: int) -> FetchedFrame:
        frame = clip.get_frame(n)
        props = frame.props
        cut = False
        if mode == "props":
            prev = get_prop(props, "_SceneChangePrev", int, func=func)
            following = get_prop(props, "_SceneChangeNext", int, func=func)
            if prev is None and following is None:
                raise _error(func, f"scenes='props' but frame {n} has neither _SceneChangePrev nor _SceneChangeNext")
            cut = bool(prev) or cut_next[0]
            cut_next[0] = bool(following)
        desc = _description(props, frame.format, frame.height, n, func)
        rgb, _ = planes_to_tensor(_planes(frame), layout, desc, device=device)
        return FetchedFrame(to_rgb8(rgb), _frame_time(props, n, fps, func), cut)

    return SequentialAnalysis(
        fetch, clip.num_frames, model, fps=float(fps) if fps else None, cuts=cuts
    )


# --- restoration -------------------------------------------------------------------------------


@dataclass
class _Group:
    lock: threading.Lock
    results: list[Any] | None = None


class _Restorer:
    """Restores groups of ``batch`` frames on one of ``num_streams`` slots; caches a group's results
    until its frames have been handed out, so that each group is computed once and identically."""

    def __init__(
        self,
        model: ModulatedModel,
        batch: int,
        num_streams: int,
        tile: int | None,
        tile_pad: int,
        size: tuple[int, int],
    ) -> None:
        self.model = model
        self.batch = batch
        self.tile = tile
        self.tile_pad = tile_pad
        self.size = size
        self._slots: list[torch.cuda.Stream | None] = [
            torch.cuda.Stream(model.device) if model.device.type == "cuda" else None
            for _ in range(num_streams)
        ]
        self._free = threading.Semaphore(num_streams)
        self._slot_lock = threading.Lock()
        self._groups: OrderedDict[int, _Group] = OrderedDict()
        self._groups_lock = threading.Lock()
        self._keep = max(8, 4 * num_streams)

    def get(self, group: int, k: int, compute: Callable[[], list[Any]]) -> Any:
        with self._groups_lock:
            entry = self._groups.get(group)
            if entry is None:
                entry = self._groups[group] = _Group(threading.Lock())
                while len(self._groups) > self._keep:
                    self._groups.popitem(last=False)
        with entry.lock:
            if entry.results is None:
                entry.results = compute()
            return entry.results[k]

    def run(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        with self._free:
            with self._slot_lock:
                stream = self._slots.pop()
            try:
                if stream is None:
                    return self.model.restore_frames(
                        x, coeffs, self.size, tile=self.tile, tile_overlap=self.tile_pad
                    )
                # The input was converted on the default stream: this stream must wait for it.
                stream.wait_stream(torch.cuda.default_stream(self.model.device))
                with torch.cuda.stream(stream):
                    y = self.model.restore_frames(
                        x.to(self.model.device, non_blocking=True),
                        coeffs,
                        self.size,
                        tile=self.tile,
                        tile_overlap=self.tile_pad,
                    )
                stream.synchronize()
                return y
            finally:
                with self._slot_lock:
                    self._slots.append(stream)


# --- the filter --------------------------------------------------------------------------------


def _coefficient(value: Any, name: str, func: str) -> CoefficientValue | None:
    if value is None:
        return None
    try:
        return parse_coefficient(value, field=name)
    except MMRealSRVideoError as e:
        raise _error(func, str(e)) from None


def _device(device_index: int | None, func: str) -> torch.device:
    if device_index is None or device_index < 0 or not torch.cuda.is_available():
        return torch.device("cpu")
    if device_index >= torch.cuda.device_count():
        raise _error(func, f"device_index {device_index}: only {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", device_index)


def _load(
    model: str | Path | ModulatedModel | None, device: torch.device, dtype: torch.dtype, func: str
) -> Any:
    if isinstance(model, ModulatedModel):
        return model
    try:
        return load_model(model if model is not None else "default", device=device, dtype=dtype)
    except (MMRealSRVideoError, OSError) as e:
        raise _error(func, str(e)) from None


def _size(clip: vs.VideoNode, fmt: vs.VideoFormat, model: ModulatedModel, scale: float | None, func: str) -> tuple[int, int]:
    """(height, width) of the output: the engine's rule, rounded up to the format's subsampling."""
    try:
        w, h = model.output_size(clip.width, clip.height, scale, (1 << fmt.subsampling_w, 1 << fmt.subsampling_h))
    except SettingsError as e:
        raise _error(func, f"scale {e.problem}") from None
    return h, w


def _set_colour_props(props: Any, desc: ColourDescription, fmt: vs.VideoFormat) -> None:
    family = _FAMILIES[fmt.color_family]
    if family == "rgb":
        props["_Matrix"] = 0
        props[_RANGE_PROP] = _RANGE_FULL
        return
    if family == "yuv":
        props["_Matrix"] = desc.codes()["matrix"]
    props[_RANGE_PROP] = _RANGE_FULL if desc.range == "full" else _RANGE_LIMITED


def mmrealsr(
    clip: vs.VideoNode,
    model: str | Path | ModulatedModel | None = None,
    blur: float | str | None = None,
    noise: float | str | None = None,
    track: str | Path | CoefficientTrack | None = None,
    keyframes: str | Path | None = None,
    scenes: str | Sequence[int] = "auto",
    scale: float | None = None,
    tile: int | None = None,
    tile_pad: int = 32,
    device_index: int | None = 0,
    num_streams: int = 1,
    batch_size: int = 1,
    precision: str | None = None,
    format: int | vs.VideoFormat | vs.PresetVideoFormat | None = None,
) -> vs.VideoNode:
    """Restores a clip with MM-RealSR, per-frame blur and noise from the analysis, a track or you.

    Args:
        clip: constant format and size: YUV, RGB or GRAY, 8-16-bit integer or 16/32-bit float.
            YUV and GRAY frames are converted to RGB with their ``_Matrix`` (YUV) and ``_Range``
            props exactly as the CLI does; untagged ones get the CLI's defaults (BT.601 below 720
            lines, BT.709 from 720 up; limited range, full for GRAY), with a warning.
            ``_ChromaLocation`` is honoured (left when absent).
        model: a bundled model's name (None: ``"default"``), a weights file (``.pth`` or
            ``.safetensors``, the released MM-RealSR checkpoints included) or a loaded model.
        blur, noise: a number in [0, 1], ``"auto"`` (None), or a relative ``"+0.1"``/``"-0.2"``
            added to the automatic value; applied after the track and the keyframes, as the CLI's
            ``--blur``/``--noise``.
        track: a track file from ``mmrealsr-video analyze`` or :func:`analyze` (JSON or CSV), or a
            ``CoefficientTrack``: its final values are used and no analysis runs.
        keyframes: a keyframe file or string (the CLI's format, ``docs/keyframes.md``), applied to
            the track, or to the automatic track (which then reads the whole clip on first use).
        scenes: where cuts come from, see :data:`SCENE_MODES`, or a list of cut frames.
        scale: output size factor; None is the model's (x4). Another factor resizes the model's
            output (bicubic, antialiased), as the CLI's ``--outscale``.
        tile: tile side in input pixels; None picks one only when a frame would not fit in memory,
            0 never tiles.
        tile_pad: pixels shared by neighbouring tiles (cross-faded).
        device_index: the CUDA device; None or -1 for the CPU (also used without CUDA).
        num_streams: frames restored at once, each on its own CUDA stream on a GPU.
        batch_size: consecutive frames restored together (a batch is computed once, whatever the
            order its frames are asked for).
        precision: ``fp32``, ``fp16`` or ``bf16``; default fp16 on CUDA, fp32 on the CPU.
        format: the output format; None keeps the input's.

    Returns:
        The restored clip, every input frame prop kept plus ``MMRealSR_Blur``, ``MMRealSR_Noise``
        (the values used), ``MMRealSR_BlurAuto``, ``MMRealSR_NoiseAuto`` (the analysis' values)
        and ``MMRealSR_Scene``; colour props describe the output.
    """
    func = "mmrealsr"
    clip = _check_clip(clip, func)
    for name, value in (("num_streams", num_streams), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise _error(func, f"{name} must be an integer >= 1, not {value!r}")
    if tile is not None and tile < 0:
        raise _error(func, f"tile must be >= 0 or None, not {tile}")
    if tile_pad < 0:
        raise _error(func, f"tile_pad must be >= 0, not {tile_pad}")
    fixed_blur, fixed_noise = _coefficient(blur, "blur", func), _coefficient(noise, "noise", func)
    device = _device(device_index, func)
    try:
        dtype = precision_dtype(precision, device)
    except MMRealSRVideoError as e:
        raise _error(func, str(e)) from None
    net = _load(model, device, dtype, func)
    in_layout = _layout(clip.format, func)
    out_fmt = clip.format if format is None else vs.core.get_video_format(format)
    out_layout = _layout(out_fmt, func)
    size = _size(clip, out_fmt, net, scale, func)
    resolver = _resolver(clip, net, track, keyframes, scenes, fixed_blur, fixed_noise, func)
    restorer = _Restorer(net, batch_size, num_streams, tile, tile_pad, size)
    n_frames = clip.num_frames

    def compute(frames: Sequence[vs.VideoFrame], first: int) -> list[Any]:
        tensors, descs, recs = [], [], []
        for j, f in enumerate(frames):
            n = min(first + j, n_frames - 1)
            desc = _description(f.props, f.format, f.height, n, func)
            rgb, _ = planes_to_tensor(_planes(f), in_layout, desc, device=device)
            tensors.append(rgb)
            descs.append(desc)
            recs.append(resolver.record(n))
        coeffs = torch.tensor([[r.blur, r.noise] for r in recs], dtype=torch.float32)
        y = restorer.run(torch.stack(tensors), coeffs)
        return [(tensor_to_planes(y[j], descs[j], out_layout), descs[j], recs[j]) for j in range(len(frames))]

    template = vs.core.std.BlankClip(clip, width=size[1], height=size[0], format=out_fmt.id, keep=True)
    b = batch_size
    if b == 1:
        sources = [clip]
    else:
        pad = (-n_frames) % b
        padded = clip + clip[-1] * pad if pad else clip
        sources = [vs.core.std.Interleave([padded[k::b]] * b)[:n_frames] for k in range(b)]

    def select(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        group, k = divmod(n, b)
        try:
            planes, desc, rec = restorer.get(group, k, lambda: compute(f[1:], group * b))
        except MMRealSRVideoError as e:
            raise _error(func, f"frame {n}: {e}") from None
        out = f[0].copy()
        for p, array in enumerate(planes):
            np.copyto(np.asarray(out[p]), array)
        src = f[1 + k] if b > 1 else f[1]
        props = out.props
        for key in list(props.keys()):
            del props[key]
        for key, value in src.props.items():
            if key != "_Alpha":  # an attached alpha frame keeps the input's size: not carried
                props[key] = value
        _set_colour_props(props, desc, out_fmt)
        props["MMRealSR_Blur"] = rec.blur
        props["MMRealSR_Noise"] = rec.noise
        props["MMRealSR_BlurAuto"] = rec.auto_blur
        props["MMRealSR_NoiseAuto"] = rec.auto_noise
        props["MMRealSR_Scene"] = rec.scene
        return out

    return vs.core.std.ModifyFrame(template, [template, *sources], select)


def _resolver(
    clip: vs.VideoNode,
    model: ModulatedModel,
    track: str | Path | CoefficientTrack | None,
    keyframes: str | Path | None,
    scenes: str | Sequence[int],
    blur: CoefficientValue | None,
    noise: CoefficientValue | None,
    func: str,
) -> CoefficientResolver:
    """Frame number -> its record: from the track, or the analysis, with keyframes and fixed values."""
    if isinstance(scenes, str):
        if scenes not in SCENE_MODES:
            raise _error(func, f"scenes must be one of {', '.join(SCENE_MODES)} or a list of cuts, not {scenes!r}")
    elif not all(isinstance(c, int) and c >= 0 for c in scenes):
        raise _error(func, f"scenes: cuts must be frame numbers >= 0, got {list(scenes)!r}")
    try:
        keys = parse_keyframes(keyframes) if keyframes is not None else None
        if track is not None:
            loaded = track if isinstance(track, CoefficientTrack) else CoefficientTrack.load(track)
            return CoefficientResolver.from_track(
                loaded,
                keyframes=keys,
                blur=blur,
                noise=noise,
                model=model.name,
                source="the clip",
                frames=clip.num_frames,
            )
        analysis = _analysis(clip, model, scenes, model.device, func)
        return CoefficientResolver.from_analysis(
            analysis.record, whole=analysis.track, keyframes=keys, blur=blur, noise=noise
        )
    except MMRealSRVideoError as e:
        raise _error(func, str(e)) from None


def analyze(
    clip: vs.VideoNode,
    model: str | Path | ModulatedModel | None = None,
    scenes: str | Sequence[int] = "auto",
    keyframes: str | Path | None = None,
    save: str | Path | None = None,
    device_index: int | None = 0,
) -> CoefficientTrack:
    """Analyses a whole clip (scene cuts, per-scene blur and noise) into a track, for a two-pass
    workflow: ``analyze(clip, save="film.track.json")`` once, then ``mmrealsr(clip, track=...)``.

    The values are those ``mmrealsr`` uses in ``auto`` with the same model and scenes, and those
    of ``mmrealsr-video analyze`` on the same frames.

    Args:
        clip: as for :func:`mmrealsr`.
        model: the model whose estimator is used (coefficients belong to its generator).
        scenes: see :data:`SCENE_MODES`.
        keyframes: applied on top, as for :func:`mmrealsr`.
        save: write the track there (JSON, or CSV by extension).
        device_index: the CUDA device; None or -1 for the CPU.

    Returns:
        The track.
    """
    func = "mmrealsr.analyze"
    clip = _check_clip(clip, func)
    device = _device(device_index, func)
    # float32 everywhere, as the CLI's and the Python API's analysis: estimates must not depend on the front.
    net = _load(model, device, torch.float32, func)
    resolver = _resolver(clip, net, None, keyframes, scenes, None, None, func)
    try:
        frames = tuple(resolver.record(n) for n in range(clip.num_frames))
    except MMRealSRVideoError as e:
        raise _error(func, str(e)) from None
    fps = _fps(clip)
    result = CoefficientTrack(frames, model=net.name, fps=float(fps) if fps else None)
    if save is not None:
        try:
            result.save(save)
        except (MMRealSRVideoError, OSError) as e:
            raise _error(func, f"{save}: {e}") from None
    return result
