"""The one conversion between coded pictures (the YUV, gray or RGB planes of a PyAV frame) and the
core's RGB float tensors in [0, 1], both ways, in torch: matrix, range, bit depth, chroma siting.
Primaries and transfer are tags carried through, never converted (no gamut or tone mapping).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
import torch
import torch.nn.functional as F

from mmrealsr_video.errors import InputError

__all__ = [
    "ColourDescription",
    "default_matrix",
    "frame_to_tensor",
    "output_pix_fmt",
    "output_planes",
    "planar_layout",
    "planes_to_frame",
    "planes_to_tensor",
    "supported_pix_fmts",
    "tag_codec_context",
    "tensor_to_frame",
    "tensor_to_planes",
    "to_rgb8",
]

log = logging.getLogger(__name__)

# (Kr, Kb) of the non-constant-luminance matrices (H.273 table 4).
_MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020nc": (0.2627, 0.0593),
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
}
# AVColorSpace codes.
_MATRIX_FROM_AV = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020nc"}
_MATRIX_REFUSED_AV = {
    8: "ycgco",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
_AV_RGB, _AV_UNSPECIFIED = 0, 2
_AV_RANGE = {"limited": 1, "full": 2}
# AVColorPrimaries / AVColorTransferCharacteristic codes, named as FFmpeg names them.
_PRIMARIES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
    10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}  # fmt: skip
_TRANSFERS = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100",
    10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
    15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}  # fmt: skip
_CHROMA_LOCATIONS = {1: "left", 2: "center", 3: "topleft", 4: "top", 5: "bottomleft", 6: "bottom"}


@functools.cache
def _warn_once(message: str) -> None:
    """Logs a warning the first time only: the conversion runs per frame."""
    log.warning(message)


def _code(table: dict[int, str], name: str | None) -> int:
    if name is None:
        return _AV_UNSPECIFIED if table is not _CHROMA_LOCATIONS else 0
    return next(k for k, v in table.items() if v == name)


def default_matrix(height: int) -> str:
    """The YUV matrix of an untagged picture: BT.601 below 720 lines (SD), BT.709 from 720 up, the
    rule players and FFmpeg's tools follow. Both fronts use it (CLI and VapourSynth)."""
    return "bt601" if height < 720 else "bt709"


@dataclass(frozen=True)
class ColourDescription:
    """How a picture's samples encode colour: what a stream or frame says, defaults filled in.

    Attributes:
        matrix: the YUV matrix, ``"bt601"`` (FFmpeg's bt470bg and smpte170m), ``"bt709"``,
            ``"bt2020nc"``, ``"smpte240m"`` or ``"fcc"``. Unused by RGB and gray pictures.
        range: ``"limited"`` (Y in [16, 235], Cb/Cr in [16, 240] centred on 128, times 2^(n-8) at n
            bits) or ``"full"`` (Y in [0, 2^n - 1]; Cb/Cr = 2^(n-1) + (2^n - 1) * Pb, the
            H.273/JPEG/FFmpeg convention). RGB samples and alpha are always full range.
        primaries: FFmpeg's name for the colour primaries (``"bt709"``, ``"bt470bg"``,
            ``"smpte170m"``, ``"bt2020"``...), or None when unspecified. A tag carried through to
            the output; nothing is gamut-mapped.
        transfer: FFmpeg's name for the transfer characteristic (``"bt709"``, ``"smpte2084"``...),
            or None. A tag carried through; the core works on the coded (non-linear) values.
        chroma_location: where subsampled chroma sits, FFmpeg's name (``"left"``: MPEG-2, H.264,
            HEVC, horizontally co-sited with even luma columns and vertically between rows;
            ``"center"``: JPEG/MPEG-1, between both; ``"topleft"``, ``"top"``: vertically co-sited
            too), or None for the format's default: ``"center"`` for the ``yuvj`` formats,
            ``"left"`` otherwise. ``"bottom"``/``"bottomleft"`` are read as ``"center"``/``"left"``
            vertically (with a warning).
    """

    matrix: str
    range: str
    primaries: str | None = None
    transfer: str | None = None
    chroma_location: str | None = None

    def __post_init__(self) -> None:
        if self.matrix not in _MATRICES:
            raise InputError(f"colour matrix {self.matrix!r} is not one of {sorted(_MATRICES)}")
        if self.range not in _AV_RANGE:
            raise InputError(f"colour range {self.range!r} is not 'limited' or 'full'")
        for field, value, table in (
            ("primaries", self.primaries, _PRIMARIES),
            ("transfer", self.transfer, _TRANSFERS),
            ("chroma_location", self.chroma_location, _CHROMA_LOCATIONS),
        ):
            if value is not None and value not in table.values():
                raise InputError(f"colour {field} {value!r} is not one of {sorted(table.values())} or None")

    @classmethod
    def from_frame(cls, frame: av.VideoFrame, *, height: int | None = None) -> ColourDescription:
        """Reads a decoded frame's colour tags, filling in what it leaves unspecified.

        Defaults: matrix ``bt601`` below 720 lines (``height``, or the frame's), ``bt709`` from 720
        up; range ``limited`` for YUV and ``full`` for gray (as libswscale reads gray) when untagged,
        always ``full`` for the ``yuvj`` formats. RGB frames have no YUV coding: their description
        says how to code them as YUV (the matrix tag or the default, ``limited`` range). The chroma
        location stays None when untagged (the format's default applies).

        Args:
            frame: a decoded frame (decoders copy the stream's tags onto every frame).
            height: the height that picks the default matrix, when not the frame's own (e.g. the
                source's, for an upscaled frame).

        Raises:
            InputError: the frame's matrix is one this module cannot convert exactly (YCgCo,
                BT.2020 constant luminance, ICtCp...), on a YUV frame.
        """
        pix_fmt = frame.format.name
        layout = _LAYOUTS.get(pix_fmt)
        family = layout.family if layout is not None else "yuv"
        code = int(frame.colorspace)
        if code in _MATRIX_FROM_AV:
            matrix = _MATRIX_FROM_AV[code]
        else:
            if code in _MATRIX_REFUSED_AV and family == "yuv":
                raise InputError(
                    f"frame at pts {frame.pts}: colour matrix {_MATRIX_REFUSED_AV[code]!r} "
                    f"({pix_fmt}) is not supported; supported: {sorted(_MATRICES)}"
                )
            if code not in (_AV_RGB, _AV_UNSPECIFIED) or (code == _AV_RGB and family == "yuv"):
                _warn_once(
                    f"colour matrix code {code} on {pix_fmt} frames is not supported; using the default"
                )
            matrix = default_matrix(height if height is not None else frame.height)
        tagged = {1: "limited", 2: "full"}.get(int(frame.color_range))
        if family == "rgb":
            colour_range = "limited"
        elif layout is not None and layout.full_range:
            colour_range = "full"
        elif tagged is not None:
            colour_range = tagged
        else:
            colour_range = "full" if family == "gray" else "limited"
        return cls(
            matrix=matrix,
            range=colour_range,
            primaries=_PRIMARIES.get(int(frame.color_primaries)),
            transfer=_TRANSFERS.get(int(frame.color_trc)),
            chroma_location=_CHROMA_LOCATIONS.get(int(frame.chroma_location)),
        )

    @classmethod
    def from_codes(
        cls,
        *,
        matrix: int | None,
        full_range: bool | None,
        height: int,
        gray: bool = False,
        primaries: int | None = None,
        transfer: int | None = None,
        chroma_location: int | None = None,
        where: str = "picture",
    ) -> ColourDescription:
        """A description from ITU-T H.273 codes, as VapourSynth's frame props give them, with
        what is untagged filled in by the rule :meth:`from_frame` applies to decoded video.

        Args:
            matrix: ``_Matrix`` (1 BT.709, 5/6 BT.601, 9 BT.2020 NCL, 7 SMPTE 240M, 4 FCC); None
                or 2 (unspecified): :func:`default_matrix` of ``height``, with a warning (once).
                0 (RGB) is refused: it cannot decode YUV.
            full_range: the range prop says full; None (untagged): limited, or full for gray.
            height: the picture's height, which picks the default matrix.
            gray: the picture is gray (untagged gray is full range, as libswscale reads it).
            primaries, transfer: ``_Primaries`` / ``_Transfer``; 2 (unspecified) or None: untagged.
            chroma_location: FFmpeg's AVChromaLocation code (VapourSynth's ``_ChromaLocation`` + 1).
            where: names the picture in error messages.

        Raises:
            InputError: the matrix is not one this module converts.
        """
        if matrix is None or matrix == 2:
            chosen = default_matrix(height)
            _warn_once(
                f"no colour matrix is tagged; using {chosen.upper()} for {height} lines, as for an "
                "untagged video file (tag the source to choose another)"
            )
            matrix = next(k for k, v in _MATRIX_FROM_AV.items() if v == chosen)
        if full_range is None:
            full_range = gray
        if matrix not in _MATRIX_FROM_AV:
            name = _MATRIX_REFUSED_AV.get(matrix, {0: "rgb", 2: "unspecified"}.get(matrix, str(matrix)))
            raise InputError(
                f"{where}: colour matrix {matrix} ({name}) cannot decode YUV; supported: "
                "1 (BT.709), 5/6 (BT.601), 9 (BT.2020 NCL), 7 (SMPTE 240M), 4 (FCC)"
            )
        return cls(
            matrix=_MATRIX_FROM_AV[matrix],
            range="full" if full_range else "limited",
            primaries=_PRIMARIES.get(primaries) if primaries is not None else None,
            transfer=_TRANSFERS.get(transfer) if transfer is not None else None,
            chroma_location=_CHROMA_LOCATIONS.get(chroma_location) if chroma_location is not None else None,
        )

    def codes(self) -> dict[str, int]:
        """The H.273 codes of this description: ``matrix`` (the BT.601 matrix is written as 6,
        SMPTE 170M, or 5, BT.470BG, after the primaries), ``primaries`` and ``transfer`` (2 when
        untagged), ``chroma_location`` (FFmpeg's code, 0 when untagged)."""
        matrix = next(k for k, v in _MATRIX_FROM_AV.items() if v == self.matrix)
        if self.matrix == "bt601" and self.primaries != "bt470bg":
            matrix = 6
        return {
            "matrix": matrix,
            "primaries": _code(_PRIMARIES, self.primaries),
            "transfer": _code(_TRANSFERS, self.transfer),
            "chroma_location": _code(_CHROMA_LOCATIONS, self.chroma_location),
        }


# --- pixel formats -------------------------------------------------------------------------------

_Family = Literal["yuv", "rgb", "gray"]


@dataclass(frozen=True)
class _Layout:
    """Where a pixel format keeps its samples.

    ``channels`` lists, in the order (Y, Cb, Cr[, A]) / (R, G, B[, A]) / (Y[, A]): for ``planar``
    the plane of each; for ``packed`` the offset of each within a pixel of ``stride`` samples; for
    ``semiplanar`` (Y plane 0, interleaved Cb/Cr plane 1) 0 then the offsets of Cb and Cr; for
    ``yuyv`` (4:2:2 packed in 4-sample pairs) the offsets of the first Y, Cb and Cr.
    """

    family: _Family
    bits: int
    storage: Literal["planar", "packed", "semiplanar", "yuyv"]
    channels: tuple[int, ...]
    stride: int = 1
    sub_x: int = 1
    sub_y: int = 1
    shift: int = 0  # samples kept in the high bits of 16 (P010, Y210)
    full_range: bool = False  # yuvj: always full range
    floating: bool = False  # float samples (VapourSynth's RGBS/RGBH, YUV444PS, GRAYS): bits 16 or 32

    @property
    def alpha(self) -> bool:
        return len(self.channels) == (2 if self.family == "gray" else 4)

    @property
    def dtype(self) -> np.dtype:
        if self.floating:
            return np.dtype(np.float16) if self.bits == 16 else np.dtype(np.float32)
        return np.dtype(np.uint8) if self.bits <= 8 else np.dtype("<u2")


def _build_layouts() -> dict[str, _Layout]:
    t: dict[str, _Layout] = {}
    deep = (9, 10, 12, 14, 16)
    for sub, (sx, sy) in {"420": (2, 2), "422": (2, 1), "444": (1, 1), "440": (1, 2), "411": (4, 1)}.items():
        for bits in (8, *deep):
            suffix = "p" if bits == 8 else f"p{bits}le"
            t[f"yuv{sub}{suffix}"] = _Layout("yuv", bits, "planar", (0, 1, 2), sub_x=sx, sub_y=sy)
            t[f"yuva{sub}{suffix}"] = _Layout("yuv", bits, "planar", (0, 1, 2, 3), sub_x=sx, sub_y=sy)
        t[f"yuvj{sub}p"] = _Layout("yuv", 8, "planar", (0, 1, 2), sub_x=sx, sub_y=sy, full_range=True)
    for name, sx, sy in (("nv12", 2, 2), ("nv16", 2, 1), ("nv24", 1, 1)):
        t[name] = _Layout("yuv", 8, "semiplanar", (0, 0, 1), sub_x=sx, sub_y=sy)
    t["nv21"] = _Layout("yuv", 8, "semiplanar", (0, 1, 0), sub_x=2, sub_y=2)
    t["nv42"] = _Layout("yuv", 8, "semiplanar", (0, 1, 0))
    t["nv20le"] = _Layout("yuv", 10, "semiplanar", (0, 0, 1), sub_x=2)
    for sub, sx, sy in (("0", 2, 2), ("2", 2, 1), ("4", 1, 1)):
        for bits in (10, 12, 16):
            t[f"p{sub}{bits}le"] = _Layout(
                "yuv", bits, "semiplanar", (0, 0, 1), sub_x=sx, sub_y=sy, shift=16 - bits
            )
    t["yuyv422"] = _Layout("yuv", 8, "yuyv", (0, 1, 3), sub_x=2)
    t["yvyu422"] = _Layout("yuv", 8, "yuyv", (0, 3, 1), sub_x=2)
    t["uyvy422"] = _Layout("yuv", 8, "yuyv", (1, 0, 2), sub_x=2)
    t["y210le"] = _Layout("yuv", 10, "yuyv", (0, 1, 3), sub_x=2, shift=6)
    for bits in (8, *deep):
        t["gray" if bits == 8 else f"gray{bits}le"] = _Layout("gray", bits, "planar", (0,))
        t["gbrp" if bits == 8 else f"gbrp{bits}le"] = _Layout("rgb", bits, "planar", (2, 0, 1))
        t["gbrap" if bits == 8 else f"gbrap{bits}le"] = _Layout("rgb", bits, "planar", (2, 0, 1, 3))
    t["ya8"] = _Layout("gray", 8, "packed", (0, 1), stride=2)
    t["ya16le"] = _Layout("gray", 16, "packed", (0, 1), stride=2)
    packed: dict[str, tuple[int, ...]] = {
        "rgb24": (0, 1, 2), "bgr24": (2, 1, 0), "rgb48le": (0, 1, 2), "bgr48le": (2, 1, 0),
    }  # fmt: skip
    for name, channels in packed.items():
        t[name] = _Layout("rgb", 16 if "48" in name else 8, "packed", channels, stride=3)
    packed = {
        "rgba": (0, 1, 2, 3), "bgra": (2, 1, 0, 3), "argb": (1, 2, 3, 0), "abgr": (3, 2, 1, 0),
        "rgb0": (0, 1, 2), "bgr0": (2, 1, 0), "0rgb": (1, 2, 3), "0bgr": (3, 2, 1),
        "rgba64le": (0, 1, 2, 3), "bgra64le": (2, 1, 0, 3),
    }  # fmt: skip
    for name, channels in packed.items():
        t[name] = _Layout("rgb", 16 if "64" in name else 8, "packed", channels, stride=4)

    known = {}
    for name, layout in t.items():
        try:
            av.VideoFormat(name)
        except (ValueError, av.error.FFmpegError):  # not in this FFmpeg build
            continue
        known[name] = layout
    return known


_LAYOUTS = _build_layouts()


def planar_layout(
    family: _Family, bits: int, *, sub_x: int = 1, sub_y: int = 1, alpha: bool = False, floating: bool = False
) -> _Layout:
    """A planar layout with planes in (Y, Cb, Cr) / (R, G, B) / (Y) order, as VapourSynth's formats.

    Integer samples of 8-16 bits, or ``floating`` samples of 16 or 32 bits (float YUV is coded as
    VapourSynth codes it: Y in [0, 1], Cb/Cr in [-0.5, 0.5], whatever the range tag).
    """
    if floating and bits not in (16, 32):
        raise InputError(f"float samples must have 16 or 32 bits, not {bits}")
    if not floating and not 8 <= bits <= 16:
        raise InputError(f"integer samples must have 8 to 16 bits, not {bits}")
    if family != "yuv" and (sub_x, sub_y) != (1, 1):
        raise InputError(f"{family} pictures have no chroma subsampling")
    n = {"yuv": 3, "rgb": 3, "gray": 1}[family] + int(alpha)
    return _Layout(family, bits, "planar", tuple(range(n)), sub_x=sub_x, sub_y=sub_y, floating=floating)


def supported_pix_fmts() -> frozenset[str]:
    """The pixel formats :func:`frame_to_tensor` reads and :func:`tensor_to_frame` writes."""
    return frozenset(_LAYOUTS)


def _layout(pix_fmt: str, where: str) -> _Layout:
    layout = _LAYOUTS.get(pix_fmt)
    if layout is None:
        raise InputError(
            f"{where}: pixel format {pix_fmt!r} is not supported (supported: 8-16 bit little-endian "
            "planar, semi-planar and packed YUV, RGB and gray; see supported_pix_fmts())"
        )
    return layout


def _plane(frame: av.VideoFrame, index: int, dtype: np.dtype, elems: int) -> np.ndarray:
    """A (rows, elems) view of a plane's samples, without copying (line padding sliced off)."""
    plane = frame.planes[index]
    if plane.line_size <= 0:
        raise InputError(f"frame at pts {frame.pts}: plane {index} is stored bottom-up; not supported")
    rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, :elems]


def _samples(frame: av.VideoFrame, layout: _Layout) -> list[np.ndarray]:
    """Each channel's (rows, columns) samples, in the layout's channel order, views where possible."""
    w, h = frame.width, frame.height
    cw, ch = -(-w // layout.sub_x), -(-h // layout.sub_y)
    dt = layout.dtype
    if layout.storage == "planar":
        out = []
        for i, p in enumerate(layout.channels):
            chroma = layout.family == "yuv" and i in (1, 2)
            out.append(_plane(frame, p, dt, cw if chroma else w)[: ch if chroma else h])
    elif layout.storage == "packed":
        px = _plane(frame, 0, dt, w * layout.stride)[:h].reshape(h, w, layout.stride)
        out = [px[:, :, c] for c in layout.channels]
    elif layout.storage == "semiplanar":
        uv = _plane(frame, 1, dt, cw * 2)[:ch].reshape(ch, cw, 2)
        out = [_plane(frame, 0, dt, w)[:h], uv[:, :, layout.channels[1]], uv[:, :, layout.channels[2]]]
    else:  # yuyv
        px = _plane(frame, 0, dt, cw * 4)[:h].reshape(h, cw, 4)
        y0 = layout.channels[0]
        out = [
            px[:, :, y0::2].reshape(h, cw * 2)[:, :w],
            px[:, :, layout.channels[1]],
            px[:, :, layout.channels[2]],
        ]
    if layout.shift:
        out = [a >> layout.shift for a in out]
    return out


def _to_float(a: np.ndarray, device: torch.device | str | None) -> torch.Tensor:
    if not a.flags.writeable:  # torch warns on read-only memory
        a = a.copy()
    t = torch.from_numpy(a)
    if device is not None and torch.device(device).type == "cuda":
        # Codes go up from page-locked memory without blocking the host: the copy and the
        # conversion queue behind the model's work on the device while this thread decodes on.
        t = t.pin_memory().to(device, non_blocking=True)
    elif device is not None:
        t = t.to(device)
    return t.to(torch.float32)


# --- coding constants ----------------------------------------------------------------------------


def _luma_coding(bits: int, colour_range: str, floating: bool = False) -> tuple[float, float]:
    """(offset, scale): code = offset + scale * value, for Y' in [0, 1]."""
    if floating:
        return 0.0, 1.0
    if colour_range == "full":
        return 0.0, float(2**bits - 1)
    s = float(2 ** (bits - 8))
    return 16.0 * s, 219.0 * s


def _chroma_coding(bits: int, colour_range: str, floating: bool = False) -> tuple[float, float]:
    """(offset, scale): code = offset + scale * value, for Pb, Pr in [-0.5, 0.5]."""
    if floating:
        return 0.0, 1.0
    if colour_range == "full":
        return float(2 ** (bits - 1)), float(2**bits - 1)
    s = float(2 ** (bits - 8))
    return 128.0 * s, 224.0 * s


def _rgb_coefficients(matrix: str) -> tuple[float, float, float, float]:
    """(R from Pr, G from Pb, G from Pr, B from Pb) for R = Y' + a Pr, G = Y' + b Pb + c Pr, B = Y' + d Pb."""
    kr, kb = _MATRICES[matrix]
    kg = 1.0 - kr - kb
    return 2 * (1 - kr), -2 * kb * (1 - kb) / kg, -2 * kr * (1 - kr) / kg, 2 * (1 - kb)


# --- chroma resampling ---------------------------------------------------------------------------
# Up: linear interpolation at the chroma siting (MPEG-2 "left": co-sited horizontally, centred
# vertically), edges replicated, so the model sees neither 2x2 blocks nor chroma shifted by half a
# pixel. Down: the biorthogonal partner of that interpolator, down(up(c)) == c exactly for any c,
# still a low-pass (zero response at Nyquist). So decoding and re-encoding an unchanged picture
# gives back its codes whatever its chroma, as long as the RGB it decodes to is inside [0, 1]:
# where interpolated chroma meets a sharp luma edge of a saturated colour (100% bars, per-pixel
# random colour) the RGB leaves the cube and clamping there costs codes (measured: up to 14 codes at
# 8 bits, 55 at 10), whatever the interpolator; replication + box average (also an exact pair)
# keeps block-aligned bars but does worse on everything else, and is blocky.

_Siting = Literal["cosited", "center"]


def _sitings(desc: ColourDescription, layout: _Layout) -> tuple[_Siting, _Siting]:
    """(horizontal, vertical) siting of the chroma samples."""
    loc = desc.chroma_location or ("center" if layout.full_range else "left")
    if loc.startswith("bottom"):
        _warn_once(f"chroma location {loc!r} is read as vertically centred")
    # 4:1:1 (DV) is co-sited; centre siting is only defined here for factor 2.
    horizontal: _Siting = "cosited" if loc.endswith("left") or layout.sub_x == 4 else "center"
    vertical: _Siting = "cosited" if loc.startswith("top") else "center"
    return horizontal, vertical


def _up(c: torch.Tensor, dim: int, factor: int, siting: _Siting, length: int) -> torch.Tensor:
    """Linear interpolation by ``factor`` along ``dim`` at the siting, edges replicated.

    Each phase is written straight into its strided slot of the output: interleaving with
    ``torch.stack`` or padding with ``torch.cat`` costs several times more along the last dim.
    """
    if factor == 1:
        return c
    n = c.shape[dim]
    shape = list(c.shape)
    shape[dim] = n * factor
    out = torch.empty(shape, dtype=c.dtype, device=c.device)
    phases = out.unflatten(dim, (n, factor))
    head, tail = c.narrow(dim, 0, n - 1), c.narrow(dim, 1, n - 1)  # c[k], c[k + 1]
    first, last = c.narrow(dim, 0, 1), c.narrow(dim, n - 1, 1)
    if siting == "center":  # factor 2: samples a quarter before and after each chroma site
        before, after = phases.select(dim + 1, 0), phases.select(dim + 1, 1)
        torch.lerp(tail, head, 0.25, out=before.narrow(dim, 1, n - 1))
        before.narrow(dim, 0, 1).copy_(first)
        torch.lerp(head, tail, 0.25, out=after.narrow(dim, 0, n - 1))
        after.narrow(dim, n - 1, 1).copy_(last)
    else:
        phases.select(dim + 1, 0).copy_(c)
        for j in range(1, factor):
            phase = phases.select(dim + 1, j)
            torch.lerp(head, tail, j / factor, out=phase.narrow(dim, 0, n - 1))
            phase.narrow(dim, n - 1, 1).copy_(last)
    return out.narrow(dim, 0, length)


def _every(x: torch.Tensor, dim: int, start: int, step: int) -> torch.Tensor:
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, None, step)
    return x[tuple(index)]


def _pad(x: torch.Tensor, dim: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Pads one of the last two dims of a (C, H, W) tensor."""
    if before == after == 0:
        return x
    pads = (before, after, 0, 0) if dim == x.dim() - 1 else (0, 0, before, after)
    if mode == "replicate":
        return F.pad(x.unsqueeze(0), pads, mode="replicate").squeeze(0)
    return F.pad(x, pads)


def _down(x: torch.Tensor, dim: int, factor: int, siting: _Siting) -> torch.Tensor:
    """The left inverse of :func:`_up`: ``_down(_up(c)) == c`` for any c, with an anti-alias filter.

    Centre siting (factor 2): the biorthogonal partner of the (1, 3, 3, 1)/4 interpolator,
    (-1, 3, 3, -1)/4 (CDF 3,1), edges replicated. Co-sited: decimation plus the triangle-filtered
    residual of the interpolator (a lifting step; for factor 2 this is LeGall 5/3's
    (-1, 2, 6, 2, -1)/8), which vanishes on interpolated signals.
    """
    if factor == 1:
        return x
    length = x.shape[dim]
    n = -(-length // factor)
    if siting == "center":
        if length % 2 and length > 1:
            # The interpolator's missing last sample, extrapolated: exact on interpolated signals.
            last, before = x.narrow(dim, length - 1, 1), x.narrow(dim, length - 2, 1)
            x = torch.cat((x, last * 1.5 - before * 0.5), dim)
            length += 1
        xp = _pad(x, dim, 1, 2 + 2 * n - length, "replicate")
        taps = [xp.narrow(dim, j, 2 * n).unflatten(dim, (n, 2)).select(dim + 1, 0) for j in range(4)]
        return (taps[1] + taps[2]) * 0.75 - (taps[0] + taps[3]) * 0.25
    if factor == 2:  # the same lifting step, on the even and odd samples, at half resolution
        even, odd = _every(x, dim, 0, 2), _every(x, dim, 1, 2)
        m = odd.shape[dim]  # n, or n - 1 for an odd length (the missing residual is 0)
        shape = list(even.shape)
        shape[dim] = n + 1
        residual = torch.zeros(shape, dtype=x.dtype, device=x.device)  # residual[k + 1]: at 2k + 1
        inner = min(m, n - 1)
        torch.add(even.narrow(dim, 0, inner), even.narrow(dim, 1, inner), out=residual.narrow(dim, 1, inner))
        residual.narrow(dim, 1, inner).mul_(-0.5).add_(odd.narrow(dim, 0, inner))
        if m == n:  # past the last chroma site the interpolator replicates it
            torch.sub(odd.narrow(dim, n - 1, 1), even.narrow(dim, n - 1, 1), out=residual.narrow(dim, n, 1))
        out = residual.narrow(dim, 0, n) + residual.narrow(dim, 1, n)
        return out.mul_(0.25).add_(even)
    xp = _pad(x, dim, 0, n * factor - length, "replicate")
    decimated = xp.unflatten(dim, (n, factor)).select(dim + 1, 0)
    residual = xp - _up(decimated, dim, factor, "cosited", n * factor)
    rp = _pad(residual, dim, factor, factor, "zero")
    out = decimated.clone()
    for j in range(1, factor):
        weight = (factor - j) / factor**2
        after = rp.narrow(dim, factor + j, n * factor).unflatten(dim, (n, factor)).select(dim + 1, 0)
        before = rp.narrow(dim, factor - j, n * factor).unflatten(dim, (n, factor)).select(dim + 1, 0)
        out += (after + before) * weight
    return out


# --- frames <-> tensors --------------------------------------------------------------------------


def frame_to_tensor(
    frame: av.VideoFrame,
    desc: ColourDescription,
    *,
    clamp: bool = True,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Converts a decoded frame to the core's RGB: (3, H, W) float32 in [0, 1], and its alpha.

    The samples are read from the frame's planes without a copy, decoded with ``desc``'s matrix and
    range at the format's bit depth, chroma upsampled (linear interpolation at the chroma siting,
    edges replicated), and clamped to [0, 1] only after the matrix. A picture converted back with
    :func:`tensor_to_frame` (same format and description) gives back its codes to within one
    (rounding at the cube's surface) where it decodes inside the RGB cube, whatever its chroma,
    subsampled or not; with ``clamp=False`` on both sides, exactly, for any codes. (Chroma
    resampling: see the note above ``_up``.)

    Args:
        frame: a frame in any of :func:`supported_pix_fmts`.
        desc: its colour description, usually ``ColourDescription.from_frame(frame)``. Unused for
            RGB frames; only its range is used for gray ones.
        clamp: clamp RGB to [0, 1] (the core's contract); False keeps out-of-gamut values.
        device: where to convert (the codes are moved there first, which is cheaper than moving the
            float result); the CPU by default.

    Returns:
        (rgb, alpha): rgb (3, H, W) float32; alpha (H, W) float32 in [0, 1] for formats with an
        alpha channel, else None.

    Raises:
        InputError: the frame's pixel format is not supported (named in the message).
    """
    layout = _layout(frame.format.name, f"frame at pts {frame.pts}")
    return planes_to_tensor(_samples(frame, layout), layout, desc, clamp=clamp, device=device)


def planes_to_tensor(
    samples: Sequence[np.ndarray],
    layout: _Layout,
    desc: ColourDescription,
    *,
    clamp: bool = True,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`frame_to_tensor` on bare sample arrays: each channel's (rows, columns) samples in the
    layout's order (Y, Cb, Cr[, A]) / (R, G, B[, A]) / (Y[, A]), e.g. a VapourSynth frame's planes
    with :func:`planar_layout`. The picture's size is the first array's shape."""
    h, w = samples[0].shape[:2]
    top = 1.0 if layout.floating else float(2**layout.bits - 1)
    alpha = _to_float(samples[-1], device).div_(top) if layout.alpha else None
    if layout.family == "rgb":
        rgb = torch.stack([_to_float(a, device) for a in samples[:3]]).div_(top)
        if clamp and layout.floating:
            rgb.clamp_(0.0, 1.0)
        return rgb, alpha
    colour_range = "full" if layout.full_range else desc.range
    offset, scale = _luma_coding(layout.bits, colour_range, layout.floating)
    y = _to_float(samples[0], device).sub_(offset).div_(scale)
    if layout.family == "gray":
        rgb = torch.stack((y, y, y))
    else:
        offset, scale = _chroma_coding(layout.bits, colour_range, layout.floating)
        c = torch.stack([_to_float(a, device) for a in samples[1:3]]).sub_(offset).div_(scale)
        horizontal, vertical = _sitings(desc, layout)
        c = _up(_up(c, 1, layout.sub_y, vertical, h), 2, layout.sub_x, horizontal, w)
        r_pr, g_pb, g_pr, b_pb = _rgb_coefficients(desc.matrix)
        rgb = torch.empty((3, h, w), dtype=torch.float32, device=y.device)
        torch.add(y, c[1], alpha=r_pr, out=rgb[0])
        torch.add(y, c[0], alpha=g_pb, out=rgb[1]).add_(c[1], alpha=g_pr)
        torch.add(y, c[0], alpha=b_pb, out=rgb[2])
    if clamp:
        rgb.clamp_(0.0, 1.0)
    return rgb, alpha


def _quantise(v: torch.Tensor, offset: float, scale: float, layout: _Layout) -> np.ndarray:
    if layout.floating:
        return (v * scale + offset).to(torch.float16 if layout.bits == 16 else torch.float32).cpu().numpy()
    top = 2**layout.bits - 1
    codes = (v * scale + offset).round_().clamp_(0, top)
    dtype = torch.uint8 if layout.bits <= 8 else torch.uint16
    out = codes.to(dtype).cpu().numpy()
    return out << layout.shift if layout.shift else out


def _write(frame: av.VideoFrame, layout: _Layout, codes: list[np.ndarray]) -> None:
    w, h = frame.width, frame.height
    cw, ch = -(-w // layout.sub_x), -(-h // layout.sub_y)
    dt = layout.dtype
    top = (2**layout.bits - 1) << layout.shift
    if layout.storage == "planar":
        for i, (p, a) in enumerate(zip(layout.channels, codes, strict=True)):
            chroma = layout.family == "yuv" and i in (1, 2)
            _plane(frame, p, dt, cw if chroma else w)[: ch if chroma else h] = a
    elif layout.storage == "packed":
        px = _plane(frame, 0, dt, w * layout.stride)[:h].reshape(h, w, layout.stride)
        if len(layout.channels) < layout.stride:  # padding byte (rgb0...): opaque, if read as alpha
            px[...] = top
        for c, a in zip(layout.channels, codes, strict=True):
            px[:, :, c] = a
    elif layout.storage == "semiplanar":
        _plane(frame, 0, dt, w)[:h] = codes[0]
        uv = _plane(frame, 1, dt, cw * 2)[:ch].reshape(ch, cw, 2)
        uv[:, :, layout.channels[1]] = codes[1]
        uv[:, :, layout.channels[2]] = codes[2]
    else:  # yuyv
        px = _plane(frame, 0, dt, cw * 4)[:h].reshape(h, cw, 4)
        y = codes[0] if w % 2 == 0 else np.concatenate((codes[0], codes[0][:, -1:]), axis=1)
        px[:, :, layout.channels[0]] = y[:, 0::2]
        px[:, :, layout.channels[0] + 2] = y[:, 1::2]
        px[:, :, layout.channels[1]] = codes[1]
        px[:, :, layout.channels[2]] = codes[2]


def _tags(desc: ColourDescription, layout: _Layout) -> dict[str, int]:
    """The AV colour fields to set on a frame or an encoder for pictures coded in ``layout``."""
    if layout.family == "rgb":
        colorspace, colour_range = _AV_RGB, _AV_RANGE["full"]
    else:
        colorspace = desc.codes()["matrix"]  # bt601: smpte170m (6), or bt470bg (5) for PAL primaries
        colour_range = _AV_RANGE["full" if layout.full_range else desc.range]
    location = 0
    if layout.family == "yuv" and (layout.sub_x > 1 or layout.sub_y > 1):
        name = desc.chroma_location or ("center" if layout.full_range else "left")
        location = _code(_CHROMA_LOCATIONS, name)
    return {
        "colorspace": colorspace,
        "color_range": colour_range,
        "color_primaries": _code(_PRIMARIES, desc.primaries),
        "color_trc": _code(_TRANSFERS, desc.transfer),
        "chroma_location": location,
    }


def tensor_to_frame(
    rgb: torch.Tensor,
    desc: ColourDescription,
    pix_fmt: str,
    alpha: torch.Tensor | None = None,
    *,
    clamp: bool = True,
) -> av.VideoFrame:
    """Converts the core's RGB to a frame of ``pix_fmt``, tagged with ``desc``.

    RGB is clamped to [0, 1] (unless ``clamp`` is False), coded with ``desc``'s matrix and range, chroma downsampled with the
    left inverse of :func:`frame_to_tensor`'s upsampling (anti-aliased; see ``_down``), rounded to
    the nearest code. The computation runs on ``rgb``'s device; only the codes come to the CPU.
    The frame's colorspace, color_range, color_primaries, color_trc and chroma_location are set;
    encoders do not read those from frames, so tag the encoder too (:func:`tag_codec_context`).

    Args:
        rgb: (3, H, W) floating-point RGB.
        desc: the colour description to code with (usually the source's).
        pix_fmt: any of :func:`supported_pix_fmts`.
        alpha: (H, W) in [0, 1], for formats with alpha (opaque when None); ignored by others.
        clamp: clamp RGB to [0, 1] before coding (codes are always clamped to the format's range);
            False is the inverse of ``frame_to_tensor(..., clamp=False)`` for any codes.

    Returns:
        A new frame (pts unset).

    Raises:
        InputError: ``pix_fmt`` is not supported, or ``rgb`` / ``alpha`` are not of that shape.
    """
    return planes_to_frame(output_planes(rgb, desc, pix_fmt, alpha, clamp=clamp), desc, pix_fmt)


def output_planes(
    rgb: torch.Tensor,
    desc: ColourDescription,
    pix_fmt: str,
    alpha: torch.Tensor | None = None,
    *,
    clamp: bool = True,
) -> list[np.ndarray]:
    """:func:`tensor_to_frame`'s first half: the codes of ``pix_fmt``'s planes, computed on
    ``rgb``'s device (``alpha`` is moved there); only the codes come to the CPU.

    Raises:
        InputError: ``pix_fmt`` is not supported, or ``rgb`` / ``alpha`` are not of that shape.
    """
    return tensor_to_planes(rgb, desc, _layout(pix_fmt, "output"), alpha, clamp=clamp)


def planes_to_frame(codes: list[np.ndarray], desc: ColourDescription, pix_fmt: str) -> av.VideoFrame:
    """:func:`tensor_to_frame`'s second half: a new frame (pts unset) of :func:`output_planes`' codes,
    tagged with ``desc``."""
    layout = _layout(pix_fmt, "output")
    h, w = codes[0].shape
    frame = av.VideoFrame(w, h, pix_fmt)
    _write(frame, layout, codes)
    for field, value in _tags(desc, layout).items():
        setattr(frame, field, value)
    return frame


def tensor_to_planes(
    rgb: torch.Tensor,
    desc: ColourDescription,
    layout: _Layout,
    alpha: torch.Tensor | None = None,
    *,
    clamp: bool = True,
) -> list[np.ndarray]:
    """:func:`tensor_to_frame` into bare sample arrays, one per channel in the layout's order
    (the inverse of :func:`planes_to_tensor`). Integer layouts give uint8/uint16 codes (shifted
    for the high-bit formats), float layouts float16/float32 values (not clamped to a range).

    Raises:
        InputError: ``rgb`` / ``alpha`` are not of the expected shape.
    """
    if (
        not isinstance(rgb, torch.Tensor)
        or rgb.dim() != 3
        or rgb.shape[0] != 3
        or not rgb.is_floating_point()
    ):
        got = tuple(rgb.shape) if isinstance(rgb, torch.Tensor) else type(rgb).__name__
        raise InputError(f"rgb: expected a (3, H, W) floating-point tensor, got {got}")
    h, w = rgb.shape[1:]
    if alpha is not None and (alpha.shape != (h, w) or not alpha.is_floating_point()):
        raise InputError(f"alpha: expected a ({h}, {w}) floating-point tensor, got {tuple(alpha.shape)}")
    x = rgb.to(torch.float32)
    if clamp:
        x = x.clamp(0.0, 1.0)
    top = 1.0 if layout.floating else float(2**layout.bits - 1)
    if layout.family == "rgb":
        codes = [_quantise(x[i], 0.0, top, layout) for i in range(3)]
    else:
        kr, kb = _MATRICES[desc.matrix]
        colour_range = "full" if layout.full_range else desc.range
        y = x[0] * kr
        y.add_(x[1], alpha=1.0 - kr - kb).add_(x[2], alpha=kb)
        codes = [_quantise(y, *_luma_coding(layout.bits, colour_range, layout.floating), layout)]
        if layout.family == "yuv":
            pb = (x[2] - y).mul_(1.0 / (2 * (1 - kb)))
            pr = (x[0] - y).mul_(1.0 / (2 * (1 - kr)))
            horizontal, vertical = _sitings(desc, layout)
            c = _down(_down(torch.stack((pb, pr)), 2, layout.sub_x, horizontal), 1, layout.sub_y, vertical)
            offset, scale = _chroma_coding(layout.bits, colour_range, layout.floating)
            codes += [_quantise(c[0], offset, scale, layout), _quantise(c[1], offset, scale, layout)]
    if layout.alpha:
        a = alpha.to(x.device, torch.float32).clamp(0.0, 1.0) if alpha is not None else torch.ones_like(x[0])
        codes.append(_quantise(a, 0.0, top, layout))
    return codes


def to_rgb8(rgb: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 of a (3, H, W) RGB tensor in [0, 1]: what the analysis sees of a frame,
    the same from every front."""
    return rgb.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def tag_codec_context(
    codec_context: av.video.codeccontext.VideoCodecContext, desc: ColourDescription
) -> None:
    """Sets an encoder's colour tags (written into the stream headers) for its pixel format.

    Call before the first frame is encoded; ``codec_context.pix_fmt`` must already be set.
    """
    layout = _layout(str(codec_context.pix_fmt), "encoder")
    tags = _tags(desc, layout)
    codec_context.colorspace = tags["colorspace"]
    codec_context.color_range = tags["color_range"]
    codec_context.color_primaries = tags["color_primaries"]
    codec_context.color_trc = tags["color_trc"]
    codec_context.chroma_sample_location = tags["chroma_location"]


# --- output format choice ------------------------------------------------------------------------

_FAMILY_ORDER: dict[str, tuple[str, ...]] = {
    "yuv": ("yuv", "rgb", "gray"),
    "rgb": ("rgb", "yuv", "gray"),
    "gray": ("gray", "yuv", "rgb"),
}


def _log2(factor: int) -> int:
    return factor.bit_length() - 1


def output_pix_fmt(input_pix_fmt: str, codec: str) -> str:
    """The encoder pixel format that best keeps the input's family, bit depth, chroma and alpha.

    Preference, in order: the same family (YUV, RGB, gray; gray goes to YUV 4:2:0 before RGB);
    no bits lost; no chroma resolution lost; alpha kept; the fewest extra bits; the least extra
    chroma; no alpha added; planar before packed or semi-planar; ``yuv`` before ``yuvj`` (the
    description carries the range); the input's own format; the encoder's order. E.g. ``yuv420p10le`` stays itself for
    libx264, libx265 and ffv1 and becomes ``yuv422p10le`` for prores_ks; ``rgb24`` becomes
    ``yuv444p`` for libx264, ``gbrp`` for libx265, ``bgr0`` for ffv1.

    Raises:
        InputError: the input format is not supported, the codec is unknown or has no format this
            module writes.
    """
    src = _layout(input_pix_fmt, "input")
    try:
        encoder = av.codec.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError) as e:
        raise InputError(f"codec {codec!r}: no such video encoder ({e})") from None
    if encoder.type != "video":
        raise InputError(f"codec {codec!r}: not a video encoder")
    formats = encoder.video_formats
    names = [f.name for f in formats] if formats else sorted(_LAYOUTS)
    families = _FAMILY_ORDER[src.family]
    src_sub = (1, 1) if src.family == "gray" else (_log2(src.sub_x), _log2(src.sub_y))

    def key(item: tuple[int, str]) -> tuple[int, ...]:
        index, name = item
        c = _LAYOUTS[name]
        sub = (_log2(c.sub_x), _log2(c.sub_y)) if c.family == "yuv" else (0, 0)
        if src.family == "gray":
            chroma_lost, chroma_extra = 0, abs(sub[0] - 1) + abs(sub[1] - 1)
        else:
            chroma_lost = max(0, sub[0] - src_sub[0]) + max(0, sub[1] - src_sub[1])
            chroma_extra = max(0, src_sub[0] - sub[0]) + max(0, src_sub[1] - sub[1])
        return (
            families.index(c.family),
            max(0, src.bits - c.bits),
            chroma_lost,
            int(src.alpha and not c.alpha),
            max(0, c.bits - src.bits),
            chroma_extra,
            int(c.alpha and not src.alpha),
            int(c.storage != "planar"),
            int(c.full_range),
            int(name != input_pix_fmt),
            index,
        )

    candidates = [(i, n) for i, n in enumerate(names) if n in _LAYOUTS]
    if not candidates:
        raise InputError(f"codec {codec!r}: none of its pixel formats {names} can be written")
    return min(candidates, key=key)[1]
