"""Tiling: seamless blending, odd sizes, per-frame coefficients, automatic tiling under memory pressure."""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch

from mmrealsr_video import load_model
from mmrealsr_video.errors import InputError
from mmrealsr_video.models import ModulatedModel
from mmrealsr_video.models import loader as model_module
from mmrealsr_video.models.compact import CompactConfig, CompactNet
from mmrealsr_video.models.tiling import DEFAULT_TILE_OVERLAP, tile_spans, tile_starts, tile_work, tiled_apply


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _frame(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, h // 4), max(2, w // 4), generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return (x + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(100, 32, 8), (101, 48, 32), (48, 48, 16), (10, 64, 8), (257, 64, 32)]
)
def test_tile_starts_cover_with_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    for a, b in itertools.pairwise(starts):
        assert a + size - b >= overlap  # neighbours share at least the overlap


def test_tiled_matches_untiled_released_architecture(parity: dict) -> None:
    model = load_model(parity["params"])
    x = _frame(101, 131)
    whole = model.restore(x, (0.4, 0.6), tile=0)
    tiled = model.restore(x, (0.4, 0.6), tile=48)  # default overlap
    assert tiled.shape == whole.shape == (1, 3, 404, 524)
    psnr = _psnr(tiled, whole)
    print(f"mmrrdbnet (parity config) tile 48, overlap {DEFAULT_TILE_OVERLAP}: {psnr:.1f} dB")
    assert psnr >= 45.0


def test_tiled_matches_untiled_compact() -> None:
    torch.manual_seed(0)
    net = CompactNet(CompactConfig(num_feat=16, num_conv=4))
    for p in net.parameters():  # a livelier function than the near-identity initialisation
        p.data.add_(0.05 * torch.randn_like(p))
    model = load_model(net.state_dict())
    x = _frame(97, 75, seed=1)
    whole = model.restore(x, (0.2, 0.9), tile=0)
    tiled = model.restore(x, (0.2, 0.9), tile=40)
    psnr = _psnr(tiled, whole)
    print(f"compact tile 40, overlap {DEFAULT_TILE_OVERLAP}: {psnr:.1f} dB")
    assert psnr >= 45.0


def test_tiles_of_a_context_network_sit_on_its_pooling_grid() -> None:
    """The context branch pools 4 x 4 cells: tiles that start on the frame's grid see the frame's
    cells, and the tiled result is closer to the whole frame's than with tiles off the grid."""
    torch.manual_seed(0)
    net = CompactNet(CompactConfig(num_feat=16, num_conv=4, context_feat=8, context_conv=2))
    assert net.context is not None and net.tile_align == 4
    torch.nn.init.normal_(net.context[-1].weight, std=0.02)
    model = load_model(net.state_dict())
    x = _frame(97, 75, seed=1)
    whole = model.restore(x, (0.2, 0.9), tile=0)
    aligned = model.restore(x, (0.2, 0.9), tile=40)
    model._tile_align = 1
    unaligned = model.restore(x, (0.2, 0.9), tile=40)
    p_aligned, p_unaligned = _psnr(aligned, whole), _psnr(unaligned, whole)
    print(f"compact with context, tile 40: aligned {p_aligned:.1f} dB, unaligned {p_unaligned:.1f} dB")
    assert p_aligned >= 45.0 and p_aligned > p_unaligned


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "align"), [(97, 40, 16, 4), (301, 64, 32, 8), (50, 64, 8, 4)]
)
def test_aligned_spans_cover_the_frame(length: int, tile: int, overlap: int, align: int) -> None:
    spans = tile_spans(length, tile, overlap, align)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(s % align == 0 for s, _ in spans)
    assert all(e - s <= tile + align - 1 for s, e in spans)
    for (_, e0), (s1, _) in itertools.pairwise(spans):
        assert e0 - s1 >= overlap - (align - 1)  # neighbours still overlap


def test_coefficients_are_per_frame_not_per_tile(parity: dict) -> None:
    model = load_model(parity["params"], dtype=torch.float64)
    a, b = _frame(40, 50, 2).double(), _frame(40, 50, 3).double()
    coeffs = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    batch = model.restore(torch.cat([a, b]), coeffs, tile=24, tile_overlap=8)
    one = model.restore(a, coeffs[0], tile=24, tile_overlap=8)
    two = model.restore(b, coeffs[1], tile=24, tile_overlap=8)
    torch.testing.assert_close(batch, torch.cat([one, two]), rtol=0, atol=1e-12)


def test_tiled_apply_is_exact_for_pointwise_functions() -> None:
    x = torch.rand(2, 3, 37, 53)

    def up(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(t * 2 - 1, scale_factor=2, mode="nearest")

    torch.testing.assert_close(tiled_apply(up, x, scale=2, tile=16, overlap=6), up(x), rtol=0, atol=1e-6)


def test_automatic_tiling_when_memory_is_short(parity: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(parity["params"])
    x = _frame(90, 120, 4)
    whole = model.restore(x, (0.5, 0.5), tile=0)
    assert model.auto_tile(90, 120, 1) == 0  # plenty of memory: no tiles
    monkeypatch.setattr(model_module, "_memory_budget", lambda device: 4e6)
    tile = model.auto_tile(90, 120, 1)
    assert 0 < tile < 120
    auto = model.restore(x, (0.5, 0.5))
    assert _psnr(auto, whole) >= 45.0


@pytest.mark.parametrize(("h", "w"), [(1, 1), (7, 3), (17, 23)])
def test_odd_and_tiny_sizes(parity: dict, h: int, w: int) -> None:
    model = load_model(parity["params"])
    x = torch.rand(1, 3, h, w)
    assert model.restore(x, (0.5, 0.5)).shape == (1, 3, 4 * h, 4 * w)
    assert model.estimate(x).shape == (1, 2)


def _sweep(model: ModulatedModel, tiles: range | tuple[int, ...], overlaps: tuple[int, ...]) -> float:
    """The worst PSNR against the whole frame over ``tiles`` x ``overlaps``; every result finite."""
    x = _frame(48, 64, seed=5)
    whole = model.restore(x, (0.3, 0.6), tile=0)
    worst = math.inf
    for tile in tiles:
        for overlap in overlaps:
            y = model.restore(x, (0.3, 0.6), tile=tile, tile_overlap=overlap)
            assert y.shape == whole.shape and torch.isfinite(y).all(), (tile, overlap)
            worst = min(worst, _psnr(y, whole))
    return worst


def test_small_tiles_and_overlaps_never_differ_from_the_whole_frame(parity: dict) -> None:
    """Issue 20: a 3 px tile, or tiles apart by a negative overlap, left pixels that no tile
    covered (0 / 0: NaN). Every tile of 1 to 32 px with any overlap now gives what the whole frame
    gives, within what the tests above allow: on the bundled architecture (a small one, with the
    context branch whose pooling grid tiles keep to) and on the released one."""
    torch.manual_seed(0)
    net = CompactNet(CompactConfig(num_feat=16, num_conv=4, context_feat=8, context_conv=2))
    assert net.context is not None
    torch.nn.init.normal_(net.context[-1].weight, std=0.02)  # as above: a context branch that acts
    compact = _sweep(load_model(net.state_dict()), range(1, 33), (0, 1, 3, 8, 32))
    released = _sweep(load_model(parity["params"]), (1, 2, 3, 5, 8, 16, 31, 32), (0, 3, 32))
    print(f"tiles 1-32 px, overlaps 0-32 px, worst: compact {compact:.1f} dB, released {released:.1f} dB")
    assert compact >= 45.0 and released >= 45.0


@pytest.mark.slow
def test_small_tiles_on_the_bundled_model(parity: dict) -> None:
    """As above on the bundled model itself (about a minute on 2 CPU cores)."""
    worst = _sweep(load_model("default"), range(1, 33), (0, 3, 32))
    print(f"bundled model, tiles 1-32 px: worst {worst:.1f} dB")
    assert worst >= 45.0


def test_a_negative_overlap_or_tiles_off_their_grid_are_refused_not_garbage() -> None:
    x = torch.rand(1, 3, 20, 20)

    def up(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(t, scale_factor=2, mode="nearest")

    with pytest.raises(ValueError, match="must not be negative"):
        tiled_apply(up, x, scale=2, tile=8, overlap=-4)
    with pytest.raises(ValueError, match="leave gaps"):
        tiled_apply(up, x, scale=2, tile=3, overlap=0, align=4)
    model = load_model("default")
    with pytest.raises(InputError, match=r"tile overlap must not be negative \(-4\)"):
        model.restore(x, (0.5, 0.5), tile=16, tile_overlap=-4)
    with pytest.raises(InputError, match="not -5"):
        model.restore(x, (0.5, 0.5), tile=-5)


def test_a_network_that_unshuffles_its_input_gets_tiles_on_even_pixels() -> None:
    """The x2 released layout unshuffles its input by 2: a tile starting on an odd pixel would not
    fit it (tiles start on the size multiple too, not only on the pooling grid)."""
    from mmrealsr_video.models.mmrrdbnet import MMRRDBNet, MMRRDBNetConfig

    net = MMRRDBNet(
        MMRRDBNetConfig(scale=2, num_feat=8, num_block=1, num_grow_ch=4, embed_dim=16, am_hidden=8)
    )
    model = load_model(net.state_dict())
    assert model.size_multiple == 2
    x = _frame(45, 67, seed=2)
    whole = model.restore(x, (0.5, 0.5), tile=0)
    tiled = model.restore(x, (0.5, 0.5), tile=33, tile_overlap=9)
    assert tiled.shape == whole.shape == (1, 3, 90, 134) and torch.isfinite(tiled).all()


def test_tiling_notes_say_what_is_used_and_when_overlap_dominates() -> None:
    model = load_model("default")
    assert model.tiling_notes(96, 64, None, 32) == [] and model.tiling_notes(96, 64, 0, 32) == []
    assert model.tiling_notes(96, 64, 4, 32) == [
        "tile 4 px is below the smallest useful tile: using 32 px tiles"
    ]
    assert model.tiling_notes(1920, 1080, 512, 0) == [
        "tile overlap 0 px would show seams between tiles: using 8 px"
    ]
    (note,) = model.tiling_notes(1920, 1080, 64, 32)
    assert re.fullmatch(
        r"tiles of 64 px overlapping by 32 px make the model compute [\d.]+ times the picture's pixels; .*",
        note,
    )
    assert tile_work(1080, 1920, 64, 32) > 3.0 and tile_work(1080, 1920, 512, 32) < 2.0
