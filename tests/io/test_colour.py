"""Tests of the YUV <-> RGB conversion: YUV test patterns of known codes through a lossless codec and
back, known colour codes, descriptions read and written, every pixel format against libswscale's
own repacking, chroma siting, output format choice."""

from __future__ import annotations

import dataclasses
import io
import itertools

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmrealsr_video.errors import InputError
from mmrealsr_video.io.colour import (
    ColourDescription,
    frame_to_tensor,
    output_pix_fmt,
    supported_pix_fmts,
    tag_codec_context,
    tensor_to_frame,
)

W, H = 64, 48
# (Kr, Kb) as ITU-T H.273 gives them, independent of the module's table.
KRB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def _codes(rgb: np.ndarray, matrix: str, colour_range: str, bits: int) -> list[np.ndarray]:
    """Reference coding of (3, H, W) RGB in [0, 1] to unrounded 4:4:4 Y, Cb, Cr codes (float64)."""
    kr, kb = KRB[matrix]
    r, g, b = rgb
    y = kr * r + (1 - kr - kb) * g + kb * b
    pb, pr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    if colour_range == "full":
        top = 2**bits - 1
        return [y * top, pb * top + 2 ** (bits - 1), pr * top + 2 ** (bits - 1)]
    s = 2 ** (bits - 8)
    return [16 * s + 219 * s * y, 128 * s + 224 * s * pb, 128 * s + 224 * s * pr]


def _left_sited(c: np.ndarray, sub: tuple[int, int]) -> np.ndarray:
    """Subsampled chroma at MPEG-2 ("left") siting: even columns; between row pairs for 4:2:0."""
    c = c[:, :: sub[0]]
    return (c[0::2] + c[1::2]) / 2 if sub[1] == 2 else c


def _quantised(planes: list[np.ndarray], bits: int) -> list[np.ndarray]:
    dtype = np.uint8 if bits == 8 else np.uint16
    return [np.clip(np.round(p), 0, 2**bits - 1).astype(dtype) for p in planes]


def _smooth_rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """Random RGB varying smoothly: a 4x5 random grid, bicubic-interpolated, clipped to [0, 1]."""
    grid = torch.from_numpy(np.random.default_rng(seed).random((1, 3, 4, 5)))
    return F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0].clamp(0, 1).numpy()


def _patterns(matrix: str, colour_range: str, bits: int, sub: tuple[int, int]) -> dict[str, list[np.ndarray]]:
    """YUV test pictures of known codes, inside the RGB cube once decoded."""
    yy, xx = np.mgrid[0:H, 0:W] / np.array([[[H - 1]], [[W - 1]]])
    bars75 = np.array(
        [[3, 3, 3], [3, 3, 0], [0, 3, 3], [0, 3, 0], [3, 0, 3], [3, 0, 0], [0, 0, 3], [0, 0, 0]]
    ) / 4.0  # fmt: skip
    rgbs = {
        "ramps": 0.1 + 0.8 * np.stack([xx, yy, (xx + yy) / 2]),
        "bars75": np.repeat(bars75[np.arange(W) // 8].T[:, None], H, axis=1),
        "smooth": 0.05 + 0.9 * _smooth_rgb(1),  # inside the cube, also once 4:2:0-interpolated
    }
    if sub == (1, 1):  # any colour at all, per pixel
        rgbs["random"] = np.random.default_rng(2).random((3, H, W))
    out = {}
    for name, rgb in rgbs.items():
        y, cb, cr = _codes(rgb, matrix, colour_range, bits)
        out[name] = _quantised([y, _left_sited(cb, sub), _left_sited(cr, sub)], bits)
    return out


def _legal_random(colour_range: str, bits: int, sub: tuple[int, int]) -> list[np.ndarray]:
    """Random codes anywhere in the legal range, most of them outside the RGB cube."""
    rng = np.random.default_rng(3)
    s = 2 ** (bits - 8)
    lo, hi_y, hi_c = (0, 2**bits - 1, 2**bits - 1) if colour_range == "full" else (16 * s, 235 * s, 240 * s)
    dtype = np.uint8 if bits == 8 else np.uint16
    return [
        rng.integers(lo, hi_y + 1, (H, W)).astype(dtype),
        rng.integers(lo, hi_c + 1, (H // sub[1], W // sub[0])).astype(dtype),
        rng.integers(lo, hi_c + 1, (H // sub[1], W // sub[0])).astype(dtype),
    ]


def _frame(planes: list[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    frame = av.VideoFrame(planes[0].shape[1], planes[0].shape[0], pix_fmt)
    for plane, values in zip(frame.planes, planes, strict=True):
        rows = np.frombuffer(plane, values.dtype).reshape(plane.height, -1)
        rows[:, : plane.width] = values
    return frame


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    dtype = np.uint8 if frame.format.components[0].bits == 8 else np.uint16
    return [
        np.frombuffer(p, dtype).reshape(p.height, -1)[:, : p.width].copy()
        for p in frame.planes[: len(frame.format.components)]
    ]


def _max_error(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    return max(int(np.abs(x.astype(np.int64) - y.astype(np.int64)).max()) for x, y in zip(a, b, strict=True))


def _through_ffv1(frames: list[av.VideoFrame], pix_fmt: str, desc: ColourDescription) -> list[av.VideoFrame]:
    """Encodes losslessly (FFV1 in Matroska, tagged with ``desc``) and decodes again."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, pix_fmt
        tag_codec_context(stream.codec_context, desc)
        for i, frame in enumerate(frames):
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        return list(container.decode(video=0))


# --- the round trip through a lossless codec ---------------------------------------------------


@pytest.mark.parametrize(
    ("pix_fmt", "matrix", "colour_range"),
    [
        *itertools.product(["yuv444p", "yuv420p", "yuv444p10le", "yuv420p10le"], KRB, ["limited", "full"]),
        *itertools.product(["yuv422p10le", "yuv420p12le", "yuv444p16le"], ["bt709"], ["limited", "full"]),
    ],
)
def test_yuv_patterns_survive_ffv1_rgb_and_back(pix_fmt: str, matrix: str, colour_range: str) -> None:
    bits = int(pix_fmt[7:-2]) if pix_fmt.endswith("le") else 8
    sub = {"420": (2, 2), "422": (2, 1), "444": (1, 1)}[pix_fmt[3:6]]
    patterns = _patterns(matrix, colour_range, bits, sub)
    patterns["legal"] = _legal_random(colour_range, bits, sub)
    decoded = _through_ffv1(
        [_frame(p, pix_fmt) for p in patterns.values()], pix_fmt, ColourDescription(matrix, colour_range)
    )

    desc = ColourDescription.from_frame(decoded[0])
    assert (desc.matrix, desc.range) == (matrix, colour_range)
    back = []
    for name, frame in zip(patterns, decoded, strict=True):
        assert frame.format.name == pix_fmt
        clamp = name != "legal"  # out-of-cube codes survive only unclamped
        rgb, alpha = frame_to_tensor(frame, desc, clamp=clamp)
        assert rgb.shape == (3, H, W) and rgb.dtype == torch.float32 and alpha is None
        if clamp:
            assert rgb.min() >= 0.0 and rgb.max() <= 1.0
        back.append(tensor_to_frame(rgb, desc, pix_fmt, clamp=clamp))
    again = _through_ffv1(back, pix_fmt, desc)

    assert ColourDescription.from_frame(again[0]) == desc
    for name, frame in zip(patterns, again, strict=True):
        assert _max_error(_planes(frame), patterns[name]) <= 1, name


def _coded_420(rgb: np.ndarray, bits: int) -> list[np.ndarray]:
    y, cb, cr = _codes(rgb, "bt709", "limited", bits)
    return _quantised([y, _left_sited(cb, (2, 2)), _left_sited(cr, (2, 2))], bits)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
def test_420_colours_outside_the_rgb_cube_are_clamped(pix_fmt: str) -> None:
    """Interpolated chroma next to a saturated edge, or per-pixel random colour, leaves the RGB cube;
    clamping there loses codes, nothing else does: unclamped, the same pictures come back exactly."""
    bits = 10 if "10" in pix_fmt else 8
    bars100 = np.eye(3)[np.arange(W) // 8 % 3].T[:, None].repeat(H, axis=1)
    noise = np.random.default_rng(4).random((3, H, W))
    desc = ColourDescription("bt709", "limited")
    for codes in (_coded_420(bars100, bits), _coded_420(noise, bits)):
        frame = _frame(codes, pix_fmt)
        exact = tensor_to_frame(frame_to_tensor(frame, desc, clamp=False)[0], desc, pix_fmt, clamp=False)
        clamped = tensor_to_frame(frame_to_tensor(frame, desc)[0], desc, pix_fmt)
        assert _max_error(_planes(exact), codes) == 0
        assert _max_error(_planes(clamped), codes) > 1


# --- known values --------------------------------------------------------------------------------

KNOWN = [
    # matrix, range, bits, RGB, (Y, Cb, Cr)
    ("bt709", "limited", 8, (1, 1, 1), (235, 128, 128)),
    ("bt709", "limited", 8, (0, 0, 0), (16, 128, 128)),
    ("bt709", "limited", 8, (1, 0, 0), (63, 102, 240)),
    ("bt709", "limited", 8, (0, 1, 0), (173, 42, 26)),
    ("bt709", "limited", 8, (0, 0, 1), (32, 240, 118)),
    ("bt601", "limited", 8, (1, 1, 1), (235, 128, 128)),
    ("bt601", "limited", 8, (1, 0, 0), (81, 90, 240)),
    ("bt601", "limited", 8, (0, 1, 0), (145, 54, 34)),
    ("bt601", "limited", 8, (0, 0, 1), (41, 240, 110)),
    ("bt601", "full", 8, (1, 1, 1), (255, 128, 128)),
    ("bt601", "full", 8, (0, 0, 0), (0, 128, 128)),
    ("bt601", "full", 8, (0, 1, 0), (150, 44, 21)),
    ("bt709", "full", 8, (1, 1, 1), (255, 128, 128)),
    ("bt709", "limited", 10, (1, 1, 1), (940, 512, 512)),
    ("bt709", "limited", 10, (0, 0, 0), (64, 512, 512)),
    ("bt709", "limited", 10, (1, 0, 0), (250, 409, 960)),
    ("bt709", "full", 10, (1, 1, 1), (1023, 512, 512)),
    ("bt709", "full", 10, (0, 0, 0), (0, 512, 512)),
]


@pytest.mark.parametrize(("matrix", "colour_range", "bits", "rgb", "yuv"), KNOWN)
def test_pure_colours_have_their_documented_codes(
    matrix: str, colour_range: str, bits: int, rgb: tuple[int, ...], yuv: tuple[int, ...]
) -> None:
    pix_fmt = "yuv444p" if bits == 8 else "yuv444p10le"
    desc = ColourDescription(matrix, colour_range)
    picture = torch.tensor(rgb, dtype=torch.float32)[:, None, None].expand(3, 4, 6)
    assert [int(p[0, 0]) for p in _planes(tensor_to_frame(picture, desc, pix_fmt))] == list(yuv)

    dtype = np.uint8 if bits == 8 else np.uint16
    frame = _frame([np.full((4, 6), v, dtype) for v in yuv], pix_fmt)
    decoded, _ = frame_to_tensor(frame, desc)
    # Exact for white and black; otherwise within the rounding of the YUV codes, seen through the matrix.
    tolerance = 0.0 if len(set(rgb)) == 1 else 1.5 / (2**bits - 1)
    assert (decoded[:, 0, 0] - torch.tensor(rgb, dtype=torch.float32)).abs().max() <= tolerance


def test_full_range_red_clips_at_the_top_code() -> None:
    """Full-range Cr of pure red is 128 + 127.5: the top code, 255 (H.273's 2^n - 1 scale)."""
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 2, 2)
    assert [
        int(p[0, 0]) for p in _planes(tensor_to_frame(red, ColourDescription("bt601", "full"), "yuv444p"))
    ] == [
        76,
        85,
        255,
    ]


@pytest.mark.parametrize(("cs", "matrix"), [(1, "bt709"), (5, "bt601")])
@pytest.mark.parametrize(("cr", "colour_range"), [(1, "limited"), (2, "full")])
def test_matrix_agrees_with_libswscale(cs: int, matrix: str, cr: int, colour_range: str) -> None:
    planes = _legal_random(colour_range, 8, (1, 1))
    frame = _frame(planes, "yuv444p")
    frame.colorspace, frame.color_range = cs, cr
    ours, _ = frame_to_tensor(frame, ColourDescription.from_frame(frame))
    theirs = frame.reformat(format="rgb48le", src_colorspace=cs, src_color_range=cr, threads=1).to_ndarray()
    # libswscale's fixed-point path is itself good to about one 8-bit code.
    assert np.abs(ours.permute(1, 2, 0).numpy() - theirs / 65535.0).max() * 255 < 1.5


# --- every pixel format --------------------------------------------------------------------------

_SUBS = {(2, 2): "420", (2, 1): "422", (1, 1): "444", (1, 2): "440", (4, 1): "411"}


def _planar_twin(pix_fmt: str) -> str | None:
    """The planar format with the same samples, for libswscale to repack into; None if planar."""
    twins = {"nv12": "yuv420p", "nv21": "yuv420p", "nv16": "yuv422p", "nv24": "yuv444p", "nv42": "yuv444p"}
    twins |= {"nv20le": "yuv422p10le", "y210le": "yuv422p10le"}
    twins |= {n: "yuv422p" for n in ("yuyv422", "yvyu422", "uyvy422")}
    twins |= {
        f"p{s}{b}le": f"yuv{_SUBS[(2, 2) if s == '0' else (2, 1) if s == '2' else (1, 1)]}p{b}le"
        for s in "024"
        for b in (10, 12, 16)
    }
    twins |= {n: "gbrp" for n in ("rgb24", "bgr24", "rgb0", "bgr0", "0rgb", "0bgr")}
    twins |= {n: "gbrap" for n in ("rgba", "bgra", "argb", "abgr")}
    twins |= {"rgb48le": "gbrp16le", "bgr48le": "gbrp16le", "rgba64le": "gbrap16le", "bgra64le": "gbrap16le"}
    twins |= {f"yuvj{s}p": f"yuv{s}p" for s in _SUBS.values()}
    return twins.get(pix_fmt)


def test_every_supported_format_is_read_as_libswscale_repacks_it_and_written_back() -> None:
    desc = ColourDescription("bt709", "limited")
    h, w = 6, 10
    rgb = torch.from_numpy(_smooth_rgb(5, h, w)).float() * 0.8 + 0.1
    alpha = torch.rand(h, w, generator=torch.Generator().manual_seed(0))
    assert len(supported_pix_fmts()) > 60
    for pix_fmt in sorted(supported_pix_fmts()):
        frame = tensor_to_frame(rgb, desc, pix_fmt, alpha)
        frame_desc = ColourDescription.from_frame(frame)
        got, got_alpha = frame_to_tensor(frame, frame_desc)
        assert got.shape == (3, h, w), pix_fmt
        assert (got_alpha is not None) == any(c.is_alpha for c in frame.format.components), pix_fmt
        twin = _planar_twin(pix_fmt)
        if twin is not None:
            # One thread: libswscale's slice threads gave a wrong chroma row now and then (p016le).
            repacked = frame.reformat(format=twin, threads=1)
            want, _ = frame_to_tensor(repacked, ColourDescription.from_frame(repacked))
            assert torch.allclose(got, want, atol=1e-6), pix_fmt
        # Codes -> RGB -> codes is the identity on any picture of the format (inside the RGB cube).
        again = tensor_to_frame(got, frame_desc, pix_fmt, got_alpha)
        assert _max_error(_planes(again), _planes(frame)) <= 1, pix_fmt


@pytest.mark.parametrize("size", [(37, 23), (1, 1), (2, 3)])
@pytest.mark.parametrize(
    "pix_fmt", ["yuv420p", "yuvj420p", "yuv422p10le", "yuv411p", "nv12", "yuyv422", "yuv440p"]
)
def test_odd_sizes_are_exact(pix_fmt: str, size: tuple[int, int]) -> None:
    w, h = size
    frame = av.VideoFrame(w, h, pix_fmt)
    rng = np.random.default_rng(6)
    for plane in frame.planes:
        np.frombuffer(plane, np.uint8)[:] = rng.integers(0, 256, plane.buffer_size)
    if pix_fmt.endswith("10le"):
        for plane in frame.planes:
            np.frombuffer(plane, np.uint16)[:] &= 1023
    desc = ColourDescription.from_frame(frame)
    rgb, _ = frame_to_tensor(frame, desc, clamp=False)
    back = tensor_to_frame(rgb, desc, pix_fmt, clamp=False)
    assert _max_error(_planes(back), _planes(frame)) == 0


# --- chroma siting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pix_fmt", "location", "x0", "y0"),
    [
        ("yuv420p10le", None, 0.0, 0.5),  # MPEG-2 "left" by default
        ("yuv420p10le", "left", 0.0, 0.5),
        ("yuv420p10le", "center", 0.5, 0.5),
        ("yuv420p10le", "topleft", 0.0, 0.0),
        ("yuv420p10le", "top", 0.5, 0.0),
        ("yuv422p10le", None, 0.0, 0.0),
        ("yuv411p", None, 0.0, 0.0),
        ("yuvj420p", None, 0.5, 0.5),  # JPEG: centred
    ],
)
def test_chroma_is_interpolated_at_its_siting(
    pix_fmt: str, location: str | None, x0: float, y0: float
) -> None:
    """Chroma that is a linear function of position, sampled where the siting says, comes back as
    that function at every luma sample (away from the edges, which are replicated)."""
    desc = ColourDescription("bt709", "limited", chroma_location=location)
    probe = av.VideoFrame(W, H, pix_fmt)
    sx, sy = W // probe.planes[1].width, H // probe.planes[1].height
    bits = 10 if "10" in pix_fmt else 8
    s = 2 ** (bits - 8)
    mid = 128 * s

    def cb_at(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # codes, in luma sample coordinates
        return mid + s * (2 * (x - W / 2) - 2 * (y - H / 2))

    cy, cx = np.mgrid[0 : H // sy, 0 : W // sx].astype(np.float64)
    chroma = cb_at(sx * cx + x0 * (sx - 1), sy * cy + y0 * (sy - 1))
    dtype = np.uint8 if bits == 8 else np.uint16
    assert np.array_equal(chroma, chroma.astype(dtype))  # the sampled values are whole codes
    luma, neutral = np.full((H, W), mid, dtype), np.full(chroma.shape, mid, dtype)
    frame = _frame([luma, chroma.astype(dtype), neutral], pix_fmt)
    rgb, _ = frame_to_tensor(frame, desc, clamp=False)  # saturated: leaves the RGB cube

    kr, kb = KRB["bt709"]
    r, g, b = rgb.double().numpy()
    y = kr * r + (1 - kr - kb) * g + kb * b
    full_range = pix_fmt.startswith("yuvj")
    cb = (b - y) / (2 * (1 - kb)) * ((2**bits - 1) if full_range else 224 * s) + (
        2 ** (bits - 1) if full_range else mid
    )
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    inner = (slice(4, -4), slice(8, -8))
    assert np.abs(cb - cb_at(xx, yy))[inner].max() < 0.01


# --- descriptions --------------------------------------------------------------------------------


def _tagged(pix_fmt: str = "yuv420p", h: int = 48, **tags: int) -> av.VideoFrame:
    frame = av.VideoFrame(64, h, pix_fmt)
    for name, value in tags.items():
        setattr(frame, name, value)
    return frame


def test_description_is_read_from_the_frame() -> None:
    desc = ColourDescription.from_frame(
        _tagged(colorspace=9, color_range=2, color_primaries=9, color_trc=16, chroma_location=3)
    )
    assert desc == ColourDescription("bt2020nc", "full", "bt2020", "smpte2084", "topleft")
    assert ColourDescription.from_frame(_tagged(colorspace=5, color_primaries=5)).matrix == "bt601"
    assert ColourDescription.from_frame(_tagged(colorspace=6)).matrix == "bt601"
    assert ColourDescription.from_frame(_tagged(colorspace=1)).matrix == "bt709"


def test_unspecified_tags_get_the_documented_defaults() -> None:
    assert ColourDescription.from_frame(_tagged(h=576)) == ColourDescription("bt601", "limited")
    assert ColourDescription.from_frame(_tagged(h=720)).matrix == "bt709"
    assert ColourDescription.from_frame(_tagged(h=1440), height=480).matrix == "bt601"
    assert ColourDescription.from_frame(_tagged("yuvj420p", color_range=1)).range == "full"
    assert ColourDescription.from_frame(_tagged("gray")).range == "full"
    assert ColourDescription.from_frame(_tagged("gray", color_range=1)).range == "limited"
    assert ColourDescription.from_frame(_tagged("rgb24", color_range=2, colorspace=0)).range == "limited"


def test_unconvertible_matrices_and_bad_fields_are_refused() -> None:
    with pytest.raises(InputError, match="ycgco"):
        ColourDescription.from_frame(_tagged(colorspace=8))
    with pytest.raises(InputError, match="bt2020c"):
        ColourDescription.from_frame(_tagged(colorspace=10))
    with pytest.raises(InputError, match="matrix"):
        ColourDescription("bt2020c", "limited")
    with pytest.raises(InputError, match="range"):
        ColourDescription("bt709", "tv")
    with pytest.raises(InputError, match="primaries"):
        ColourDescription("bt709", "limited", primaries="bt.709")
    with pytest.raises(InputError, match="chroma_location"):
        ColourDescription("bt709", "limited", chroma_location="middle")


def test_description_is_written_onto_frames_and_encoders() -> None:
    rgb = torch.full((3, 8, 8), 0.5)
    pal = ColourDescription("bt601", "limited", "bt470bg", "gamma28")
    frame = tensor_to_frame(rgb, pal, "yuv420p")
    tags = (
        frame.colorspace,
        frame.color_range,
        frame.color_primaries,
        frame.color_trc,
        frame.chroma_location,
    )
    assert tags == (5, 1, 5, 5, 1)
    ntsc = ColourDescription("bt601", "limited", "smpte170m", "bt709")
    assert tensor_to_frame(rgb, ntsc, "yuv420p").colorspace == 6
    rgb_frame = tensor_to_frame(rgb, ntsc, "gbrp")
    assert (rgb_frame.colorspace, rgb_frame.color_range) == (0, 2)
    assert tensor_to_frame(rgb, ntsc, "yuvj420p").color_range == 2

    hd = ColourDescription("bt709", "limited", "bt709", "bt709")
    decoded = _through_ffv1([tensor_to_frame(rgb, hd, "yuv422p10le")], "yuv422p10le", hd)
    # The chroma siting used (the default, "left") is tagged explicitly.
    assert ColourDescription.from_frame(decoded[0]) == dataclasses.replace(hd, chroma_location="left")


def test_libx264_stream_carries_the_tags() -> None:
    desc = ColourDescription("bt709", "limited", "bt709", "bt709")
    pix_fmt = output_pix_fmt("yuv420p10le", "libx264")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "qp": "0"})
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        tag_codec_context(stream.codec_context, desc)
        frame = tensor_to_frame(torch.from_numpy(_smooth_rgb(7)).float(), desc, pix_fmt)
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = next(container.decode(video=0))
    assert decoded.format.name == "yuv420p10le"
    assert ColourDescription.from_frame(decoded) == dataclasses.replace(desc, chroma_location="left")


# --- gray, alpha, errors -------------------------------------------------------------------------


def test_gray_frames() -> None:
    values = (np.arange(H * W).reshape(H, W) % 1024).astype(np.uint16)
    frame = _frame([values], "gray10le")
    desc = ColourDescription.from_frame(frame)
    rgb, alpha = frame_to_tensor(frame, desc)
    assert alpha is None
    assert torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[1], rgb[2])
    assert torch.allclose(rgb[0], torch.from_numpy(values / 1023.0).float(), atol=1e-6)
    assert _max_error(_planes(tensor_to_frame(rgb, desc, "gray10le")), [values]) == 0
    # Gray into YUV: neutral chroma, the same luma codes.
    limited = ColourDescription("bt709", "limited")
    studio = _frame([np.full((4, 4), 16, np.uint8)], "gray")
    studio.color_range = 1
    black, _ = frame_to_tensor(studio, ColourDescription.from_frame(studio))
    assert float(black.max()) == 0.0
    y, cb, cr = _planes(tensor_to_frame(rgb, limited, "yuv444p10le"))
    assert np.abs(y.astype(int) - np.round(64 + 876 * values.astype(np.float64) / 1023.0)).max() <= 1
    assert (cb == 512).all() and (cr == 512).all()


@pytest.mark.parametrize("pix_fmt", ["yuva420p", "yuva444p10le", "rgba", "gbrap", "ya8"])
def test_alpha_is_read_and_written(pix_fmt: str) -> None:
    desc = ColourDescription("bt709", "limited")
    rgb = torch.from_numpy(_smooth_rgb(8)).float() * 0.8 + 0.1
    alpha = torch.linspace(0, 1, W).expand(H, W)
    frame = tensor_to_frame(rgb, desc, pix_fmt, alpha)
    _, got = frame_to_tensor(frame, desc)
    assert got is not None and got.shape == (H, W)
    bits = frame.format.components[-1].bits
    assert (got - alpha).abs().max() <= 0.5 / (2**bits - 1) + 1e-6
    opaque = tensor_to_frame(rgb, desc, pix_fmt)
    assert frame_to_tensor(opaque, desc)[1].min() == 1.0
    assert frame_to_tensor(tensor_to_frame(rgb, desc, "yuv420p", alpha), desc)[1] is None


def test_unsupported_formats_and_bad_tensors_are_named() -> None:
    desc = ColourDescription("bt709", "limited")
    for pix_fmt in ("pal8", "yuv420p10be", "bayer_rggb8", "gbrpf32le"):
        with pytest.raises(InputError, match=pix_fmt):
            frame_to_tensor(av.VideoFrame(8, 8, pix_fmt), desc)
        with pytest.raises(InputError, match=pix_fmt):
            tensor_to_frame(torch.zeros(3, 8, 8), desc, pix_fmt)
        with pytest.raises(InputError, match=pix_fmt):
            output_pix_fmt(pix_fmt, "ffv1")
    with pytest.raises(InputError, match="rgb"):
        tensor_to_frame(torch.zeros(1, 3, 8, 8), desc, "yuv420p")
    with pytest.raises(InputError, match="rgb"):
        tensor_to_frame(torch.zeros(3, 8, 8, dtype=torch.uint8), desc, "yuv420p")
    with pytest.raises(InputError, match="alpha"):
        tensor_to_frame(torch.zeros(3, 8, 8), desc, "yuva420p", torch.zeros(8, 9))
    with pytest.raises(InputError, match="no-such-codec"):
        output_pix_fmt("yuv420p", "no-such-codec")


# --- output format choice ------------------------------------------------------------------------

CHOICES = [
    ("yuv420p10le", "libx264", "yuv420p10le"),
    ("yuv420p10le", "libx265", "yuv420p10le"),
    ("yuv420p10le", "ffv1", "yuv420p10le"),
    ("yuv420p10le", "prores_ks", "yuv422p10le"),
    ("yuv420p", "libx264", "yuv420p"),
    ("yuv420p", "prores_ks", "yuv422p10le"),
    ("yuv422p10le", "prores_ks", "yuv422p10le"),
    ("yuv444p12le", "prores_ks", "yuv444p10le"),
    ("yuv420p12le", "libx265", "yuv420p12le"),
    ("yuv420p12le", "ffv1", "yuv420p12le"),
    ("yuv420p12le", "libx264", "yuv420p10le"),
    ("yuv444p", "libx264", "yuv444p"),
    ("yuvj420p", "libx264", "yuv420p"),
    ("nv12", "libx264", "yuv420p"),
    ("p010le", "libx265", "yuv420p10le"),
    ("yuv411p", "libx264", "yuv422p"),
    ("gray", "libx264", "gray"),
    ("gray10le", "libx265", "gray10le"),
    ("gray", "prores_ks", "yuv422p10le"),
    ("gray16le", "ffv1", "gray16le"),
    ("rgb24", "libx264", "yuv444p"),
    ("rgb24", "libx264rgb", "rgb24"),
    ("rgb24", "libx265", "gbrp"),
    ("rgb24", "ffv1", "bgr0"),
    ("rgb48le", "ffv1", "gbrp16le"),
    ("gbrp10le", "prores_ks", "yuv444p10le"),
    ("yuva420p", "libx265", "yuva420p"),
    ("yuva420p", "libx264", "yuv420p"),
    ("yuva444p10le", "prores_ks", "yuva444p10le"),
]


@pytest.mark.parametrize(("source", "codec", "expected"), CHOICES)
def test_output_pix_fmt_keeps_depth_and_layout(source: str, codec: str, expected: str) -> None:
    try:
        formats = {f.name for f in av.codec.Codec(codec, "w").video_formats}
    except av.error.FFmpegError:
        pytest.skip(f"this FFmpeg has no {codec} encoder")
    assert expected in formats
    assert output_pix_fmt(source, codec) == expected
