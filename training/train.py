"""The training loop: MM-RealSR's Net stage (L1 + metric learning of the estimator) and GAN stage
(adds perceptual and adversarial losses, estimator frozen), for any registered architecture.

``train(config, run_dir)`` writes, under ``run_dir``: ``config.toml`` (the configuration used),
``train.log``, ``metrics.jsonl`` (one JSON object per ``log_every`` steps), ``checkpoints/``
(``model_XXXXXXX.safetensors`` = EMA weights that ``mmrealsr_video.load_model`` reads, and
``state_latest.pt``, everything needed to resume exactly) and finally ``model_final.safetensors``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, ClassVar, cast

import cv2
import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from mmrealsr_video.errors import CheckpointError, MMRealSRVideoError, OutputError
from mmrealsr_video.io.files import atomic_output
from mmrealsr_video.models import ARCHITECTURES, ModulatedNet
from mmrealsr_video.models.loader import load_model

from .config import (
    ConfigError,
    DegradationConfig,
    ModelConfig,
    TrainConfig,
    dump_config,
    load_config,
    resolve_paths,
)
from .dataset import ImageFolder, PatchSampler, SamplePool
from .degradations import SHARED_COPY, synthesize
from .discriminator import UNetDiscriminatorSN
from .losses import (
    EstimatorOutputs,
    consistency_loss,
    estimator_losses,
    estimator_stats,
    flat_weights,
    gan_loss,
    knob_losses,
)
from .perceptual import PerceptualLoss

__all__ = [
    "STATE_FILE",
    "Trainer",
    "TrainingError",
    "build_network",
    "copies_l1",
    "read_state",
    "slim_state",
    "train",
]

log = logging.getLogger(__name__)

#: The resumable state inside ``run_dir/checkpoints``.
STATE_FILE = "state_latest.pt"
_STATE_FORMAT = "mmrealsr-video/train-state"
_STATE_VERSION = 1
#: The synthesised tensors a step uses, in the estimator's batch order (copy-major).
_LR_COPIES = ("base", "more_blur", "more_noise", "min_anchor", "max_anchor")
_AXIS_COPIES = ("blur_anchor", "noise_anchor")
#: How many of the stacked copies lead with their estimates (base, more blur, more noise); the anchors follow.
_ESTIMATED = _LR_COPIES.index("min_anchor")


class TrainingError(MMRealSRVideoError, RuntimeError):
    """Training cannot go on: a non-finite loss, an unusable resume state, a mismatched checkpoint."""


class StepBatches(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Step ``i``'s synthesised batch (``data.synthesis_workers`` >= 1), a function of (seed, i) alone.

    Its patches and degradations come from two generators seeded from ``(seed, i)``, so any number
    of worker processes, in any order, make the same batches, and a resumed run needs no generator
    state for them.
    """

    def __init__(
        self,
        sampler: PatchSampler,
        cfg: DegradationConfig,
        *,
        seed: int,
        axis_anchors: bool,
        keys: tuple[str, ...],
        shared_copy: bool = False,
    ) -> None:
        self.sampler, self.cfg, self.seed = sampler, cfg, seed
        self.axis_anchors, self.keys, self.shared_copy = axis_anchors, keys, shared_copy

    def generators(self, step: int) -> tuple[torch.Generator, torch.Generator]:
        data, degrade = np.random.SeedSequence([self.seed, step]).generate_state(2)
        return torch.Generator().manual_seed(int(data)), torch.Generator().manual_seed(int(degrade))

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        gen_data, gen_degrade = self.generators(step)
        gt = self.sampler.sample(gen_data)
        with torch.no_grad():
            syn = synthesize(
                gt, self.cfg, gen_degrade, axis_anchors=self.axis_anchors, shared_copy=self.shared_copy
            )
        return {k: syn[k] for k in self.keys}


def _init_synthesis_worker(_: int) -> None:
    """One core per worker (the workers are the parallelism); Ctrl-C is the training process's."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def build_network(model: ModelConfig) -> tuple[nn.Module, str]:
    """The generator (with its estimator) to train, in train mode, on the CPU.

    With ``model.init_from`` the weights and hyperparameters come from that checkpoint (through
    ``load_model``); otherwise the network is built from ``model.net`` with fresh weights, and with
    ``model.init_estimator_from`` its estimator (``de_net``) is then copied from that checkpoint.

    Returns:
        (network, architecture name).

    Raises:
        ConfigError: the checkpoint holds another architecture than ``model.arch``, or an estimator
            of another shape than the network's.
        CheckpointError: the checkpoint cannot be read.
    """
    if model.init_from is not None:
        try:
            loaded = load_model(model.init_from)
        except CheckpointError as e:
            raise type(e)(f"model.init_from: {e}") from None
        if loaded.arch != model.arch:
            raise ConfigError(
                f"model.arch is {model.arch!r} but {model.init_from} holds a {loaded.arch} network"
            )
        net = loaded.net
        log.info("starting from %s (%s, %s)", model.init_from, loaded.arch, loaded.config)
    else:
        net = ARCHITECTURES[model.arch].build(model.net_config())
        if model.init_estimator_from is not None:
            _copy_estimator(net, model.init_estimator_from)
    net.requires_grad_(True).train()
    return net, model.arch


def _copy_estimator(net: nn.Module, source: str) -> None:
    """Loads the estimator (``de_net``) of checkpoint ``source`` into ``net``, shapes checked."""
    try:
        with torch.random.fork_rng(devices=[]):  # building the source network draws no numbers of ours
            loaded = load_model(source)
    except CheckpointError as e:
        raise type(e)(f"model.init_estimator_from: {e}") from None
    src = {k: v for k, v in loaded.net.state_dict().items() if k.startswith("de_net.")}
    dst = {k: v for k, v in net.state_dict().items() if k.startswith("de_net.")}
    problems = [f"{k} missing" for k in dst if k not in src]
    problems += [f"{k} unexpected" for k in src if k not in dst]
    problems += [
        f"{k} is {tuple(src[k].shape)}, the network's {tuple(v.shape)}"
        for k, v in dst.items()
        if k in src and src[k].shape != v.shape
    ]
    if problems:
        raise ConfigError(
            f"model.init_estimator_from: the estimator in {source} ({loaded.arch}) does not fit the "
            f"network's: {'; '.join(problems[:3])}"
        )
    with torch.no_grad():
        for k, v in dst.items():
            v.copy_(src[k])
    log.info("estimator from %s (%s)", source, loaded.arch)


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"run.device: {name} requested but CUDA is not available here")
    return dev


def read_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a training state (``checkpoints/state_latest.pt``), its format and version checked.

    Raises:
        CheckpointError: the file cannot be read or is not a state of this version.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any failure to read means the same to the user
        raise CheckpointError(
            f"{path}: cannot read the training state ({str(e).splitlines()[0][:200]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
        raise CheckpointError(f"{path}: not a training state written by mmrealsr_training.train")
    if state.get("version") != _STATE_VERSION:
        raise CheckpointError(
            f"{path}: training state version {state.get('version')}, expected {_STATE_VERSION}"
        )
    return state


def slim_state(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Writes a copy of training state ``source`` without its sample pool, atomically.

    The pool (``data.pool_size`` synthesised samples) is most of a state's size; without it a state
    of the compact model is a few MB, small enough to carry a run from one machine to the next (a
    lent GPU returns at most 16 MiB a file). Resuming from it continues the weights, the EMA, the
    optimiser, the step and every random stream exactly; only the pool fills up afresh.

    Raises:
        CheckpointError: ``source`` is not a readable training state.
        OutputError: ``dest`` cannot be written.
    """
    state = read_state(source)
    pool = state.get("pool") or {}
    state["pool"] = {"count": 0, "store": {}}
    dest = Path(dest)
    try:
        _atomic_write(dest, lambda p: torch.save(state, p))
    except OutputError:
        raise
    except OSError as e:  # the folder could not be made
        raise OutputError(f"{dest}: cannot write the training state ({e.strerror or e})") from None
    log.info("%s: state at step %d without its pool of %s samples", dest, state["step"], pool.get("count", 0))
    return dest


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Writes through :func:`mmrealsr_video.io.files.atomic_output` (fsynced: a crash never leaves a torn state)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, fsync=True) as tmp:
        write(tmp)


def save_weights(net: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    sd = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}
    _atomic_write(path, lambda p: save_file(sd, str(p), metadata=metadata))


class _LogFile:
    """Attaches a file handler to this package's loggers for the length of a run (once per file,
    however deeply nested)."""

    _active: ClassVar[set[Path]] = set()

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.nested = self.path in self._active
        if self.nested:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        self.loggers = [logging.getLogger("mmrealsr_training"), logging.getLogger("mmrealsr_video")]
        self.levels = [lg.level for lg in self.loggers]

    def __enter__(self) -> _LogFile:
        if self.nested:
            return self
        self._active.add(self.path)
        for lg in self.loggers:
            lg.addHandler(self.handler)
            if lg.level == logging.NOTSET or lg.level > logging.INFO:
                lg.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.nested:
            return
        self._active.discard(self.path)
        for lg, level in zip(self.loggers, self.levels, strict=True):
            lg.removeHandler(self.handler)
            lg.setLevel(level)
        self.handler.close()


class _DeferredInterrupt:
    """The first Ctrl-C asks the loop to stop after the current step (so that the state it saves
    resumes exactly); a second one interrupts at once. Only in the main thread."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None
        self._installed = False

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupt: stopping after this step to save the state (Ctrl-C again stops at once)")

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._old if self._old is not None else signal.SIG_DFL)


def _l1_to(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 of (k*B, ...) outputs against (B, ...) targets repeated k times, without the copies."""
    return (out.float().reshape(-1, *target.shape) - target.float()).abs().mean()


def copies_l1(
    out: torch.Tensor, target: torch.Tensor, anchor_weight: float = 1.0, *, left_out: int = 0
) -> torch.Tensor:
    """The Net stage's L1 over the restored copies, stacked copy-major as :class:`Trainer` restores them.

    The first three copies (base, more blur, more noise) are restored at their estimates; the rest are
    the anchors, pinned to 0 or 1, whose mean L1 counts ``anchor_weight`` times as much per output
    (``loss.anchor_l1_weight``). At 1 this is the released plain mean over every output.

    Args:
        out: (k * B, 3, H, W) outputs, k >= 3 copies of B images.
        target: (B, 3, H, W).
        anchor_weight: >= 0.
        left_out: anchor copies that were not restored (``optim.freeze_generator``: a frozen
            generator's pinned anchors, whose L1 is a constant). They still count in the
            normalisation, so the gradients are those of the L1 over every copy; the value lacks
            their constant share.
    """
    copies = out.shape[0] // target.shape[0]
    if left_out == 0 and (anchor_weight == 1.0 or copies <= _ESTIMATED):
        return _l1_to(out, target)
    k, n = _ESTIMATED, copies - _ESTIMATED
    b = target.shape[0]
    estimated = _l1_to(out[: k * b], target)
    anchors = _l1_to(out[k * b :], target) if n > 0 else estimated.new_zeros(())
    return (k * estimated + anchor_weight * n * anchors) / (k + anchor_weight * (n + left_out))


class Trainer:
    """One training run: networks, optimisers, data and random streams, stepped and checkpointed.

    Args:
        cfg: the configuration (relative paths are resolved against the working directory).
        run_dir: where logs, metrics and checkpoints go.
        resume: ``"auto"`` (continue from ``run_dir/checkpoints/state_latest.pt`` if it exists),
            ``"none"`` (start afresh) or a path to a state file.
        progress: show a progress bar; None = only when stderr is a terminal.

    Raises:
        ConfigError: the configuration does not fit the data, checkpoint or device.
        CheckpointError: a weights or state file cannot be read.
        DatasetError: no usable training images.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | os.PathLike[str],
        *,
        resume: str | os.PathLike[str] = "auto",
        progress: bool | None = None,
    ) -> None:
        self.cfg = cfg = resolve_paths(cfg)
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.device = _resolve_device(cfg.run.device)
        self.gan = cfg.stage == "gan"
        self.freeze_estimator = self.gan or cfg.optim.freeze_estimator
        self._lr_copies = (*_LR_COPIES, *_AXIS_COPIES) if cfg.loss.axis_anchors else _LR_COPIES
        # Ours: the base degradation on another patch, estimated (not restored) for the consistency term.
        self.shared_copy = cfg.loss.consistency_weight > 0
        self.autocast_dtype: torch.dtype | None = None
        if cfg.run.precision == "bf16":
            if self.device.type == "cuda":
                self.autocast_dtype = torch.bfloat16
            else:
                log.warning("run.precision bf16 is used on CUDA only; training in float32 on %s", self.device)
        if cfg.run.num_threads:
            torch.set_num_threads(cfg.run.num_threads)
        state_path = self._state_path(resume)

        torch.manual_seed(cfg.run.seed)
        state: dict[str, Any] | None = None
        if state_path is not None:
            state = self._read_state(state_path)
            self.net, self.arch = self._network_from_state(state)
        else:
            self.net, self.arch = build_network(cfg.model)
        self.net.to(self.device)
        self.modnet = cast(ModulatedNet, self.net)
        self._check_sizes()
        self.net_ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        if cfg.model.init_from is None and state is None:
            if self.gan:
                log.warning(
                    "GAN stage without model.init_from: the released recipe starts from a Net-stage model"
                )
            elif self.freeze_estimator and cfg.model.init_estimator_from is None:
                log.warning(
                    "a frozen estimator without model.init_from or model.init_estimator_from keeps "
                    "its random initial weights"
                )
        if cfg.optim.freeze_generator and self.gan:
            raise ConfigError("optim.freeze_generator: the GAN stage trains the generator; unset it")
        self.freeze_generator = cfg.optim.freeze_generator
        if self.freeze_generator:
            if cfg.model.init_from is None and state is None:
                log.warning("a frozen generator without model.init_from keeps its random initial weights")
            if cfg.loss.knob_weight > 0:
                log.warning("loss.knob_weight is ignored with optim.freeze_generator (the knobs cannot move)")
        for name, p in self.net.named_parameters():
            is_estimator = name.startswith("de_net.")
            if (self.freeze_estimator and is_estimator) or (self.freeze_generator and not is_estimator):
                p.requires_grad_(False)
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(
            params, lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay
        )
        self.net_d: UNetDiscriminatorSN | None = None
        self.opt_d: torch.optim.Adam | None = None
        self.perceptual: PerceptualLoss | None = None
        if self.gan:
            self.net_d = UNetDiscriminatorSN(3, cfg.gan.d_num_feat, cfg.gan.d_skip_connection).to(self.device)
            self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=cfg.gan.lr_d, betas=cfg.gan.betas_d)
            if cfg.gan.vgg_weights is not None:
                try:
                    self.perceptual = PerceptualLoss(
                        cfg.gan.vgg_weights, cfg.gan.layer_weights, cfg.gan.perceptual_weight
                    ).to(self.device)
                except CheckpointError as e:
                    raise ConfigError(f"gan.vgg_weights: {e}") from None
            else:
                log.warning("gan.vgg_weights is not set: training the GAN stage without the perceptual loss")

        self.images = ImageFolder(
            cfg.data.dataroot,
            gt_size=cfg.data.gt_size,
            max_side=cfg.data.max_side,
            cache=cfg.data.cache,
            workers=cfg.data.decode_workers,
        )
        self.sampler = PatchSampler(
            self.images,
            gt_size=cfg.data.gt_size,
            batch_size=cfg.data.batch_size,
            hflip=cfg.data.use_hflip,
            rot=cfg.data.use_rot,
        )
        self.pool = SamplePool(cfg.data.pool_size)
        seed = cfg.run.seed
        self.gen_data = torch.Generator().manual_seed(seed)
        self.gen_degrade = torch.Generator().manual_seed(seed + 1)
        self.gen_pool = torch.Generator().manual_seed(seed + 2)
        self.gen_knob = torch.Generator().manual_seed(seed + 3)
        self.step_batches = StepBatches(
            self.sampler,
            cfg.degradation,
            seed=seed,
            axis_anchors=cfg.loss.axis_anchors,
            keys=("gt", "gt_usm", *self._lr_copies, *((SHARED_COPY,) if self.shared_copy else ())),
            shared_copy=self.shared_copy,
        )
        self.step = 0
        if state is not None:
            self._load_state(state)
            log.info("resumed from %s at step %d", state_path, self.step)

    # ------------------------------------------------------------------ state

    def _state_path(self, resume: str | os.PathLike[str]) -> Path | None:
        own = self.ckpt_dir / STATE_FILE
        r = os.fspath(resume)
        if r == "auto":
            return own if own.is_file() else None
        if r == "none":
            if own.is_file():
                log.warning("%s exists but resume is 'none': starting afresh and overwriting it", own)
            return None
        p = Path(r)
        if not p.is_file():
            raise CheckpointError(f"{p}: no such state file to resume from")
        return p

    def _read_state(self, path: Path) -> dict[str, Any]:
        state = read_state(path)
        if state["stage"] != self.cfg.stage or state["arch"] != self.cfg.model.arch:
            raise ConfigError(
                f"{path}: holds a {state['arch']} {state['stage']}-stage run; the configuration asks for "
                f"a {self.cfg.model.arch} {self.cfg.stage}-stage run (use --resume none or another run folder)"
            )
        old = [ln for ln in str(state.get("config", "")).splitlines() if not ln.startswith("#")]
        new = [ln for ln in dump_config(self.cfg).splitlines() if not ln.startswith("#")]
        changed = sorted({ln.split(" = ")[0] for ln in set(old) ^ set(new) if " = " in ln} - {"total_iter"})
        if changed:
            log.warning(
                "resuming with a configuration that differs from the saved one in: %s", ", ".join(changed)
            )
        return state

    def _network_from_state(self, state: Mapping[str, Any]) -> tuple[nn.Module, str]:
        arch = ARCHITECTURES[state["arch"]]
        hp = arch.detect(state["params"])
        if hp is None:
            raise CheckpointError(f"the saved parameters are not a {arch.name} network")
        net = arch.build(hp)
        net.train()
        return net, arch.name

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["params"])
        self.net_ema.load_state_dict(state["params_ema"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        if self.net_d is not None and self.opt_d is not None:
            self.net_d.load_state_dict(state["net_d"])
            self.opt_d.load_state_dict(state["optimizer_d"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.gen_data.set_state(rng["data"])
        self.gen_degrade.set_state(rng["degrade"])
        self.gen_pool.set_state(rng["pool"])
        if "knob" in rng:  # states written before the knob loss existed lack it
            self.gen_knob.set_state(rng["knob"])
        self.pool.load_state_dict(state["pool"], self.device)
        self.step = int(state["step"])
        if self.step and self.pool.size and not len(self.pool):
            log.info("the state holds no sample pool (slimmed): the pool fills up afresh")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly (plain tensors and containers only)."""
        state: dict[str, Any] = {
            "format": _STATE_FORMAT,
            "version": _STATE_VERSION,
            "step": self.step,
            "stage": self.cfg.stage,
            "arch": self.arch,
            "config": dump_config(self.cfg),
            "params": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "params_ema": {k: v.detach().cpu() for k, v in self.net_ema.state_dict().items()},
            "optimizer_g": self.opt_g.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "data": self.gen_data.get_state(),
                "degrade": self.gen_degrade.get_state(),
                "pool": self.gen_pool.get_state(),
                "knob": self.gen_knob.get_state(),
            },
            "pool": self.pool.state_dict(),
        }
        if self.net_d is not None and self.opt_d is not None:
            state["net_d"] = {k: v.detach().cpu() for k, v in self.net_d.state_dict().items()}
            state["optimizer_d"] = self.opt_d.state_dict()
        return state

    def save_state(self) -> Path:
        """Writes ``checkpoints/state_latest.pt`` atomically."""
        path = self.ckpt_dir / STATE_FILE
        state = self.state_dict()
        _atomic_write(path, lambda p: torch.save(state, p))
        return path

    def save_model(self, path: Path) -> Path:
        """Writes the EMA weights in the architecture's own layout (``load_model`` reads them)."""
        meta = {"arch": self.arch, "step": str(self.step), "stage": self.cfg.stage, "format": "pt"}
        save_weights(self.net_ema, path, meta)
        return path

    def checkpoint(self) -> Path:
        """Saves ``model_XXXXXXX.safetensors`` and the resumable state; prunes old models if asked."""
        path = self.save_model(self.ckpt_dir / f"model_{self.step:07d}.safetensors")
        self.save_state()
        keep = self.cfg.run.keep_checkpoints
        if keep:
            for old in sorted(self.ckpt_dir.glob("model_*.safetensors"))[:-keep]:
                old.unlink(missing_ok=True)
        log.info("step %d: saved %s", self.step, path.name)
        return path

    # ------------------------------------------------------------------ steps

    def _check_sizes(self) -> None:
        scale = int(self.modnet.scale)
        if scale != self.cfg.degradation.scale:
            raise ConfigError(f"degradation.scale: {self.cfg.degradation.scale} but the network is x{scale}")
        lr = self.cfg.data.gt_size // scale
        if lr % int(self.modnet.size_multiple):
            raise ConfigError(
                f"data.gt_size: the LR patch side ({lr}) must be a multiple of {self.modnet.size_multiple} "
                f"for this x{scale} network"
            )

    def next_batch(self) -> dict[str, torch.Tensor]:
        """Draws GT patches, synthesises their degraded copies and passes them through the pool
        (in this process, whatever ``data.synthesis_workers`` says; ``batches`` uses the workers)."""
        if self.cfg.data.synthesis_workers:
            return self._to_pool(self.step_batches[self.step])
        gt = self.sampler.sample(self.gen_data)
        with torch.no_grad():
            syn = synthesize(
                gt,
                self.cfg.degradation,
                self.gen_degrade,
                axis_anchors=self.cfg.loss.axis_anchors,
                shared_copy=self.shared_copy,
            )
        return self._to_pool(syn)

    def _to_pool(self, syn: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {k: syn[k].to(self.device, non_blocking=True) for k in self.step_batches.keys}
        return self.pool.exchange(batch, self.gen_pool)

    def batches(self, stop: int) -> Generator[dict[str, torch.Tensor], None, None]:
        """The batches of steps ``self.step`` .. ``stop - 1``, made ahead by ``data.synthesis_workers``
        processes when there are any; the same batches as ``next_batch`` would give step by step."""
        workers = self.cfg.data.synthesis_workers
        if not workers:
            for _ in range(self.step, stop):
                yield self.next_batch()
            return
        loader = torch.utils.data.DataLoader(
            self.step_batches,
            batch_size=None,
            sampler=range(self.step, stop),
            num_workers=workers,
            prefetch_factor=4,
            worker_init_fn=_init_synthesis_worker,
            # Fresh interpreters: a fork of this process can inherit OpenCV's and OpenMP's thread
            # pools mid-use and hang (seen as workers stuck in cv2.setNumThreads).
            multiprocessing_context="spawn",
            pin_memory=self.device.type == "cuda",
        )
        for syn in loader:
            yield self._to_pool(syn)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _set_lr(self) -> float:
        lr = self.cfg.optim.lr_at(self.step)
        for group in self.opt_g.param_groups:
            group["lr"] = lr
        if self.opt_d is not None:
            lr_d = self.cfg.optim.lr_at(self.step, self.cfg.gan.lr_d)
            for group in self.opt_d.param_groups:
                group["lr"] = lr_d
        return lr

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimisation step on a synthesised batch; returns the (detached) loss terms."""
        self._set_lr()
        b = batch["base"].shape[0]
        lq = torch.cat([batch[k] for k in self._lr_copies])
        one = lq.new_ones(b, 2)
        terms: dict[str, torch.Tensor] = {}
        with self._autocast():
            with torch.no_grad() if self.freeze_estimator else contextlib.nullcontext():
                est = self.modnet.estimate(lq).float()
                est_shared = self.modnet.estimate(batch[SHARED_COPY]).float() if self.shared_copy else None
            # Degraded copies use the estimator's output (gradients reach it through the generator
            # too, as in the original); the anchors are pinned to exactly 0 and 1.
            coeffs = torch.cat([est[: 3 * b], one * 0, one])
            if self.cfg.loss.axis_anchors:
                # Single-axis anchors: the worst degradation's knob pinned to 1, the other estimated.
                blur_a, noise_a = est[5 * b : 6 * b], est[6 * b : 7 * b]
                coeffs = torch.cat(
                    [
                        coeffs,
                        torch.stack([one[:, 0], blur_a[:, 1]], 1),
                        torch.stack([noise_a[:, 0], one[:, 1]], 1),
                    ]
                )
            left_out = 0
            if self.freeze_generator:
                # The min and max anchors are restored at pinned knobs by a frozen generator: their L1 is
                # a constant, with no gradient for the estimator. Only the copies restored at estimates
                # are restored; the anchors still count in the L1's normalisation (same gradients).
                keep = torch.cat([torch.arange(3 * b), torch.arange(5 * b, lq.shape[0])]).to(lq.device)
                lq, coeffs, left_out = lq[keep], coeffs[keep], 2
            out = self.modnet.restore(lq, coeffs)
        eo = EstimatorOutputs(est[: 5 * b], b)
        use_usm = self.cfg.gan.l1_gt_usm if self.gan else self.cfg.loss.l1_gt_usm
        l1_target = batch["gt_usm"] if use_usm else batch["gt"]
        terms["l_pix"] = self.cfg.loss.l1_weight * copies_l1(
            out, l1_target, self.cfg.loss.anchor_l1_weight, left_out=left_out
        )
        if self.cfg.loss.knob_weight > 0 and not self.freeze_generator:
            terms.update(self._knob_terms(batch, est[:b].detach()))
        if self.gan:
            with torch.no_grad():
                monitor = self._estimator_terms(eo, est_shared)
            total = sum(terms.values(), torch.zeros((), device=self.device))
            assert self.net_d is not None and self.opt_d is not None
            if self.perceptual is not None:
                pgt = batch["gt_usm"] if self.cfg.gan.percep_gt_usm else batch["gt"]
                with self._autocast():
                    terms["l_percep"] = self.perceptual(out, pgt)
                total = total + terms["l_percep"]
            self.net_d.requires_grad_(False)
            with self._autocast():
                fake_logits = self.net_d(out)
            terms["l_g_gan"] = self.cfg.gan.gan_weight * gan_loss(fake_logits, True)
            total = total + terms["l_g_gan"]
            self._check_finite(total, terms)
            self.opt_g.zero_grad(set_to_none=True)
            total.backward()
            self.opt_g.step()
            # Discriminator: real GT patches (once each) against all the generator's outputs.
            self.net_d.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            real = batch["gt_usm"] if self.cfg.gan.gan_gt_usm else batch["gt"]
            with self._autocast():
                real_logits = self.net_d(real)
            l_d_real = gan_loss(real_logits, True)
            l_d_real.backward()
            with self._autocast():
                fake_logits = self.net_d(out.detach())
            l_d_fake = gan_loss(fake_logits, False)
            l_d_fake.backward()
            self.opt_d.step()
            terms.update(monitor)
            terms["l_d_real"] = l_d_real
            terms["l_d_fake"] = l_d_fake
            terms["out_d_real"] = real_logits.detach().float().mean()
            terms["out_d_fake"] = fake_logits.detach().float().mean()
        else:
            est_terms = self._estimator_terms(eo, est_shared)
            trained = {**terms, **({} if self.freeze_estimator else est_terms)}
            total = sum(trained.values(), torch.zeros((), device=self.device))
            terms.update(est_terms)
            self._check_finite(total, terms)
            self.opt_g.zero_grad(set_to_none=True)
            total.backward()
            self.opt_g.step()
        self._update_ema()
        self.step += 1
        terms["l_total"] = total
        detached = {k: v.detach().float() for k, v in terms.items()}
        for k, v in estimator_stats(eo).items():
            detached[k] = torch.tensor(v)
        if est_shared is not None:
            # Diagnostic: how far apart one degradation reads on two photos (noise knob).
            detached["est_gap_noise"] = (eo.base[:, 1] - est_shared[:, 1]).abs().mean().detach().float()
        return detached

    def _estimator_terms(
        self, eo: EstimatorOutputs, est_shared: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """The estimator's weighted terms: ranking, anchors and, with ``loss.consistency_weight``, the
        consistency of the base degradation read on two photos."""
        terms = estimator_losses(eo, self.cfg.loss)
        if est_shared is not None:
            terms["l_consistency"] = self.cfg.loss.consistency_weight * consistency_loss(eo.base, est_shared)
        return terms

    def _knob_terms(
        self, batch: Mapping[str, torch.Tensor], est_base: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The knob-direction terms (ours): the base copies restored at two nearby knob values.

        The first half of the batch varies the noise knob, the rest the blur knob (the other knob
        at its estimate), from t to t + ``loss.knob_step`` with t drawn uniformly (seeded).
        """
        cfg = self.cfg.loss
        base = batch["base"]
        b = base.shape[0]
        nb = max(1, b // 2)
        t = torch.rand(b, generator=self.gen_knob) * (1.0 - cfg.knob_step)
        t = t.to(self.device, est_base.dtype)
        lo, hi = est_base.clone(), est_base.clone()
        lo[:nb, 1], hi[:nb, 1] = t[:nb], t[:nb] + cfg.knob_step
        lo[nb:, 0], hi[nb:, 0] = t[nb:], t[nb:] + cfg.knob_step
        with self._autocast():
            out = self.modnet.restore(torch.cat([base, base]), torch.cat([lo, hi]))
        out_lo, out_hi = out.float().split(b)
        flat = flat_weights(batch["gt"][:nb])
        l_noise, l_blur = knob_losses(
            out_lo[:nb], out_hi[:nb], out_lo[nb:], out_hi[nb:], flat, cfg.knob_margin
        )
        return {"l_knob_noise": cfg.knob_weight * l_noise, "l_knob_blur": cfg.knob_weight * l_blur}

    def _check_finite(self, total: torch.Tensor, terms: Mapping[str, torch.Tensor]) -> None:
        if not bool(torch.isfinite(total)):
            bad = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
            raise TrainingError(
                f"non-finite loss at step {self.step + 1} ({bad}); the last saved state is in {self.ckpt_dir} "
                "(lower optim.lr, or check the data)"
            )

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.cfg.optim.ema_decay
        ema = dict(self.net_ema.named_parameters())
        for name, p in self.net.named_parameters():
            ema[name].lerp_(p.detach(), 1.0 - decay)
        ema_buf = dict(self.net_ema.named_buffers())
        for name, buf in self.net.named_buffers():
            ema_buf[name].copy_(buf)

    # ------------------------------------------------------------------ the run

    def _prepare_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_dir.mkdir(exist_ok=True)
        header = f"configuration used by mmrealsr_training.train ({time.strftime('%Y-%m-%d %H:%M:%S')})"
        text = dump_config(self.cfg, header=header)
        _atomic_write(self.run_dir / "config.toml", lambda p: p.write_text(text, encoding="utf-8"))
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists():
            # Lines from beyond the state we continue from belong to a run that crashed later.
            keep = []
            for line in metrics.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    if int(json.loads(line)["step"]) <= self.step:
                        keep.append(line + "\n")
            _atomic_write(metrics, lambda p: p.write_text("".join(keep), encoding="utf-8"))

    def run(self) -> Path:
        """Trains up to ``optim.total_iter`` steps; returns the final EMA model's path."""
        self._prepare_run_dir()
        with _LogFile(self.run_dir / "train.log"):
            return self._run()

    def _run(self) -> Path:
        cfg = self.cfg
        total_iter = cfg.optim.total_iter
        n_params = sum(p.numel() for p in self.net.parameters())
        n_train = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        log.info(
            "%s stage, %s (%.2f M parameters, %.2f M trained) on %s; %d images; batch %d x %d px; steps %d -> %d",
            cfg.stage,
            self.arch,
            n_params / 1e6,
            n_train / 1e6,
            self.device,
            len(self.images),
            cfg.data.batch_size,
            cfg.data.gt_size,
            self.step,
            total_iter,
        )
        if self.images.skipped:
            log.warning("%d unreadable images were skipped", len(self.images.skipped))
        sums: dict[str, torch.Tensor] = {}
        n, t_data, t0 = 0, 0.0, time.perf_counter()
        bar = tqdm(
            total=total_iter,
            initial=self.step,
            disable=not self.progress,
            unit="it",
            dynamic_ncols=True,
            file=sys.stderr,
        )
        metrics = (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8")
        stack = contextlib.ExitStack()
        stop = stack.enter_context(_DeferredInterrupt())
        if self.progress:
            stack.enter_context(logging_redirect_tqdm())
        t_start, budget = time.perf_counter(), cfg.run.max_minutes * 60.0
        batches = self.batches(total_iter)
        stack.callback(batches.close)  # stops the synthesis workers however the loop ends
        try:
            while self.step < total_iter:
                td = time.perf_counter()
                batch = next(batches)
                t_data += time.perf_counter() - td
                terms = self.train_step(batch)
                for k, v in terms.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                n += 1
                bar.update(1)
                last = self.step == total_iter
                if self.step % cfg.run.log_every == 0 or last:
                    now = time.perf_counter()
                    row: dict[str, Any] = {"step": self.step}
                    row.update({k: round(float(v) / n, 7) for k, v in sums.items()})
                    row["lr"] = cfg.optim.lr_at(self.step - 1)
                    row["s_per_iter"] = round((now - t0) / n, 4)
                    row["data_s_per_iter"] = round(t_data / n, 4)
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                    bar.set_postfix(l_pix=f"{row['l_pix']:.4f}", s_it=f"{row['s_per_iter']:.2f}")
                    log.info(
                        "step %d: %s",
                        self.step,
                        " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step"),
                    )
                    sums, n, t_data, t0 = {}, 0, 0.0, now
                if self.step % cfg.run.checkpoint_every == 0 or last:
                    self.checkpoint()
                if stop.requested and not last:
                    path = self.save_state()
                    log.warning("stopped at step %d; %s resumes exactly from here", self.step, path)
                    raise KeyboardInterrupt
                if budget and not last and time.perf_counter() - t_start >= budget:
                    if self.step % cfg.run.checkpoint_every:
                        self.checkpoint()
                    log.info(
                        "time budget of %g minutes reached at step %d (of %d); resume to go on",
                        cfg.run.max_minutes,
                        self.step,
                        total_iter,
                    )
                    break
        finally:
            stack.close()
            bar.close()
            metrics.close()
        final = self.save_model(self.run_dir / "model_final.safetensors")
        if not (self.ckpt_dir / STATE_FILE).is_file():
            self.save_state()
        log.info("finished at step %d: %s", self.step, final)
        return final


def train(
    config: TrainConfig | str | os.PathLike[str],
    run_dir: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] = "auto",
    *,
    progress: bool | None = None,
) -> Path:
    """Trains (or fine-tunes) a modulated model as configured.

    Args:
        config: a TrainConfig or the path of a TOML configuration.
        run_dir: output folder; default ``runs/<config file stem>`` (``runs/train`` for an object).
        resume: ``"auto"`` continues from ``run_dir/checkpoints/state_latest.pt`` when it exists,
            ``"none"`` starts afresh, anything else is the path of a state file.
        progress: progress bar; None = only on a terminal.

    Returns:
        The path of the final EMA model, ``run_dir/model_final.safetensors``.

    Raises:
        ConfigError, CheckpointError, DatasetError, TrainingError: as their names say; messages
        name the file, key or step.
    """
    if isinstance(config, TrainConfig):
        cfg, name = config, "train"
    else:
        cfg, name = load_config(config), Path(config).stem
    out = Path(run_dir) if run_dir is not None else Path("runs") / name
    with _LogFile(out / "train.log"):  # so that setting up (data, weights) is logged too
        return Trainer(cfg, out, resume=resume, progress=progress).run()
