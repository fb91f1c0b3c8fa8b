"""MM-RealSR training-data synthesis: determinism, shapes, controlled copies, the fixed degradation."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmrealsr_training._kernels import Kernel, fft_filter, kernel_stack
from mmrealsr_training.codecs import CODECS, VideoCoding, code_as_video, code_clip
from mmrealsr_training.config import load_config
from mmrealsr_training.degradations import (
    AXIS_ANCHORS,
    COPY_NAMES,
    DEGRADED_COPIES,
    DegradationConfig,
    SamplePlan,
    SynthesisPlan,
    degrade_fixed,
    render,
    resolve,
    sample_plan,
    synthesize,
    usm_sharpen,
)

from mmrealsr_video.errors import InputError

skimage_data = pytest.importorskip("skimage.data")


def _photo() -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(skimage_data.astronaut())).permute(2, 0, 1).float() / 255.0


@pytest.fixture(scope="module")
def gt() -> torch.Tensor:
    """Eight 192 px crops of a photograph: faces, fabric, text, flat background."""
    photo = _photo()
    corners = [(0, 0), (0, 160), (0, 320), (160, 0), (160, 160), (160, 320), (320, 0), (320, 160)]
    return torch.stack([photo[:, t : t + 192, s : s + 192] for t, s in corners]).contiguous()


def _laplacian_var(x: torch.Tensor) -> torch.Tensor:
    """Per-image variance of the Laplacian of the luma: a sharpness measure."""
    luma = x.mean(dim=1, keepdim=True)
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return F.conv2d(luma, k).flatten(1).var(dim=1)


def _highpass_energy(x: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared difference between the image and its 3x3 box blur, over all channels."""
    smooth = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (x - smooth).pow(2).flatten(1).mean(dim=1)


# ----------------------------------------------------------------------------------------------------- #
# kernels and filtering


def test_kernels_are_normalised_and_point_symmetric() -> None:
    kernels = [
        Kernel("iso", 21, 3.0, 3.0),
        Kernel("aniso", 15, 2.5, 0.6, rotation=0.7),
        Kernel("generalized_aniso", 13, 1.2, 2.0, rotation=-1.0, beta=0.6),
        Kernel("plateau_iso", 9, 1.5, 1.5, beta=1.7),
        Kernel("sinc", 11, omega_c=math.pi / 3),
    ]
    for k in kernels:
        a = k.array()
        assert a.shape == (k.size, k.size)
        assert a.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(a, a[::-1, ::-1], atol=1e-12)


def test_wider_sigma_spreads_the_kernel() -> None:
    def spread(k: Kernel) -> float:
        a = k.array()
        r = np.arange(k.size) - k.size // 2
        return float((a * (r[:, None] ** 2 + r[None, :] ** 2)).sum())

    assert spread(Kernel("aniso", 21, 1.0, 0.5, 0.3)) < spread(Kernel("aniso", 21, 2.0, 1.0, 0.3))
    assert spread(Kernel("sinc", 21, omega_c=2.5)) < spread(Kernel("sinc", 21, omega_c=1.0))


def test_fft_filter_matches_reflect_padded_convolution() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 40, 57, generator=gen)
    kernels = [
        Kernel("aniso", 21, 2.0, 0.7, 0.5),
        Kernel("sinc", 13, omega_c=1.0),
        None,
        Kernel("iso", 7, 1.0, 1.0),
    ]
    stack = kernel_stack(kernels)
    assert stack is not None
    p = stack.shape[-1] // 2
    ref = torch.cat(
        [
            F.conv2d(
                F.pad(x[i : i + 1], (p, p, p, p), mode="reflect"), stack[i].expand(3, 1, -1, -1), groups=3
            )
            for i in range(4)
        ]
    )
    torch.testing.assert_close(fft_filter(x, stack), ref, atol=2e-6, rtol=0)
    # Several kernels sharing one forward transform of a source image.
    source = [1, 0, 1, 0]
    shared = fft_filter(x[:2], stack, source=source)
    for i, src in enumerate(source):
        torch.testing.assert_close(
            shared[i], fft_filter(x[src : src + 1], stack[i : i + 1])[0], atol=2e-6, rtol=0
        )


# ----------------------------------------------------------------------------------------------------- #
# configuration


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scale", 0),
        ("kernel_probs", (0.5, 0.5, 0.0, 0.0, 0.0, 0.1)),
        ("kernel_sizes", (7, 8)),
        ("sinc_prob", 1.5),
        ("noise_range", (10.0, 5.0)),
        ("noise_range2", (1.0, 10.0)),  # narrower than the largest more-noise delta (21)
        ("resize_range", (1.2, 1.5)),
        ("jpeg_range", (30, 120)),
        ("blur_sigma2", (0.2, 0.25)),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InputError, match=field):
        DegradationConfig(**{field: value})  # type: ignore[arg-type]


def test_config_defaults_are_the_released_ranges() -> None:
    cfg = DegradationConfig()
    assert cfg.blur_sigma == (0.2, 3.0) and cfg.blur_sigma2 == (0.2, 1.5)
    assert cfg.noise_range == (1.0, 30.0) and cfg.noise_range2 == (1.0, 25.0)
    assert cfg.resize_prob == (0.2, 0.7, 0.1) and cfg.resize_prob2 == (0.3, 0.4, 0.3)
    assert cfg.gaussian_noise_delta == (1.0, 21.0) and cfg.jpeg_quality_drop == (5, 60)
    assert cfg.final_sinc_prob == 0.8 and cfg.second_blur_prob == 0.8


# ----------------------------------------------------------------------------------------------------- #
# synthesize


def test_same_seed_gives_identical_outputs(gt: torch.Tensor) -> None:
    cfg = DegradationConfig()
    a = synthesize(gt[:4], cfg, torch.Generator().manual_seed(7))
    b = synthesize(gt[:4], cfg, torch.Generator().manual_seed(7))
    c = synthesize(gt[:2], cfg, torch.Generator().manual_seed(8))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["base"], c["base"])


def test_shapes_ranges_and_8bit_levels(gt: torch.Tensor) -> None:
    out = synthesize(gt, DegradationConfig(), torch.Generator().manual_seed(0))
    assert set(out) == {"gt", "gt_usm", *COPY_NAMES}
    assert torch.equal(out["gt"], gt)
    assert out["gt_usm"].shape == gt.shape
    for name in COPY_NAMES:
        x = out[name]
        assert x.shape == (8, 3, 48, 48), name
        assert x.dtype == torch.float32
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        torch.testing.assert_close(x * 255.0, (x * 255.0).round(), atol=1e-4, rtol=0)


def test_rejects_sizes_that_are_not_multiples_of_the_scale(gt: torch.Tensor) -> None:
    with pytest.raises(InputError, match="multiple of the scale"):
        synthesize(gt[..., :190], DegradationConfig(), torch.Generator())
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        synthesize(gt[0], DegradationConfig(), torch.Generator())


def test_min_anchor_is_the_downscaled_sharpened_gt(gt: torch.Tensor) -> None:
    out = synthesize(gt, DegradationConfig(), torch.Generator().manual_seed(1))
    torch.testing.assert_close(out["gt_usm"], usm_sharpen(gt))
    expected = (F.interpolate(out["gt_usm"], size=(48, 48), mode="area").clamp(0, 1) * 255).round() / 255
    torch.testing.assert_close(out["min_anchor"], expected)


def test_usm_sharpens_detail_and_leaves_flat_areas() -> None:
    flat = torch.full((1, 3, 64, 64), 0.4)
    torch.testing.assert_close(usm_sharpen(flat), flat)
    edge = torch.zeros(1, 3, 64, 64)
    edge[..., 32:] = 0.8
    sharp = usm_sharpen(edge.clamp(0.1, 0.7))
    assert float(sharp[..., 31].mean()) < 0.1 and float(sharp[..., 32].mean()) > 0.7  # overshoot at the edge


# ----------------------------------------------------------------------------------------------------- #
# the plan: copies differ only in their controlled degradation


def _same_kernel_but_width(a: Kernel, b: Kernel) -> bool:
    return dataclasses.replace(b, sigma_x=a.sigma_x, sigma_y=a.sigma_y, omega_c=a.omega_c) == a


def _width(k: Kernel) -> float:
    """Larger = blurrier: the sigma sum, or minus the sinc cut-off."""
    return -k.omega_c if k.kind == "sinc" else k.sigma_x + k.sigma_y


def test_plans_differ_only_in_the_controlled_field() -> None:
    cfg = DegradationConfig()
    plan = sample_plan(64, cfg, torch.Generator().manual_seed(11))
    assert len(plan.samples) == 64
    for sample in plan.samples:
        base = resolve(sample, "base")
        blur = resolve(sample, "more_blur")
        noise = resolve(sample, "more_noise")
        worst = resolve(sample, "max_anchor")
        # more_blur: only the kernels differ, and only in width.
        assert dataclasses.replace(blur, blur1=base.blur1, blur2=base.blur2) == base
        assert base.blur1 is not None and blur.blur1 is not None
        assert _same_kernel_but_width(base.blur1, blur.blur1)
        assert _width(blur.blur1) > _width(base.blur1)
        if base.blur2 is not None and blur.blur2 is not None:
            assert _same_kernel_but_width(base.blur2, blur.blur2)
            assert _width(blur.blur2) > _width(base.blur2)
        # more_noise: only noise levels and JPEG qualities differ; same kind, colour mode and field.
        assert (
            dataclasses.replace(
                noise, noise1=base.noise1, noise2=base.noise2, jpeg1=base.jpeg1, jpeg2=base.jpeg2
            )
            == base
        )
        for n_more, n_base in ((noise.noise1, base.noise1), (noise.noise2, base.noise2)):
            assert n_more is not None and n_base is not None
            assert dataclasses.replace(n_more, level=n_base.level) == n_base
            assert n_more.level > n_base.level
        assert noise.jpeg1 is not None and base.jpeg1 is not None and noise.jpeg1 < base.jpeg1
        assert noise.jpeg2 is not None and base.jpeg2 is not None and noise.jpeg2 < base.jpeg2
        assert cfg.jpeg_range[0] <= noise.jpeg1 and base.jpeg1 <= cfg.jpeg_range[1]
        # max anchor: widest kernels, highest noise, lowest quality; the rest shared.
        assert worst.blur1 is not None and worst.blur2 is not None
        assert _same_kernel_but_width(base.blur1, worst.blur1)
        assert _width(worst.blur1) >= _width(blur.blur1)
        assert worst.noise1 is not None and worst.noise2 is not None
        assert noise.noise1 is not None and noise.noise2 is not None
        assert worst.noise1.level >= noise.noise1.level and worst.noise2.level >= noise.noise2.level
        assert (
            base.noise1 is not None
            and dataclasses.replace(worst.noise1, level=base.noise1.level) == base.noise1
        )
        assert worst.jpeg1 == cfg.jpeg_range[0] and worst.jpeg2 == cfg.jpeg_range2[0]
        assert (worst.final_sinc, worst.jpeg_last) == (base.final_sinc, base.jpeg_last)


def test_plan_covers_every_kind_of_choice() -> None:
    plan = sample_plan(400, DegradationConfig(), torch.Generator().manual_seed(5))
    kinds = {s.blur1.base.kind for s in plan.samples if s.blur1 is not None}
    assert kinds >= {"iso", "aniso", "generalized_iso", "plateau_iso", "sinc"}
    assert {s.noise1.kind for s in plan.samples if s.noise1 is not None} == {"gaussian", "poisson"}
    assert any(s.blur2 is not None and not s.blur2.applied for s in plan.samples)
    assert any(s.final_sinc is None for s in plan.samples) and any(s.final_sinc for s in plan.samples)
    assert {s.jpeg_last for s in plan.samples} == {True, False}


# ----------------------------------------------------------------------------------------------------- #
# rendering: image-level checks of the controlled copies


def test_without_noise_and_jpeg_more_noise_equals_base(gt: torch.Tensor) -> None:
    cfg = DegradationConfig(noise=False, jpeg=False)
    out = render(usm_sharpen(gt), sample_plan(8, cfg, torch.Generator().manual_seed(2)))
    assert torch.equal(out["more_noise"], out["base"])
    assert not torch.equal(out["more_blur"], out["base"])


def test_without_blur_more_blur_equals_base(gt: torch.Tensor) -> None:
    cfg = DegradationConfig(blur=False)
    out = render(usm_sharpen(gt), sample_plan(8, cfg, torch.Generator().manual_seed(2)))
    assert torch.equal(out["more_blur"], out["base"])
    assert not torch.equal(out["more_noise"], out["base"])


def test_more_blur_is_blurrier_image_by_image_without_noise(gt: torch.Tensor) -> None:
    # Gaussian-family kernels only: a sinc kernel with a lower cut-off rings more, and after a strong
    # downscale its ripples alias into detail, so image by image it need not look blurrier.
    cfg = DegradationConfig(noise=False, jpeg=False, sinc_prob=0.0, sinc_prob2=0.0)
    out = render(usm_sharpen(gt), sample_plan(8, cfg, torch.Generator().manual_seed(4)))
    assert bool((_laplacian_var(out["more_blur"]) < _laplacian_var(out["base"])).all())
    assert bool((_laplacian_var(out["max_anchor"]) <= _laplacian_var(out["more_blur"]) * 1.05).all())


def test_controlled_copies_on_average(gt: torch.Tensor) -> None:
    cfg = DegradationConfig()
    gt_usm = usm_sharpen(gt)
    rng = torch.Generator().manual_seed(9)
    lap: dict[str, list[torch.Tensor]] = {name: [] for name in DEGRADED_COPIES}
    hp: dict[str, list[torch.Tensor]] = {name: [] for name in DEGRADED_COPIES}
    err: dict[str, list[torch.Tensor]] = {name: [] for name in DEGRADED_COPIES}
    clean = F.interpolate(gt_usm, size=(48, 48), mode="area")
    for _ in range(3):
        out = render(gt_usm, sample_plan(8, cfg, rng))
        for name in DEGRADED_COPIES:
            lap[name].append(_laplacian_var(out[name]))
            hp[name].append(_highpass_energy(out[name]))
            err[name].append((out[name] - clean).abs().flatten(1).mean(dim=1))
    mean = {
        k: {n: float(torch.cat(v[n]).mean()) for n in DEGRADED_COPIES}
        for k, v in (("lap", lap), ("hp", hp), ("err", err))
    }
    assert mean["lap"]["more_blur"] < mean["lap"]["base"]
    assert mean["hp"]["more_noise"] > mean["hp"]["base"]
    # The max anchor is the furthest from the clean anchor.
    for name in ("base", "more_blur", "more_noise"):
        assert mean["err"]["max_anchor"] > mean["err"][name], name


def test_noise_differs_only_in_level(gt: torch.Tensor) -> None:
    """Without blur, resize randomness aside, more_noise's added noise is a scaled copy of base's."""
    cfg = DegradationConfig(blur=False, jpeg=False)
    gt_usm = usm_sharpen(gt)
    plan = sample_plan(8, cfg, torch.Generator().manual_seed(12))
    out = render(gt_usm, plan)
    clean = render(
        gt_usm,
        sample_plan(
            8, DegradationConfig(blur=False, jpeg=False, noise=False), torch.Generator().manual_seed(12)
        ),
    )
    corrs = []
    for i in range(8):
        d_base = (out["base"][i] - clean["base"][i]).flatten()
        d_more = (out["more_noise"][i] - clean["base"][i]).flatten()
        corrs.append(float(torch.corrcoef(torch.stack([d_base, d_more]))[0, 1]))
        assert float(d_more.std()) > float(d_base.std()), i
    # Clipping and 8-bit rounding decorrelate weak noise somewhat; the fields are still the same.
    assert min(corrs) > 0.4 and sum(corrs) / len(corrs) > 0.8, corrs


# ----------------------------------------------------------------------------------------------------- #
# degrade_fixed


def test_degrade_fixed_shapes_and_determinism(gt: torch.Tensor) -> None:
    a = degrade_fixed(gt[:2], blur_sigma=1.0, noise_sigma=10.0, jpeg_quality=50, seed=3)
    b = degrade_fixed(gt[:2], blur_sigma=1.0, noise_sigma=10.0, jpeg_quality=50, seed=3)
    assert a.shape == (2, 3, 48, 48) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(
        a, degrade_fixed(gt[:2], blur_sigma=1.0, noise_sigma=10.0, jpeg_quality=50, seed=4)
    )
    assert degrade_fixed(gt[:1], blur_sigma=0.0, noise_sigma=0.0, scale=2).shape == (1, 3, 96, 96)
    with pytest.raises(InputError, match="jpeg_quality"):
        degrade_fixed(gt[:1], blur_sigma=0.0, noise_sigma=0.0, jpeg_quality=0)


def test_degrade_fixed_is_monotone_in_blur_and_noise(gt: torch.Tensor) -> None:
    sharpness = [
        float(_laplacian_var(degrade_fixed(gt, blur_sigma=s, noise_sigma=0.0)).mean())
        for s in (0, 1, 2, 3, 4)
    ]
    assert all(a > b for a, b in itertools.pairwise(sharpness)), sharpness
    clean = degrade_fixed(gt, blur_sigma=1.0, noise_sigma=0.0)
    errors = [
        float((degrade_fixed(gt, blur_sigma=1.0, noise_sigma=n) - clean).pow(2).mean())
        for n in (0, 5, 10, 20, 40)
    ]
    assert errors[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(errors)), errors


def test_axis_anchors_leave_the_other_copies_unchanged() -> None:
    from mmrealsr_training.degradations import AXIS_ANCHORS, DegradationConfig, synthesize

    gt = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    cfg = DegradationConfig(usm_radius=2)
    plain = synthesize(gt, cfg, torch.Generator().manual_seed(5))
    extra = synthesize(gt, cfg, torch.Generator().manual_seed(5), axis_anchors=True)
    for name, value in plain.items():
        assert torch.equal(value, extra[name]), name
    for name in AXIS_ANCHORS:
        assert extra[name].shape == plain["base"].shape
    # Each single-axis anchor is degraded more than base along its own axis only.
    assert not torch.equal(extra["blur_anchor"], plain["base"])
    assert not torch.equal(extra["noise_anchor"], plain["base"])


def test_shared_copy_is_each_base_degradation_on_the_next_patch(gt: torch.Tensor) -> None:
    """synthesize(..., shared_copy=True): row i of base_shared is patch i + 1 degraded by sample i's plan
    (every random choice, video clip and grain included); the other copies are unchanged."""
    from mmrealsr_training.degradations import SHARED_COPY

    cfg = DegradationConfig(usm_radius=4, video_prob=0.5, single_order_prob=0.5)
    patches = gt[:4]
    plain = synthesize(patches, cfg, torch.Generator().manual_seed(9))
    extra = synthesize(patches, cfg, torch.Generator().manual_seed(9), shared_copy=True)
    assert extra.keys() == {*plain.keys(), SHARED_COPY}
    for name, value in plain.items():
        assert torch.equal(value, extra[name]), name
    plan = sample_plan(4, cfg, torch.Generator().manual_seed(9))
    assert any(s.video is not None for s in plan.samples) and any(s.single_order for s in plan.samples)
    expected = render(usm_sharpen(patches.roll(-1, 0), radius=4), plan, ("base",))["base"]
    assert torch.equal(extra[SHARED_COPY], expected)
    assert not torch.equal(extra[SHARED_COPY], extra["base"])
    # One photo throughout the batch: the shared copy is base itself, bit for bit.
    same = patches[:1].expand(4, -1, -1, -1).contiguous()
    one = synthesize(same, cfg, torch.Generator().manual_seed(9), shared_copy=True)
    assert torch.equal(one[SHARED_COPY], one["base"])


# ----------------------------------------------------------------------------------------------------- #
# the classic single-order share (ours)


def test_single_order_samples_move_grain_and_encoding_to_the_end() -> None:
    cfg = DegradationConfig(single_order_prob=0.5)
    plan = sample_plan(200, cfg, torch.Generator().manual_seed(3))
    flags = [s.single_order for s in plan.samples]
    assert any(flags) and not all(flags)
    for sample in plan.samples:
        if not sample.single_order:
            continue
        assert sample.noise1 is not None and sample.jpeg1 is not None and sample.blur1 is not None
        for copy, (blur_level, noise_level) in (
            ("base", ("base", "base")),
            ("more_blur", ("more", "base")),
            ("more_noise", ("base", "more")),
            ("max_anchor", ("worst", "worst")),
        ):
            d = resolve(sample, copy)
            assert (d.noise1, d.jpeg1, d.blur2, d.final_sinc, d.jpeg_last) == (None, None, None, None, True)
            assert d.blur1 == sample.blur1.at(blur_level)  # type: ignore[arg-type]
            assert d.noise2 == sample.noise1.at(noise_level)  # type: ignore[arg-type]
            assert d.jpeg2 == sample.jpeg1.at(noise_level)  # type: ignore[arg-type]
    # The released configuration never draws one.
    assert not any(
        s.single_order
        for s in sample_plan(200, DegradationConfig(), torch.Generator().manual_seed(3)).samples
    )
    with pytest.raises(InputError, match="single_order_prob"):
        DegradationConfig(single_order_prob=1.5)


def test_single_order_grain_is_added_at_lr_size() -> None:
    """On a flat grey GT, first-round noise keeps its full strength only when added at LR size."""
    gt = torch.full((4, 3, 64, 64), 0.5)
    common = dict(
        blur=False,
        jpeg=False,
        usm_weight=0.0,
        resize_prob=(0.0, 0.0, 1.0),
        resize_prob2=(0.0, 0.0, 1.0),
        gaussian_noise_prob=1.0,
        gaussian_noise_prob2=1.0,
        gray_noise_prob=0.0,
        noise_range=(19.0, 20.0),
        noise_range2=(0.5, 1.0),
        gaussian_noise_delta=(0.1, 0.2),
    )
    std = {}
    for prob in (0.0, 1.0):
        cfg = DegradationConfig(single_order_prob=prob, **common)  # type: ignore[arg-type]
        out = render(gt, sample_plan(4, cfg, torch.Generator().manual_seed(1)), ("base",))["base"]
        std[prob] = float(out.std() * 255)
    assert 17.0 < std[1.0] < 21.0  # sigma 19-20 at LR size, untouched
    assert std[0.0] < 0.75 * std[1.0]  # added at GT size, then partly averaged by the 4x downscale


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialias_low_passes_before_downscaling(mode: str) -> None:
    """Stripes finer than the LR grid fold back as aliasing unless the downscale low-passes first."""
    assert DegradationConfig().antialias is False  # the released recipe samples sparsely
    cols = torch.arange(128, dtype=torch.float32)
    stripes = (0.5 + 0.4 * torch.cos(2 * math.pi * cols * 0.2)).expand(2, 3, 128, 128).contiguous()
    common = dict(
        blur=False,
        noise=False,
        jpeg=False,
        usm_weight=0.0,
        resize_prob=(0.0, 0.0, 1.0),
        resize_prob2=(0.0, 0.0, 1.0),
    )
    std = {}
    for antialias in (False, True):
        cfg = DegradationConfig(antialias=antialias, **common)  # type: ignore[arg-type]
        plan = sample_plan(2, cfg, torch.Generator().manual_seed(3))
        # With both rounds keeping their size the second round's resize makes the LR size.
        plan = dataclasses.replace(
            plan, resize2=dataclasses.replace(plan.resize2, mode=mode), final_mode=mode
        )
        assert plan.antialias is antialias
        out = render(stripes, plan, ("base",))["base"]
        assert out.shape == (2, 3, 32, 32)
        assert abs(float(out.mean()) - 0.5) < 0.02  # the mean grey survives either way
        std[antialias] = float(out.std())
    assert std[False] > 0.15  # 0.2 cycles per GT pixel = 0.8 per LR pixel: folded back to 0.2
    assert std[True] < 0.03 < std[False] / 5  # low-passed away


def test_single_order_downscales_straight_to_lr_size(gt: torch.Tensor) -> None:
    """Single-order samples skip both rounds' resizes: one downscale with the batch's final mode."""
    cfg = DegradationConfig(
        blur=False,
        noise=False,
        jpeg=False,
        usm_weight=0.0,
        single_order_prob=1.0,
        antialias=True,
        resize_prob=(0.0, 1.0, 0.0),
        resize_prob2=(1.0, 0.0, 0.0),  # always down, then always up
    )
    plan = sample_plan(gt.shape[0], cfg, torch.Generator().manual_seed(5))
    assert plan.resize1.direction == "down" and plan.resize2.direction == "up"
    for mode in ("area", "bilinear", "bicubic"):
        out = render(gt, dataclasses.replace(plan, final_mode=mode), ("base",))["base"]
        if mode == "area":
            direct = F.interpolate(gt, size=(48, 48), mode="area")
        else:
            direct = F.interpolate(gt, size=(48, 48), mode=mode, align_corners=False, antialias=True)
        torch.testing.assert_close(out, (direct.clamp(0, 1) * 255).round() / 255, atol=1e-6, rtol=0)


def test_a_mixed_batch_renders_each_sample_as_its_own_kind(gt: torch.Tensor) -> None:
    cfg = DegradationConfig(single_order_prob=0.5, antialias=True)
    plan = sample_plan(gt.shape[0], cfg, torch.Generator().manual_seed(2))
    flags = [s.single_order for s in plan.samples]
    assert any(flags) and not all(flags)
    mixed = render(gt, plan, DEGRADED_COPIES)
    for kind in (True, False):
        idx = [i for i, f in enumerate(flags) if f is kind]
        alone = render(
            gt[idx], dataclasses.replace(plan, samples=tuple(plan.samples[i] for i in idx)), DEGRADED_COPIES
        )
        for name in DEGRADED_COPIES:
            torch.testing.assert_close(mixed[name][idx], alone[name], atol=0, rtol=0)
    # The two kinds really differ: the same samples rendered as multi-order come out otherwise.
    as_multi = dataclasses.replace(
        plan, samples=tuple(dataclasses.replace(s, single_order=False) for s in plan.samples)
    )
    single_idx = [i for i, f in enumerate(flags) if f]
    other = render(gt, as_multi, ("base",))["base"]
    assert not torch.equal(other[single_idx], mixed["base"][single_idx])


# ----------------------------------------------------------------------------------------------------- #
# real video codecs (PyAV): the evaluation helper and the training copies


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / (a - b).pow(2).mean()))


@pytest.fixture(scope="module")
def small() -> torch.Tensor:
    """A 48 px image dense with detail (the whole photograph area-downscaled), (1, 3, 48, 48)."""
    return F.interpolate(_photo().unsqueeze(0), size=(48, 48), mode="area")


def test_code_as_video_gets_worse_with_the_crf(small: torch.Tensor) -> None:
    ladder = [code_as_video(small, crf=crf) for crf in (18, 24, 30, 36, 44)]
    psnr = [_psnr(x, small) for x in ladder]
    assert all(a > b for a, b in itertools.pairwise(psnr)), psnr
    assert 24.0 < psnr[0] < 35.0 and psnr[-1] < 20.0, psnr
    for x in ladder:
        assert x.shape == small.shape and x.dtype == torch.float32
        torch.testing.assert_close(x * 255.0, (x * 255.0).round(), atol=1e-4, rtol=0)
    # Deterministic, and the same through every input kind.
    assert torch.equal(code_as_video(small, crf=30), ladder[2])
    assert torch.equal(code_as_video(small[0], crf=30), ladder[2][0])
    u8 = (small[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(
        code_as_video(u8, crf=30), (ladder[2][0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    )


@pytest.mark.parametrize(
    ("codec", "levels"),
    [("libx265", (18, 30, 42, 51)), ("mpeg2video", (2, 8, 16, 31)), ("mpeg4", (2, 8, 16, 31))],
)
def test_every_codec_gets_worse_with_its_level(
    small: torch.Tensor, codec: str, levels: tuple[int, ...]
) -> None:
    control = CODECS[codec].control
    psnr = [_psnr(code_as_video(small, codec, **{control: level}), small) for level in levels]
    assert all(a > b for a, b in itertools.pairwise(psnr)), psnr


def test_the_clip_keeps_its_length_and_odd_sizes() -> None:
    frames = (np.random.default_rng(0).random((4, 37, 41, 3)) * 255).astype(np.uint8)
    for codec, spec in CODECS.items():
        out = code_clip(frames, VideoCoding(codec, 20 if spec.control == "crf" else 4))
        assert out.shape == frames.shape and out.dtype == np.uint8, codec


def test_x265_survives_narrow_frames() -> None:
    """libx265 corrupts its heap on 40 and 48 px wide frames: they are padded (a crash kills pytest)."""
    rng = np.random.default_rng(1)
    for width in (40, 48) * 15:
        frames = (rng.random((3, 48, width, 3)) * 255).astype(np.uint8)
        assert code_clip(frames, VideoCoding("libx265", 30)).shape == frames.shape


def test_codec_errors_name_the_field(small: torch.Tensor) -> None:
    with pytest.raises(InputError, match=r"DegradationConfig\.codecs: unknown codec 'h263'"):
        DegradationConfig(codecs=("libx264", "h263"), codec_probs=(0.5, 0.5))
    with pytest.raises(InputError, match="codec_probs"):
        DegradationConfig(codecs=("libx264",))
    with pytest.raises(InputError, match="crf_range"):
        DegradationConfig(crf_range=(18, 60))
    with pytest.raises(InputError, match="crf_range"):
        DegradationConfig(crf_range=(40, 51))  # narrower than the largest crf_increase (18)
    with pytest.raises(InputError, match="qscale_increase"):
        DegradationConfig(qscale_increase=(0, 4))
    with pytest.raises(InputError, match="clip_frames"):
        DegradationConfig(clip_frames=1)
    with pytest.raises(InputError, match="video_prob"):
        DegradationConfig(video_prob=1.5)
    with pytest.raises(InputError, match="code_as_video: unknown codec 'h263'"):
        code_as_video(small, "h263", crf=30)
    with pytest.raises(InputError, match="crf"):
        code_as_video(small, "libx264", qscale=4)
    with pytest.raises(InputError, match=r"VideoCoding\.level"):
        VideoCoding("mpeg2video", 40)
    with pytest.raises(InputError, match="not both"):
        degrade_fixed(small, blur_sigma=0, noise_sigma=0, jpeg_quality=50, video=VideoCoding("libx264", 30))


def test_degrade_fixed_codes_video_last(gt: torch.Tensor) -> None:
    clean = degrade_fixed(gt[:2], blur_sigma=1.0, noise_sigma=5.0)
    coded = [
        degrade_fixed(gt[:2], blur_sigma=1.0, noise_sigma=5.0, video=VideoCoding("libx264", crf))
        for crf in (18, 32, 44)
    ]
    psnr = [_psnr(x, clean) for x in coded]
    assert all(a > b for a, b in itertools.pairwise(psnr)), psnr
    torch.testing.assert_close(coded[1], code_as_video(clean, crf=32), atol=0, rtol=0)


def _video_cfg(**kw: object) -> DegradationConfig:
    return DegradationConfig(video_prob=1.0, usm_radius=4, **kw)  # type: ignore[arg-type]


def test_video_plans_share_every_choice_but_noise_and_compression() -> None:
    cfg = _video_cfg(single_order_prob=0.3)
    plan = sample_plan(64, cfg, torch.Generator().manual_seed(4))
    assert {s.video.codec for s in plan.samples if s.video is not None} == set(cfg.codecs)
    for sample in plan.samples:
        assert sample.video is not None
        base, blur, noise, worst = (
            resolve(sample, c) for c in ("base", "more_blur", "more_noise", "max_anchor")
        )
        for d in (base, blur, noise, worst):
            assert d.video is not None and d.jpeg2 is None and d.jpeg_last
        assert base.video is not None and noise.video is not None and worst.video is not None
        assert blur.video == base.video
        # more noise: a higher CRF / quantiser with the same codec, clip, kept frame and motion.
        assert dataclasses.replace(noise.video, coding=base.video.coding) == base.video
        assert noise.video.coding.codec == base.video.coding.codec
        assert noise.video.coding.level > base.video.coding.level
        assert (
            dataclasses.replace(
                noise, noise1=base.noise1, noise2=base.noise2, jpeg1=base.jpeg1, video=base.video
            )
            == base
        )
        # the max anchor: the range's worst, the rest shared.
        crf = CODECS[base.video.coding.codec].control == "crf"
        assert worst.video.coding.level == (cfg.crf_range if crf else cfg.qscale_range)[1]
        assert dataclasses.replace(worst.video, coding=base.video.coding) == base.video
        assert 1 <= base.video.index < cfg.clip_frames


def _equalise_noise_and_compression(plan: SynthesisPlan) -> SynthesisPlan:
    """The plan with every "more noise" strength set back to the base one."""

    def same(sample: SamplePlan) -> SamplePlan:
        return dataclasses.replace(
            sample,
            noise1=None
            if sample.noise1 is None
            else dataclasses.replace(sample.noise1, more=sample.noise1.base),
            noise2=None
            if sample.noise2 is None
            else dataclasses.replace(sample.noise2, more=sample.noise2.base),
            jpeg1=None if sample.jpeg1 is None else dataclasses.replace(sample.jpeg1, more=sample.jpeg1.base),
            jpeg2=None if sample.jpeg2 is None else dataclasses.replace(sample.jpeg2, more=sample.jpeg2.base),
            video=None if sample.video is None else dataclasses.replace(sample.video, more=sample.video.base),
        )

    return dataclasses.replace(plan, samples=tuple(same(s) for s in plan.samples))


def test_video_copies_differ_only_in_noise_and_compression(gt: torch.Tensor) -> None:
    """With the noise and compression strengths made equal, more_noise is base, bit for bit: the copies
    share blur, resizes, grain fields, codec, clip motion and the kept frame."""
    cfg = _video_cfg(single_order_prob=0.5)
    gt_usm = usm_sharpen(gt, radius=4)
    plan = sample_plan(gt.shape[0], cfg, torch.Generator().manual_seed(6))
    assert any(s.single_order for s in plan.samples) and not all(s.single_order for s in plan.samples)
    out = render(gt_usm, plan, ("base", "more_noise"))
    assert not torch.equal(out["more_noise"], out["base"])
    same = render(gt_usm, _equalise_noise_and_compression(plan), ("base", "more_noise"))
    assert torch.equal(same["base"], out["base"])
    assert torch.equal(same["more_noise"], same["base"])


def test_video_synthesis_is_deterministic(gt: torch.Tensor) -> None:
    cfg = _video_cfg()
    a = synthesize(gt[:2], cfg, torch.Generator().manual_seed(7), axis_anchors=True)
    b = synthesize(
        gt[:2], dataclasses.replace(cfg, video_threads=2), torch.Generator().manual_seed(7), axis_anchors=True
    )
    c = synthesize(gt[:2], cfg, torch.Generator().manual_seed(8))
    assert a.keys() == {"gt", "gt_usm", *COPY_NAMES, *AXIS_ANCHORS}
    for key in b:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["base"], c["base"])
    for name in (*COPY_NAMES, *AXIS_ANCHORS):
        x = a[name]
        assert x.shape == (2, 3, 48, 48) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0, name
        torch.testing.assert_close(x * 255.0, (x * 255.0).round(), atol=1e-4, rtol=0)


def test_video_off_keeps_the_released_stream(gt: torch.Tensor) -> None:
    """Codec settings do nothing while video_prob is 0: the released configuration's copies are unchanged."""
    ref = synthesize(gt[:2], DegradationConfig(), torch.Generator().manual_seed(3))
    off = synthesize(
        gt[:2],
        DegradationConfig(codecs=("mpeg4",), codec_probs=(1.0,), crf_range=(20, 45), clip_frames=5),
        torch.Generator().manual_seed(3),
    )
    for key in ref:
        assert torch.equal(ref[key], off[key]), key


@pytest.mark.slow
def test_video_copies_are_ordered_by_damage(gt: torch.Tensor) -> None:
    """Image by image: more compression alone lowers PSNR; the max anchor is at least as damaged as base,
    more blur and more noise."""
    gt_usm = usm_sharpen(gt, radius=4)
    clean = F.interpolate(gt_usm, size=(48, 48), mode="area")
    # Compression alone (no blur, noise or JPEG; both rounds keep their size): more_noise is worse.
    only = _video_cfg(blur=False, noise=False, jpeg=False, resize_prob=(0, 0, 1), resize_prob2=(0, 0, 1))
    for seed in range(2):
        out = render(gt_usm, sample_plan(gt.shape[0], only, torch.Generator().manual_seed(seed)))
        for i in range(gt.shape[0]):
            psnr = {name: _psnr(out[name][i], clean[i]) for name in ("base", "more_noise", "max_anchor")}
            assert psnr["base"] > psnr["more_noise"] >= psnr["max_anchor"], (seed, i, psnr)
    # The whole pipeline.
    cfg = _video_cfg()
    for seed in range(2):
        out = render(gt_usm, sample_plan(gt.shape[0], cfg, torch.Generator().manual_seed(seed)))
        for i in range(gt.shape[0]):
            psnr = {name: _psnr(out[name][i], clean[i]) for name in DEGRADED_COPIES}
            for name in ("base", "more_blur", "more_noise"):
                assert psnr["max_anchor"] <= psnr[name], (seed, i, psnr)


def test_footage_template_is_the_released_recipe_plus_codecs() -> None:
    cfg = load_config("training/configs/footage_template.toml")
    deg = cfg.degradation
    assert deg.video_prob > 0 and set(deg.codecs) == set(CODECS)
    assert deg.crf_range == (18, 51)
    released = DegradationConfig()
    video_fields = {
        "video_prob", "codecs", "codec_probs", "crf_range", "qscale_range", "clip_frames", "clip_motion",
        "video_threads", "crf_increase", "qscale_increase",
    }  # fmt: skip
    for f in dataclasses.fields(DegradationConfig):
        if f.name not in video_fields:
            assert getattr(deg, f.name) == getattr(released, f.name), f.name
    assert not cfg.optim.freeze_estimator


# ----------------------------------------------------------------------------------------------------- #
# the noise-only share (ours)


def test_noise_only_samples_code_the_more_noise_copy_like_the_base(gt: torch.Tensor) -> None:
    cfg = DegradationConfig(usm_radius=4, video_prob=0.5, noise_only_prob=0.5)
    plan = sample_plan(60, cfg, torch.Generator().manual_seed(21))
    same = [
        s.jpeg1.more == s.jpeg1.base and s.jpeg2.more == s.jpeg2.base  # type: ignore[union-attr]
        for s in plan.samples
    ]
    assert 10 < sum(same) < 50  # about half
    for s, noise_only in zip(plan.samples, same, strict=True):
        assert s.noise1 is not None and s.noise1.more > s.noise1.base  # the noise gap always stays
        if s.video is not None:
            assert (s.video.more == s.video.base) == noise_only
        assert s.jpeg1.worst < s.jpeg1.base  # type: ignore[union-attr]  # the max anchor keeps the worst
    # Off, the released random stream is untouched (the share is drawn only when asked for).
    off = sample_plan(60, dataclasses.replace(cfg, noise_only_prob=0.0), torch.Generator().manual_seed(21))
    assert all(s.jpeg1.more < s.jpeg1.base for s in off.samples)  # type: ignore[union-attr]
    # A noise-only sample's two copies differ by grain alone: without grain they are equal.
    quiet = dataclasses.replace(
        cfg,
        noise_only_prob=1.0,
        video_prob=0.0,
        gaussian_noise_delta=(1e-6, 1e-6),
        poisson_noise_delta=(1e-9, 1e-9),
    )
    out = render(
        usm_sharpen(gt[:2], radius=4),
        sample_plan(2, quiet, torch.Generator().manual_seed(5)),
        ("base", "more_noise"),
    )
    assert (out["base"] - out["more_noise"]).abs().max().item() < 2 / 255


def test_uncoded_samples_reach_the_estimator_without_a_last_encoding(gt: torch.Tensor) -> None:
    cfg = DegradationConfig(usm_radius=4, video_prob=0.5, single_order_prob=0.5, uncoded_prob=0.3)
    plan = sample_plan(200, cfg, torch.Generator().manual_seed(8))
    uncoded = [s.jpeg2 is None for s in plan.samples]
    assert 30 < sum(uncoded) < 90
    for s, bare in zip(plan.samples, uncoded, strict=True):
        for copy in ("base", "more_noise", "max_anchor"):
            d = resolve(s, copy)
            coded = d.video is not None or d.jpeg2 is not None
            assert coded != bare, copy  # the last encoding: there exactly when the sample is coded
            if bare and s.single_order:
                assert d.jpeg1 is None  # a single-order sample has one encoding, and it is skipped
    # With every sample uncoded, nothing is coded and the copies still render.
    bare_plan = sample_plan(4, dataclasses.replace(cfg, uncoded_prob=1.0), torch.Generator().manual_seed(1))
    assert all(s.jpeg2 is None and s.video is None for s in bare_plan.samples)
    out = render(usm_sharpen(gt[:4], radius=4), bare_plan, ("base",))["base"]
    assert torch.isfinite(out).all() and out.shape[0] == 4
    # Off, the released random stream is untouched.
    off = sample_plan(200, dataclasses.replace(cfg, uncoded_prob=0.0), torch.Generator().manual_seed(8))
    assert all(s.jpeg2 is not None for s in off.samples)
