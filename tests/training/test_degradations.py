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
from mmrealsr_training.degradations import (
    COPY_NAMES,
    DEGRADED_COPIES,
    DegradationConfig,
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
    c = synthesize(gt[:4], cfg, torch.Generator().manual_seed(8))
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
