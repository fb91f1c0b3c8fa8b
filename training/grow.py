"""Growing a trained compact model into a wider and deeper one that computes the same function.

A compact generator trained for hours on the CPU is too valuable to throw away when more capacity
is wanted, so instead of training a larger network from scratch this widens and deepens the trained
one in the manner of Net2Net (Chen et al., 2016), keeping its output exactly:

- Deeper: new body layers are identities (a centre-tap identity kernel, zero bias, PReLU slope 1,
  no modulation: gain 1, shift 0), spread evenly between the trained ones.
- Wider: every layer gets new channels. New channels read from all channels with fresh He-initialised
  weights, but nothing that existed reads from them (those weights are zero, and so are the new
  columns of the last convolution), so the old channels and the output are unchanged; training then
  moves the zeros and the identities.
- A context branch (``CompactConfig.context_feat``): fresh He-initialised convolutions on pooled
  features whose last convolution is zero, so it adds nothing until training moves it.

The estimator is copied unchanged. The result is written in the released layout, so that
``model.init_from`` (and ``load_model``) read it like any checkpoint:

    python -m mmrealsr_training grow mmrealsr_video/models/weights/compact-x4.safetensors runs/grown.safetensors \\
        --num-feat 64 --num-conv 16
    python -m mmrealsr_training grow default runs/context.safetensors --context-feat 32

Re-scaling (:func:`rescale_compact`) derives a model for a smaller factor that divides the trained
one's (x4 -> x2 or x1): the body and estimator are copied, and the last convolution averages the
trained sub-pixel outputs in groups, so the new network computes exactly the trained network's
output area-downscaled to the new size (the nearest-neighbour skip downscales to itself). Training
at the new scale starts from there instead of from scratch:

    python -m mmrealsr_training rescale default runs/x2.safetensors --scale 2
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import torch
from torch import nn

from mmrealsr_video.errors import InputError
from mmrealsr_video.models.compact import ARCH, CompactConfig, CompactNet
from mmrealsr_video.models.loader import ModulatedModel, load_model

__all__ = ["grow_compact", "grow_file", "layer_positions", "rescale_compact", "rescale_file"]

log = logging.getLogger(__name__)


def layer_positions(old: int, new: int) -> list[int]:
    """Where each of ``old`` trained body layers goes among ``new`` (increasing, last stays last)."""
    if not 0 < old <= new:
        raise InputError(f"grow: cannot spread {old} body layers over {new}")
    return [round((j + 1) * new / old) - 1 for j in range(old)]


def _he(shape: tuple[int, ...], fan_in: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)


@torch.no_grad()
def grow_compact(
    net: CompactNet,
    num_feat: int | None = None,
    num_conv: int | None = None,
    *,
    context_feat: int = 0,
    context_conv: int = 4,
    context_pool: int = 4,
    seed: int = 0,
) -> CompactNet:
    """A compact network with ``num_feat`` channels and ``num_conv`` body layers, equal in function.

    Args:
        net: the trained network (left untouched).
        num_feat: new width, at least the old one (None: the old one).
        num_conv: new number of body convolutions, at least the old one (None: the old one).
        context_feat: width of a context branch to add (0: none), ``context_conv`` convolutions on
            features pooled by ``context_pool``.
        seed: seed of the new channels' weights.

    Returns:
        The grown network (eval mode, float32, CPU).

    Raises:
        InputError: a smaller width or depth than the network already has, or a network that
            already has a context branch.
    """
    old = net.config
    num_feat = old.num_feat if num_feat is None else num_feat
    num_conv = old.num_conv if num_conv is None else num_conv
    if num_feat < old.num_feat or num_conv < old.num_conv:
        raise InputError(
            f"grow: the network is {old.num_feat} channels x {old.num_conv} layers; it can only grow, "
            f"not become {num_feat} x {num_conv}"
        )
    if old.context_feat:
        raise InputError(
            f"grow: the network already has a context branch ({old.context_feat} channels); "
            "only networks without one can be grown"
        )
    try:
        cfg = CompactConfig(
            scale=old.scale,
            num_feat=num_feat,
            num_conv=num_conv,
            embed_dim=old.embed_dim,
            num_degradation=old.num_degradation,
            est_feats=old.est_feats,
            est_hidden=old.est_hidden,
            skip=old.skip,
            context_feat=context_feat,
            context_conv=context_conv,
            context_pool=context_pool,
        )
    except ValueError as e:
        raise InputError(f"grow: {e}") from None
    big = CompactNet(cfg)
    src = {k: v.detach().to("cpu", torch.float32) for k, v in net.state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    o, n = old.num_feat, num_feat

    # Everything outside the generator body is copied as it is.
    for name, value in big.state_dict().items():
        if name.startswith(("de_net.", "dd_embed.")) or name == "skip_mode":
            value.copy_(src[name])
    if big.context is not None:
        # Fresh weights from the seeded stream; the last convolution stays zero (silent branch).
        for m in list(big.context)[:-1]:
            if isinstance(m, nn.Conv2d):
                assert m.bias is not None
                m.weight.copy_(_he(tuple(m.weight.shape), m.weight[0].numel(), gen))
                m.bias.zero_()

    # First convolution: old channels copied, new ones fresh.
    w = _he((n, 3, 3, 3), 3 * 9, gen)
    w[:o] = src["conv_first.weight"]
    big.conv_first.weight.copy_(w)
    assert big.conv_first.bias is not None
    b = torch.zeros(n)
    b[:o] = src["conv_first.bias"]
    big.conv_first.bias.copy_(b)
    slope = torch.full((n,), 0.25)
    slope[:o] = src["act_first.weight"]
    big.act_first.weight.copy_(slope)

    # Body: trained layers at their positions, identities in between.
    positions = layer_positions(old.num_conv, num_conv)
    trained = dict(zip(positions, range(old.num_conv), strict=True))
    mod_w = torch.zeros(2 * n * num_conv, old.embed_dim)
    mod_b = torch.zeros(2 * n * num_conv)
    old_mod_w = src["modulation.weight"].view(old.num_conv, 2, o, -1)
    old_mod_b = src["modulation.bias"].view(old.num_conv, 2, o)
    for i, (conv, act) in enumerate(zip(big.body, big.acts, strict=True)):
        assert isinstance(conv, nn.Conv2d) and isinstance(act, nn.PReLU) and conv.bias is not None
        j = trained.get(i)
        w = torch.zeros(n, n, 3, 3)
        b = torch.zeros(n)
        slope = torch.ones(n)
        if j is None:
            w[:, :, 1, 1] = torch.eye(n)
        else:
            w[o:] = _he((n - o, n, 3, 3), n * 9, gen)
            w[:o, :o] = src[f"body.{j}.weight"]
            b[:o] = src[f"body.{j}.bias"]
            slope.fill_(0.25)
            slope[:o] = src[f"acts.{j}.weight"]
            rows = mod_w.view(num_conv, 2, n, -1)
            rows[i, :, :o] = old_mod_w[j]
            mod_b.view(num_conv, 2, n)[i, :, :o] = old_mod_b[j]
        conv.weight.copy_(w)
        conv.bias.copy_(b)
        act.weight.copy_(slope)
    big.modulation.weight.copy_(mod_w)
    big.modulation.bias.copy_(mod_b)

    # Last convolution: nothing reads the new channels yet.
    w = torch.zeros(big.conv_last.weight.shape)
    w[:, :o] = src["conv_last.weight"]
    big.conv_last.weight.copy_(w)
    assert big.conv_last.bias is not None
    big.conv_last.bias.copy_(src["conv_last.bias"])
    return big.eval()


def _compact(model: ModulatedModel, source: str, verb: str, done: str) -> CompactNet:
    """The model's network if it is a compact one, else an error naming ``source``."""
    if model.arch != ARCH or not isinstance(model.net, CompactNet):
        raise InputError(f"{verb}: {source} holds a {model.arch} network; only {ARCH} networks can be {done}")
    return model.net


def grow_file(
    source: str,
    dest: str | Path,
    num_feat: int | None = None,
    num_conv: int | None = None,
    **options: int,
) -> Path:
    """Loads a compact checkpoint (or a bundled name), grows it and writes ``dest`` (safetensors).

    ``options`` are :func:`grow_compact`'s keyword arguments (``context_feat``, ``seed``...).

    Raises:
        InputError: not a compact model, or it would shrink; ``CheckpointError`` for a bad file.
    """
    net = _compact(load_model(source), source, "grow", "grown")
    big = grow_compact(net, num_feat, num_conv, **options)
    # Imported here: train pulls in the whole training stack.
    from .train import save_weights

    out = Path(dest)
    save_weights(big, out, {"arch": ARCH, "grown_from": str(source), "format": "pt"})
    log.info(
        "grew %s (%d x %d) into %s (%d x %d, context branch %d)",
        source,
        net.config.num_feat,
        net.config.num_conv,
        out,
        big.config.num_feat,
        big.config.num_conv,
        big.config.context_feat,
    )
    return out


@torch.no_grad()
def rescale_compact(net: CompactNet, scale: int) -> CompactNet:
    """A compact network for ``scale`` whose output is ``net``'s area-downscaled by ``net.scale / scale``.

    Args:
        net: the trained network (left untouched).
        scale: the new factor; it must divide the network's own.

    Returns:
        The re-scaled network (eval mode, float32, CPU).

    Raises:
        InputError: a factor that does not divide the network's, or a skip other than nearest.
    """
    old = net.config
    if scale < 1 or old.scale % scale:
        raise InputError(f"rescale: the network is x{old.scale}; the new scale must divide it, not {scale}")
    if old.skip != "nearest":
        raise InputError(
            f"rescale: only networks with the nearest-neighbour skip can be re-scaled, not {old.skip!r}"
        )
    try:
        cfg = dataclasses.replace(old, scale=scale)
    except ValueError as e:
        raise InputError(f"rescale: {e}") from None
    small = CompactNet(cfg)
    src = {k: v.detach().to("cpu", torch.float32) for k, v in net.state_dict().items()}
    for name, value in small.state_dict().items():
        if not name.startswith("conv_last."):
            value.copy_(src[name])
    # Pixel shuffle: channel c * r * r + i * r + j is sub-pixel (i, j) of colour c. New sub-pixel
    # (i, j) covers the k x k trained sub-pixels (k i + a, k j + b), whose mean it takes.
    k = old.scale // scale
    w = src["conv_last.weight"].view(3, scale, k, scale, k, *src["conv_last.weight"].shape[1:])
    b = src["conv_last.bias"].view(3, scale, k, scale, k)
    small.conv_last.weight.copy_(w.mean(dim=(2, 4)).reshape(small.conv_last.weight.shape))
    assert small.conv_last.bias is not None
    small.conv_last.bias.copy_(b.mean(dim=(2, 4)).reshape(-1))
    return small.eval()


def rescale_file(source: str, dest: str | Path, scale: int) -> Path:
    """Loads a compact checkpoint (or a bundled name), re-scales it and writes ``dest`` (safetensors).

    Raises:
        InputError: not a compact model, or a factor that does not divide its own.
    """
    net = _compact(load_model(source), source, "rescale", "re-scaled")
    small = rescale_compact(net, scale)
    from .train import save_weights

    out = Path(dest)
    save_weights(small, out, {"arch": ARCH, "rescaled_from": str(source), "format": "pt"})
    log.info("re-scaled %s (x%d) into %s (x%d)", source, net.scale, out, scale)
    return out
