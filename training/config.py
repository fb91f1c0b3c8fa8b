"""Training configuration: frozen dataclasses read from TOML files whose defaults are the released
MM-RealSR values, with errors that name the file and the key.

A file has one optional top-level key, ``stage`` (``"net"`` or ``"gan"``), and the tables ``[model]``,
``[data]``, ``[degradation]``, ``[optim]``, ``[loss]``, ``[gan]`` and ``[run]``; every key is optional.
Relative paths are taken from the working directory when training starts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mmrealsr_video.errors import MMRealSRVideoError
from mmrealsr_video.models import ARCHITECTURES

from .degradations import DegradationConfig
from .perceptual import VGG19_LAYERS

__all__ = [
    "ConfigError",
    "DataConfig",
    "GANConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "config_from_dict",
    "dump_config",
    "load_config",
    "resolve_paths",
]

#: VGG19 layers (before ReLU) and weights of the released perceptual loss.
RELEASED_LAYER_WEIGHTS: dict[str, float] = {
    "conv1_2": 0.1,
    "conv2_2": 0.1,
    "conv3_4": 1.0,
    "conv4_4": 1.0,
    "conv5_4": 1.0,
}


class ConfigError(MMRealSRVideoError, ValueError):
    """A training configuration is malformed: unknown key, wrong type or value out of range."""


def _check(section: str, name: str, ok: bool, what: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{section}.{name}: {what}, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Which network to train and where its starting weights come from.

    Attributes:
        arch: ``"mmrrdbnet"`` (the released network) or ``"compact"`` (ours).
        init_from: a checkpoint to start from (released ``.pth`` or one of ours); its
            hyperparameters are read from the weights, so ``net`` must then stay unset.
        init_estimator_from: ours: a checkpoint whose degradation estimator (``de_net``) is copied
            into a new network built from ``net``; the generator starts fresh. With
            ``optim.freeze_estimator`` a new (say wider) generator learns against a known-good
            estimator, whose estimation figures it then keeps exactly. Not with ``init_from``.
        net: the architecture's hyperparameters (``MMRRDBNetConfig`` / ``CompactConfig``) when
            training from scratch; None = the architecture's defaults. In TOML these are the other
            keys of ``[model]``.
    """

    SECTION: ClassVar[str] = "model"
    arch: str = "mmrrdbnet"
    init_from: str | None = None
    init_estimator_from: str | None = None
    net: Any = None

    def __post_init__(self) -> None:
        _check(
            self.SECTION,
            "arch",
            self.arch in ARCHITECTURES,
            f"must be one of {sorted(ARCHITECTURES)}",
            self.arch,
        )
        if self.net is not None:
            expected = type(ARCHITECTURES[self.arch].default_config())
            if not isinstance(self.net, expected):
                raise ConfigError(
                    f"model.net: expected a {expected.__name__} for arch {self.arch!r}, got {self.net!r}"
                )
            if self.init_from is not None:
                raise ConfigError(
                    "model: architecture hyperparameters cannot be set together with model.init_from "
                    "(they are read from the checkpoint); remove one of them"
                )
        if self.init_from is not None and self.init_estimator_from is not None:
            raise ConfigError(
                "model: init_from already brings the estimator; init_estimator_from is for a new "
                "network, remove one of them"
            )

    def net_config(self) -> Any:
        """The hyperparameters to build from scratch (the defaults when none were given)."""
        return self.net if self.net is not None else ARCHITECTURES[self.arch].default_config()


@dataclass(frozen=True)
class DataConfig:
    """Ground-truth images and how patches are drawn from them.

    Attributes:
        dataroot: folders searched recursively for PNG, JPEG, WebP, TIFF and BMP images.
        gt_size: side of the square ground-truth crops (the LR side is ``gt_size / scale``).
        batch_size: patches per step (released: 6 per GPU x 4 GPUs = 24).
        use_hflip: random horizontal flips.
        use_rot: random vertical flips and transposes (all 8 rotations/flips with ``use_hflip``).
        pool_size: Real-ESRGAN's shuffling pool of synthesised samples; 0 turns it off.
        max_side: images are downscaled (area filter) so that their long side is at most this; 0 = never.
        cache: keep every decoded image in memory (decode once); False decodes on each draw.
        decode_workers: threads that decode the images when the folder is first read.
        synthesis_workers: processes that draw and synthesise batches ahead of the training step
            (ours; for a GPU, whose steps outrun one CPU core's synthesis). 0 = in the training
            process from the run's own data and degradation generators (the released stream); N >= 1
            draws step i's batch from generators seeded by (run.seed, i) alone, so the batches are
            the same for every N >= 1 and a resumed run continues exactly.
    """

    SECTION: ClassVar[str] = "data"
    dataroot: tuple[str, ...] = ("data/photos/train",)
    gt_size: int = 192
    batch_size: int = 24
    use_hflip: bool = True
    use_rot: bool = False
    pool_size: int = 90
    max_side: int = 1024
    cache: bool = True
    decode_workers: int = 2
    synthesis_workers: int = 0

    def __post_init__(self) -> None:
        s = self.SECTION
        _check(
            s,
            "dataroot",
            len(self.dataroot) > 0 and all(self.dataroot),
            "must name at least one folder",
            self.dataroot,
        )
        _check(s, "gt_size", self.gt_size >= 16, "must be at least 16", self.gt_size)
        _check(s, "batch_size", self.batch_size >= 1, "must be at least 1", self.batch_size)
        _check(
            s,
            "pool_size",
            self.pool_size == 0 or self.pool_size >= self.batch_size,
            "must be 0 (no pool) or at least batch_size",
            self.pool_size,
        )
        _check(
            s,
            "max_side",
            self.max_side == 0 or self.max_side >= self.gt_size,
            "must be 0 or >= gt_size",
            self.max_side,
        )
        _check(s, "decode_workers", self.decode_workers >= 1, "must be at least 1", self.decode_workers)
        _check(
            s, "synthesis_workers", self.synthesis_workers >= 0, "must be 0 or more", self.synthesis_workers
        )


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser, schedule and weight averaging of the generator (and of the discriminator's lr).

    Attributes:
        total_iter: training steps in all (released: 70k Net, 590k GAN).
        lr: Adam learning rate (released: 2e-4 Net, 1e-4 GAN).
        betas: Adam betas.
        weight_decay: Adam weight decay.
        milestones: steps at which the learning rate is multiplied by ``lr_gamma`` (MultiStepLR).
        lr_gamma: the factor applied at each milestone.
        ema_decay: exponential moving average of every weight; the saved models are the EMA.
        freeze_estimator: ours: train the generator only, the estimator keeping its starting
            weights (its ranking and anchor terms are then logged, not trained); the GAN stage
            always freezes it, as released.
        freeze_generator: ours: train the estimator only, through the frozen generator's L1 (its
            estimates condition the restoration of the degraded copies) and its own ranking and
            anchor terms: sets the automatic coefficients to what restores best without moving
            what the knobs do. The min and max anchors are then not restored (their L1 is a constant
            of the frozen generator; the logged ``l_pix`` lacks its share, the gradients are the same).
    """

    SECTION: ClassVar[str] = "optim"
    total_iter: int = 70000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.5
    ema_decay: float = 0.999
    freeze_estimator: bool = False
    freeze_generator: bool = False

    def __post_init__(self) -> None:
        s = self.SECTION
        _check(
            s,
            "freeze_generator",
            not (self.freeze_generator and self.freeze_estimator),
            "cannot be set with freeze_estimator (nothing would train)",
            self.freeze_generator,
        )
        _check(s, "total_iter", self.total_iter >= 1, "must be at least 1", self.total_iter)
        _check(s, "lr", 0 < self.lr < 1 and math.isfinite(self.lr), "must be in (0, 1)", self.lr)
        _check(s, "betas", all(0 <= b < 1 for b in self.betas), "must both lie in [0, 1)", self.betas)
        _check(s, "weight_decay", self.weight_decay >= 0, "must be >= 0", self.weight_decay)
        _check(
            s,
            "milestones",
            list(self.milestones) == sorted(set(self.milestones)),
            "must increase",
            self.milestones,
        )
        _check(
            s, "milestones", all(m > 0 for m in self.milestones), "must be positive steps", self.milestones
        )
        _check(s, "lr_gamma", 0 < self.lr_gamma <= 1, "must be in (0, 1]", self.lr_gamma)
        _check(
            s, "ema_decay", 0 <= self.ema_decay < 1, "must be in [0, 1) (0 = no averaging)", self.ema_decay
        )

    def lr_at(self, step: int, base: float | None = None) -> float:
        """The learning rate used for step ``step`` (0-based): MultiStepLR without its state."""
        passed = sum(1 for m in self.milestones if step >= m)
        return (self.lr if base is None else base) * self.lr_gamma**passed


@dataclass(frozen=True)
class LossConfig:
    """Weights of the Net-stage losses (all released values)."""

    SECTION: ClassVar[str] = "loss"
    l1_weight: float = 1.0
    rank_margin: float = 0.05
    rank_blur_weight: float = 0.01
    rank_noise_weight: float = 0.01
    anchor_weight: float = 1e-4
    #: Ours (not in the release): also train on single-axis anchors, one degradation at its worst
    #: with that knob pinned to 1 and the other knob estimated, so each knob learns its own effect.
    axis_anchors: bool = False
    #: The Net stage's L1 target: the unsharp-masked GT (released: true, as Real-ESRNet) or the plain
    #: GT (false: a fidelity model; the sharpened target alone is 25-31 dB PSNR from the true GT on
    #: most held-out photos, a ceiling for the restored output). The GAN stage uses ``gan.l1_gt_usm``.
    l1_gt_usm: bool = True
    #: Ours (not in the release): weight of the knob-direction hinge (``mmrealsr_training.losses.knob_losses``)
    #: on outputs of one input at two nearby knob values: more noise knob, less residual noise in flat
    #: regions; more blur knob, more Laplacian energy. 0 = off (released).
    knob_weight: float = 0.0
    #: The hinge's margin in log energy per step of ``knob_step``.
    knob_margin: float = 0.01
    #: The distance between the two knob values of a pair (the evaluation's sweep step is 0.1).
    knob_step: float = 0.1
    #: Ours: the L1 weight of the anchor outputs (the min, max and single-axis anchors, pinned to 0 or
    #: 1) relative to the copies restored at their estimates. 1 = released: the plain mean over every
    #: output. Below 1 the generator spends more of itself on the inputs the product will see, and the
    #: anchors still teach the ends of each knob.
    anchor_l1_weight: float = 1.0
    #: Ours: weight of the consistency term (``mmrealsr_training.losses.consistency_loss``): each
    #: sample's base degradation is also rendered on another patch of the batch (every random choice
    #: shared), and the squared difference of the two estimates is penalised, so that one degradation
    #: reads alike on different photos. It costs one more base copy to synthesise and estimate (not
    #: restored). 0 = off (released).
    consistency_weight: float = 0.0

    def __post_init__(self) -> None:
        _check(self.SECTION, "knob_step", 0 < self.knob_step <= 1, "must be in (0, 1]", self.knob_step)
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool):
                continue
            _check(self.SECTION, f.name, math.isfinite(v) and v >= 0, "must be a finite number >= 0", v)


@dataclass(frozen=True)
class GANConfig:
    """The GAN stage (``stage = "gan"``): discriminator, adversarial and perceptual losses.

    Attributes:
        vgg_weights: a torchvision-layout VGG19 state dict (``features.N.weight`` keys); never
            downloaded. Without it the perceptual loss is left out (with a warning).
        layer_weights: VGG19 layers (before ReLU, e.g. ``conv3_4``) and their weights.
        perceptual_weight: factor on the whole perceptual loss.
        gan_weight: weight of the generator's adversarial loss (vanilla GAN).
        lr_d: the discriminator's Adam learning rate (follows the same milestones).
        betas_d: the discriminator's Adam betas.
        d_num_feat: the U-Net discriminator's base width.
        d_skip_connection: the U-Net's skip connections.
        l1_gt_usm, percep_gt_usm, gan_gt_usm: whether each loss compares with the sharpened GT.
    """

    SECTION: ClassVar[str] = "gan"
    vgg_weights: str | None = None
    layer_weights: dict[str, float] = field(default_factory=lambda: dict(RELEASED_LAYER_WEIGHTS))
    perceptual_weight: float = 1.0
    gan_weight: float = 0.1
    lr_d: float = 1e-4
    betas_d: tuple[float, float] = (0.9, 0.99)
    d_num_feat: int = 64
    d_skip_connection: bool = True
    l1_gt_usm: bool = True
    percep_gt_usm: bool = True
    gan_gt_usm: bool = False

    def __post_init__(self) -> None:
        s = self.SECTION
        bad = sorted(k for k in self.layer_weights if k not in VGG19_LAYERS or k.startswith("pool"))
        _check(
            s,
            "layer_weights",
            not bad,
            f"unknown VGG19 layers {bad} (use e.g. conv3_4 or relu3_4)",
            self.layer_weights,
        )
        _check(
            s,
            "layer_weights",
            all(w >= 0 for w in self.layer_weights.values()),
            "must be >= 0",
            self.layer_weights,
        )
        _check(s, "perceptual_weight", self.perceptual_weight >= 0, "must be >= 0", self.perceptual_weight)
        _check(s, "gan_weight", self.gan_weight >= 0, "must be >= 0", self.gan_weight)
        _check(s, "lr_d", 0 < self.lr_d < 1, "must be in (0, 1)", self.lr_d)
        _check(s, "betas_d", all(0 <= b < 1 for b in self.betas_d), "must both lie in [0, 1)", self.betas_d)
        _check(s, "d_num_feat", self.d_num_feat >= 1, "must be at least 1", self.d_num_feat)


@dataclass(frozen=True)
class RunConfig:
    """Reproducibility, device and bookkeeping.

    Attributes:
        seed: seeds the network's initialisation, patch sampling, the pool and the degradations.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        precision: ``"fp32"`` or ``"bf16"`` (autocast on CUDA; the weights stay float32).
        num_threads: CPU threads for torch; 0 leaves torch's default.
        checkpoint_every: steps between checkpoints (EMA model + resumable state).
        log_every: steps between lines of ``metrics.jsonl`` (each line averages its steps).
        keep_checkpoints: how many ``model_*.safetensors`` to keep; 0 = all.
        max_minutes: stop (with a checkpoint and the final model) after this much training time,
            whatever step it has reached; 0 = no limit. For a lent machine with a fixed time budget.
    """

    SECTION: ClassVar[str] = "run"
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    num_threads: int = 0
    checkpoint_every: int = 5000
    log_every: int = 100
    keep_checkpoints: int = 0
    max_minutes: float = 0.0

    def __post_init__(self) -> None:
        s = self.SECTION
        ok_budget = math.isfinite(self.max_minutes) and self.max_minutes >= 0
        _check(s, "max_minutes", ok_budget, "must be a finite number >= 0", self.max_minutes)
        _check(s, "seed", self.seed >= 0, "must be >= 0", self.seed)
        ok_dev = re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device) is not None
        _check(s, "device", ok_dev, "must be auto, cpu, cuda, cuda:N or mps", self.device)
        _check(s, "precision", self.precision in ("fp32", "bf16"), "must be fp32 or bf16", self.precision)
        _check(s, "num_threads", self.num_threads >= 0, "must be >= 0", self.num_threads)
        _check(s, "checkpoint_every", self.checkpoint_every >= 1, "must be at least 1", self.checkpoint_every)
        _check(s, "log_every", self.log_every >= 1, "must be at least 1", self.log_every)
        _check(s, "keep_checkpoints", self.keep_checkpoints >= 0, "must be >= 0", self.keep_checkpoints)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; each section's defaults are the released values.

    Attributes:
        stage: ``"net"`` (L1 + ranking + anchor losses, estimator trained) or ``"gan"``
            (adds perceptual and adversarial losses; the estimator is frozen).
    """

    stage: str = "net"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        _check("train", "stage", self.stage in ("net", "gan"), 'must be "net" or "gan"', self.stage)
        scale = int(self.degradation.scale)
        if self.data.gt_size % scale:
            raise ConfigError(
                f"data.gt_size: must be a multiple of degradation.scale ({scale}), got {self.data.gt_size}"
            )
        if self.stage == "gan" and self.data.gt_size % 8:
            raise ConfigError(
                f"data.gt_size: the discriminator needs a multiple of 8, got {self.data.gt_size}"
            )
        if self.model.init_from is None:
            net_scale = int(self.model.net_config().scale)
            if net_scale != scale:
                raise ConfigError(f"model.scale: {net_scale} differs from degradation.scale ({scale})")


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "degradation": DegradationConfig,
    "optim": OptimConfig,
    "loss": LossConfig,
    "gan": GANConfig,
    "run": RunConfig,
}


def _init_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Checks a TOML value against a field's annotation; lists become tuples."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        for a in inner:
            try:
                return _coerce(value, a, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {' or '.join(_type_name(a) for a in inner)}, got {value!r}")
    if tp is Any:
        return tuple(value) if isinstance(value, list) else value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str) and args and args[-1] is Ellipsis and args[0] is str:
            return (value,)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if args and len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        if not args:
            return tuple(value)
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        kt, vt = args if args else (str, Any)
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") if args else v for i, v in enumerate(value)]
    return tuple(value) if isinstance(value, list) else value


def _build(cls: type, table: Mapping[str, Any], section: str, skip: tuple[str, ...] = ()) -> Any:
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{section}] must be a table, got {table!r}")
    known = _init_fields(cls)
    unknown = [k for k in table if k not in known or k in skip]
    if unknown:
        raise ConfigError(f"unknown key '{section}.{unknown[0]}'; [{section}] accepts: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints.get(k, Any), f"{section}.{k}") for k, v in table.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"[{section}]: {e}") from None


#: The [model] keys that are ModelConfig's own; the others are the architecture's hyperparameters.
_MODEL_KEYS = ("arch", "init_from", "init_estimator_from")


def _build_model(table: Mapping[str, Any]) -> ModelConfig:
    if not isinstance(table, Mapping):
        raise ConfigError(f"[model] must be a table, got {table!r}")
    own = {k: v for k, v in table.items() if k in _MODEL_KEYS}
    arch = own.get("arch", ModelConfig.arch)
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ConfigError(f"model.arch: must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
    rest = {k: v for k, v in table.items() if k not in own}
    net = None
    if rest:
        net_cls = type(ARCHITECTURES[arch].default_config())
        known = _init_fields(net_cls)
        unknown = [k for k in rest if k not in known]
        if unknown:
            raise ConfigError(
                f"unknown key 'model.{unknown[0]}'; [model] accepts {', '.join(_MODEL_KEYS)} and the {arch} "
                f"hyperparameters: {', '.join(known)}"
            )
        net = _build(net_cls, rest, "model")
    own = {k: _coerce(v, str, f"model.{k}") for k, v in own.items()}
    return ModelConfig(net=net, **own)


def config_from_dict(d: Mapping[str, Any], *, source: str = "<config>") -> TrainConfig:
    """Builds a TrainConfig from the nested mapping a TOML file parses to.

    Raises:
        ConfigError: an unknown section or key, a value of the wrong type or out of range; the
            message starts with ``source`` and names the key.
    """
    try:
        unknown = [k for k in d if k != "stage" and k not in _SECTIONS]
        if unknown:
            raise ConfigError(
                f"unknown key {unknown[0]!r}; known: stage, {', '.join(f'[{s}]' for s in _SECTIONS)}"
            )
        kwargs: dict[str, Any] = {}
        if "stage" in d:
            kwargs["stage"] = _coerce(d["stage"], str, "stage")
        for name, cls in _SECTIONS.items():
            if name in d:
                kwargs[name] = _build_model(d[name]) if name == "model" else _build(cls, d[name], name)
        return TrainConfig(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{source}: {e}") from None


def load_config(path: str | os.PathLike[str]) -> TrainConfig:
    """Reads a TOML training configuration.

    Raises:
        ConfigError: the file is missing or not TOML, or a key is unknown or its value invalid
            (the message names the file and the key).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the configuration ({e.strerror or e})") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return config_from_dict(d, source=str(p))


def resolve_paths(cfg: TrainConfig, base: str | os.PathLike[str] | None = None) -> TrainConfig:
    """The same configuration with every relative path made absolute against ``base`` (default: cwd)."""
    root = Path(base) if base is not None else Path.cwd()

    def fix(p: str | None) -> str | None:
        return None if p is None else str((root / Path(p).expanduser()).resolve())

    roots = tuple(str(fix(r)) for r in cfg.data.dataroot)
    model = dataclasses.replace(
        cfg.model,
        init_from=fix(cfg.model.init_from),
        init_estimator_from=fix(cfg.model.init_estimator_from),
    )
    return dataclasses.replace(
        cfg,
        model=model,
        data=dataclasses.replace(cfg.data, dataroot=roots),
        gan=dataclasses.replace(cfg.gan, vgg_weights=fix(cfg.gan.vgg_weights)),
    )


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} to TOML")


def _table(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}


def dump_config(cfg: TrainConfig, *, header: str | None = None) -> str:
    """The configuration as TOML text that ``load_config`` reads back to an equal TrainConfig."""
    lines = [f"# {line}" for line in (header or "").splitlines()]
    lines.append(f"stage = {_toml_value(cfg.stage)}")
    for name in _SECTIONS:
        obj = getattr(cfg, name)
        if name == "model":
            table = {k: getattr(obj, k) for k in _MODEL_KEYS if getattr(obj, k) is not None}
            if obj.net is not None:
                table.update(_table(obj.net))
        else:
            table = _table(obj)
        lines.append(f"\n[{name}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if v is not None)
    return "\n".join(lines) + "\n"
