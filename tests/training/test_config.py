"""Training configuration: released defaults, shipped files, errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmrealsr_training.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    config_from_dict,
    dump_config,
    load_config,
    resolve_paths,
)
from mmrealsr_training.degradations import DegradationConfig

from mmrealsr_video.models.compact import CompactConfig
from mmrealsr_video.models.mmrrdbnet import MMRRDBNetConfig

CONFIGS = Path(__file__).parents[2] / "training" / "configs"


def _write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_are_the_released_recipe() -> None:
    c = TrainConfig()
    assert c.stage == "net"
    assert c.model.arch == "mmrrdbnet" and c.model.net_config() == MMRRDBNetConfig()
    assert (c.data.batch_size, c.data.gt_size, c.data.pool_size) == (24, 192, 90)
    assert (c.optim.total_iter, c.optim.lr, c.optim.betas, c.optim.ema_decay) == (
        70000,
        2e-4,
        (0.9, 0.99),
        0.999,
    )
    assert (c.loss.l1_weight, c.loss.rank_margin, c.loss.anchor_weight) == (1.0, 0.05, 1e-4)
    assert c.loss.rank_blur_weight == c.loss.rank_noise_weight == 0.01
    assert c.loss.consistency_weight == 0.0  # ours, off
    assert c.gan.layer_weights == {
        "conv1_2": 0.1,
        "conv2_2": 0.1,
        "conv3_4": 1.0,
        "conv4_4": 1.0,
        "conv5_4": 1.0,
    }
    assert (c.gan.gan_weight, c.gan.lr_d) == (0.1, 1e-4)
    assert c.degradation == DegradationConfig()


def test_shipped_configs_load() -> None:
    net = load_config(CONFIGS / "mmrealsr_net_x4.toml")
    assert net.stage == "net" and net.model.arch == "mmrrdbnet" and net.model.init_from
    assert (net.data.batch_size, net.optim.total_iter, net.optim.lr) == (24, 70000, 2e-4)
    gan = load_config(CONFIGS / "mmrealsr_gan_x4.toml")
    assert gan.stage == "gan" and gan.optim.lr == 1e-4 and gan.optim.milestones == (400000,)
    assert gan.gan.vgg_weights and gan.data.gt_size == 256
    compact = load_config(CONFIGS / "compact_x4.toml")
    assert compact.model.arch == "compact" and compact.model.net == CompactConfig()
    assert compact.run.device == "cpu"


def test_lr_schedule_is_multistep() -> None:
    o = OptimConfig(lr=1e-3, milestones=(10, 20), lr_gamma=0.5)
    assert [o.lr_at(s) for s in (0, 9, 10, 19, 20, 100)] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[optim]\nlrr = 1e-4\n", "'optim.lrr'"),
        ("[optimizer]\nlr = 1e-4\n", "'optimizer'"),
        ("bogus = 1\n", "'bogus'"),
        ('[model]\narch = "compact"\nnum_feats = 8\n', "'model.num_feats'"),
        ("[degradation]\nnoise_rnge = [1, 2]\n", "'degradation.noise_rnge'"),
        ("[gan]\nvgg = 'x.pth'\n", "'gan.vgg'"),
    ],
)
def test_unknown_key_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and key in str(e.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[optim]\nlr = -1.0\n", "optim.lr"),
        ('[data]\ngt_size = "big"\n', "data.gt_size"),
        ("[data]\ngt_size = 190\n", "data.gt_size"),
        ("[data]\nuse_hflip = 1\n", "data.use_hflip"),
        ("[data]\nbatch_size = 8\npool_size = 4\n", "data.pool_size"),
        ("[optim]\nbetas = [0.9]\n", "optim.betas"),
        ("[optim]\nmilestones = [20, 10]\n", "optim.milestones"),
        ('stage = "gn"\n', "stage"),
        ('[model]\narch = "edsr"\n', "model.arch"),
        ('[model]\narch = "compact"\nnum_feat = 0\n', "num_feat"),
        ('[model]\narch = "compact"\nscale = 2\n', "model.scale"),
        ('[model]\ninit_from = "x.pth"\nnum_block = 2\n', "model.init_from"),
        ('[model]\ninit_from = "x.pth"\ninit_estimator_from = "y.pth"\n', "init_estimator_from"),
        ("[degradation]\nnoise_range = [5.0, 1.0]\n", "noise_range"),
        ("[gan]\nlayer_weights = { conv9_9 = 1.0 }\n", "gan.layer_weights"),
        ('[run]\ndevice = "tpu"\n', "run.device"),
        ("[loss]\nknob_step = 0.0\n", "loss.knob_step"),
        ("[loss]\nknob_weight = -0.1\n", "loss.knob_weight"),
        ("[loss]\nconsistency_weight = -0.1\n", "loss.consistency_weight"),
    ],
)
def test_bad_value_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and key in str(e.value)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "[optim\nlr = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ValueError):  # ConfigError is also a ValueError
        load_config(tmp_path / "nope.toml")


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = TrainConfig(
        stage="gan",
        model=ModelConfig(arch="compact", net=CompactConfig(num_feat=8, est_feats=(4, 8))),
        data=DataConfig(dataroot=("a", "b c"), gt_size=64, batch_size=2, pool_size=0),
        degradation=DegradationConfig(noise=False, usm_radius=3),
        optim=OptimConfig(lr=3e-5, milestones=(5, 9)),
    )
    p = _write(tmp_path, dump_config(cfg, header="a header\nof two lines"))
    assert load_config(p) == cfg
    for f in CONFIGS.glob("*.toml"):
        c = load_config(f)
        assert load_config(_write(tmp_path, dump_config(c), f.name)) == c


def test_single_dataroot_string_and_paths_resolve(tmp_path: Path) -> None:
    cfg = config_from_dict({"data": {"dataroot": "photos"}, "model": {"init_from": "w.pth"}})
    assert cfg.data.dataroot == ("photos",)
    r = resolve_paths(cfg, tmp_path)
    assert r.data.dataroot == (str(tmp_path / "photos"),)
    assert r.model.init_from == str(tmp_path / "w.pth")
    est = config_from_dict(
        {"model": {"arch": "compact", "init_estimator_from": "e.safetensors", "num_feat": 8}}
    )
    assert resolve_paths(est, tmp_path).model.init_estimator_from == str(tmp_path / "e.safetensors")
