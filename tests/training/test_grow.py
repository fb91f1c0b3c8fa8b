"""Growing a compact model: wider and deeper, the same output, and every new weight trainable."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmrealsr_training.grow import grow_compact, layer_positions, rescale_compact
from safetensors.torch import save_file

from mmrealsr_video.errors import InputError
from mmrealsr_video.models.compact import CompactConfig, CompactNet
from mmrealsr_video.models.loader import load_model
from mmrealsr_video.models.mmrrdbnet import MMRRDBNet
from training.__main__ import main

from .test_train import TINY_RRDB

SMALL = CompactConfig(num_feat=12, num_conv=3, embed_dim=16, est_feats=(8, 16), est_hidden=16)


def _trained_like(config: CompactConfig = SMALL, seed: int = 0) -> CompactNet:
    """A network whose modulation, PReLU slopes and biases are all non-trivial (fresh ones are not)."""
    torch.manual_seed(seed)
    net = CompactNet(config)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith(("modulation.", "acts.", "act_first.")) or name.endswith(".bias"):
                p.add_(0.2 * torch.randn_like(p))
    return net.eval()


def _outputs(net: CompactNet, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 3, 20, 28, generator=gen)
    coeffs = torch.rand(3, 2, generator=gen)
    with torch.no_grad():
        return net.restore(x, coeffs), net.estimate(x)


@pytest.mark.parametrize(("num_feat", "num_conv"), [(20, 7), (12, 5), (16, 3), (12, 3)])
def test_grown_network_computes_the_same_function(num_feat: int, num_conv: int) -> None:
    net = _trained_like()
    big = grow_compact(net, num_feat, num_conv, seed=3)
    assert (big.config.num_feat, big.config.num_conv) == (num_feat, num_conv)
    assert big.config.est_feats == SMALL.est_feats and big.config.scale == SMALL.scale
    want_sr, want_est = _outputs(net)
    got_sr, got_est = _outputs(big)
    torch.testing.assert_close(got_sr, want_sr, rtol=0, atol=1e-5)
    assert torch.equal(got_est, want_est)
    # Not a copy by accident: the output depends on the modulation the old layers keep.
    other_sr, _ = _outputs(_trained_like(seed=1))
    assert (other_sr - want_sr).abs().max() > 1e-2


def test_every_new_weight_gets_a_gradient() -> None:
    net = _trained_like()
    big = grow_compact(net, 20, 6).train()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=gen)
    target = torch.rand(2, 3, 64, 64, generator=gen)
    loss = (big.restore(x, torch.rand(2, 2, generator=gen)) - target).abs().mean()
    loss.backward()
    o = SMALL.num_feat
    # The new channels feed the output through the last convolution's zero columns...
    assert big.conv_last.weight.grad is not None and big.conv_last.weight.grad[:, o:].abs().sum() > 0
    # ...and the identity layers, placed between the trained ones, learn like the others.
    identities = [i for i in range(6) if i not in layer_positions(3, 6)]
    assert identities
    for i in identities:
        conv = big.body[i]
        assert isinstance(conv, torch.nn.Conv2d)
        grad = conv.weight.grad
        assert grad is not None and grad.abs().sum() > 0
    assert big.modulation.weight.grad is not None and big.modulation.weight.grad.abs().sum() > 0


def test_a_context_branch_is_grown_silent_and_learns() -> None:
    net = _trained_like()
    big = grow_compact(net, context_feat=10, context_conv=2, seed=4)
    assert (big.config.num_feat, big.config.num_conv, big.config.context_feat) == (12, 3, 10)
    want_sr, want_est = _outputs(net)
    got_sr, got_est = _outputs(big)
    torch.testing.assert_close(got_sr, want_sr, rtol=0, atol=1e-5)
    assert torch.equal(got_est, want_est)
    # Every weight of the branch gets a gradient (the zero last layer at once, the others through it
    # after one step).
    assert big.context is not None
    big.train()
    opt = torch.optim.SGD(big.context.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=gen)
    target = torch.rand(2, 3, 64, 64, generator=gen)
    coeffs = torch.rand(2, 2, generator=gen)
    for _ in range(2):
        opt.zero_grad()
        (big.restore(x, coeffs) - target).abs().mean().backward()
        opt.step()
    for name, p in big.context.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(InputError, match="already has a context branch"):
        grow_compact(big, context_feat=10)
    with pytest.raises(InputError, match="context_pool >= 2"):
        grow_compact(net, context_feat=10, context_pool=1)


def test_layer_positions_keep_order_and_the_last_layer_last() -> None:
    for old, new in [(12, 16), (3, 7), (5, 5), (1, 4), (10, 11)]:
        pos = layer_positions(old, new)
        assert len(pos) == old and pos == sorted(set(pos))
        assert pos[-1] == new - 1 and pos[0] >= 0
    with pytest.raises(InputError):
        layer_positions(4, 3)


def test_it_only_grows() -> None:
    net = _trained_like()
    with pytest.raises(InputError, match=r"12 channels x 3 layers; it can only grow, not become 8 x 3"):
        grow_compact(net, 8, 3)
    with pytest.raises(InputError, match=r"not become 12 x 2"):
        grow_compact(net, 12, 2)


def test_command_line_writes_a_checkpoint_load_model_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    net = _trained_like()
    src = tmp_path / "small.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(src))
    dst = tmp_path / "out" / "grown.safetensors"
    assert main(["grow", str(src), str(dst), "--num-feat", "16", "--num-conv", "5"]) == 0
    assert capsys.readouterr().out.strip() == str(dst)
    model = load_model(dst)
    assert model.arch == "compact"
    assert model.config["num_feat"] == 16 and model.config["num_conv"] == 5
    assert isinstance(model.net, CompactNet)
    want_sr, _ = _outputs(net)
    got_sr, _ = _outputs(model.net)
    torch.testing.assert_close(got_sr, want_sr, rtol=0, atol=1e-5)
    # The same width and depth with a context branch only.
    ctx = tmp_path / "context.safetensors"
    assert main(["grow", str(src), str(ctx), "--context-feat", "8"]) == 0
    capsys.readouterr()
    with_context = load_model(ctx)
    assert with_context.config["num_feat"] == 12 and with_context.config["context_feat"] == 8
    assert isinstance(with_context.net, CompactNet)
    torch.testing.assert_close(_outputs(with_context.net)[0], want_sr, rtol=0, atol=1e-5)

    # A released-architecture checkpoint cannot be grown: a clear error naming the file.
    torch.manual_seed(0)
    rrdb = MMRRDBNet(TINY_RRDB)
    rrdb_path = tmp_path / "rrdb.safetensors"
    save_file({k: v.contiguous() for k, v in rrdb.state_dict().items()}, str(rrdb_path))
    with caplog.at_level(logging.ERROR, logger="training"):
        code = main(
            ["grow", str(rrdb_path), str(tmp_path / "x.safetensors"), "--num-feat", "16", "--num-conv", "5"]
        )
    assert code == 2
    assert "rrdb.safetensors holds a mmrrdbnet network" in caplog.text
    assert not (tmp_path / "x.safetensors").exists()
    # A missing source names itself too, and nothing is written.
    with caplog.at_level(logging.ERROR, logger="training"):
        assert (
            main(
                [
                    "grow",
                    str(tmp_path / "none.pth"),
                    str(tmp_path / "y.safetensors"),
                    "--num-feat",
                    "16",
                    "--num-conv",
                    "5",
                ]
            )
            == 2
        )
    assert "none.pth" in caplog.text and not (tmp_path / "y.safetensors").exists()


@pytest.mark.parametrize("scale", [2, 1])
def test_rescaled_network_is_the_area_downscaled_x4_output(scale: int) -> None:
    net = _trained_like(dataclasses.replace(SMALL, context_feat=8))
    small = rescale_compact(net, scale)
    assert small.scale == scale and small.config.context_feat == 8
    want_sr, want_est = _outputs(net)
    got_sr, got_est = _outputs(small)
    assert got_sr.shape[-2:] == (20 * scale, 28 * scale)
    torch.testing.assert_close(got_sr, F.avg_pool2d(want_sr, 4 // scale), rtol=0, atol=1e-5)
    assert torch.equal(got_est, want_est)


def test_rescale_needs_a_dividing_factor_and_a_compact_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    net = _trained_like()
    with pytest.raises(InputError, match=r"x4; the new scale must divide it, not 3"):
        rescale_compact(net, 3)
    src = tmp_path / "small.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(src))
    dst = tmp_path / "x2.safetensors"
    assert main(["rescale", str(src), str(dst), "--scale", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(dst)
    model = load_model(dst)
    assert model.scale == 2 and isinstance(model.net, CompactNet)
    torch.testing.assert_close(_outputs(model.net)[0], F.avg_pool2d(_outputs(net)[0], 2), rtol=0, atol=1e-5)
    torch.manual_seed(0)
    rrdb_path = tmp_path / "rrdb.safetensors"
    save_file({k: v.contiguous() for k, v in MMRRDBNet(TINY_RRDB).state_dict().items()}, str(rrdb_path))
    with caplog.at_level(logging.ERROR, logger="training"):
        assert main(["rescale", str(rrdb_path), str(tmp_path / "z.safetensors"), "--scale", "2"]) == 2
    assert "rrdb.safetensors holds a mmrrdbnet network" in caplog.text
    assert not (tmp_path / "z.safetensors").exists()
