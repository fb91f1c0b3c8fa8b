"""The training loop on tiny networks and images made here: learning, checkpoints that load_model
reads, exact resume, the data folder, the GAN stage and the command line."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmrealsr_training.config import (
    ConfigError,
    DataConfig,
    GANConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    dump_config,
)
from mmrealsr_training.dataset import DatasetError, ImageFolder, PatchSampler, SamplePool
from mmrealsr_training.degradations import SHARED_COPY, DegradationConfig
from mmrealsr_training.losses import EstimatorOutputs, consistency_loss, estimator_losses
from mmrealsr_training.perceptual import VGG19_LAYERS, PerceptualLoss, VGG19Features
from mmrealsr_training.train import STATE_FILE, Trainer, copies_l1, read_state, train
from safetensors.torch import save_file

from mmrealsr_video.models.compact import CompactConfig, CompactNet
from mmrealsr_video.models.loader import load_model
from mmrealsr_video.models.mmrrdbnet import MMRRDBNet, MMRRDBNetConfig
from training.__main__ import main

TINY_COMPACT = CompactConfig(num_feat=16, num_conv=4, embed_dim=16, est_feats=(8, 16), est_hidden=16)
TINY_RRDB = MMRRDBNetConfig(
    num_feat=8,
    num_block=1,
    num_grow_ch=4,
    embed_dim=8,
    am_hidden=8,
    de_num_feats=(8, 8, 8, 16),
    de_num_blocks=(1, 1, 1, 1),
    de_hidden=8,
)
# Cheap synthesis for the tests (the released pipeline is exercised in test_degradations).
EASY = DegradationConfig(
    usm_radius=2,
    noise=False,
    jpeg=False,
    resize_prob=(0.0, 0.0, 1.0),
    resize_prob2=(0.0, 0.0, 1.0),
    final_sinc_prob=0.0,
)


def write_textures(folder: Path, n: int = 4, seed: int = 0, size: tuple[int, int] = (96, 128)) -> Path:
    """Smooth stripes and a disc: detail that a tiny network can learn to upscale in a few steps."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        img = np.zeros((h, w, 3), np.float32)
        for c in range(3):
            f = rng.uniform(0.1, 0.25, 2) * rng.choice([-1, 1], 2)
            img[..., c] = 0.5 + 0.3 * np.sin(xx * f[0] + yy * f[1] + rng.uniform(0, 6))
        cx, cy, r = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0.1, 0.3) * h
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 1, 3)
        cv2.imwrite(str(folder / f"tex{i}.png"), (np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    return folder


def tiny_config(root: Path, **sections: object) -> TrainConfig:
    base = TrainConfig(
        model=ModelConfig(arch="compact", net=TINY_COMPACT),
        data=DataConfig(dataroot=(str(root),), gt_size=64, batch_size=4, pool_size=0, decode_workers=1),
        degradation=EASY,
        optim=OptimConfig(total_iter=80, lr=3e-3),
        run=RunConfig(device="cpu", log_every=1, checkpoint_every=40),
    )
    return dataclasses.replace(base, **sections)  # type: ignore[arg-type]


def full_synthesis_config(
    root: Path, *, pool: int, steps: int, checkpoint_every: int, **sections: object
) -> TrainConfig:
    """A tiny run with the full synthesis (noise, JPEG, resizes) and the pool, so every random stream matters."""
    return tiny_config(
        root,
        data=DataConfig(dataroot=(str(root),), gt_size=32, batch_size=2, pool_size=pool, decode_workers=1),
        degradation=DegradationConfig(usm_radius=2),
        optim=OptimConfig(total_iter=steps, lr=1e-3),
        run=RunConfig(device="cpu", log_every=1, checkpoint_every=checkpoint_every),
        **sections,
    )


def metrics(run_dir: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> object:
    """Tiny networks run faster on one thread, and much faster when other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_textures(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def trained(images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path, Path]:
    run_dir = tmp_path_factory.mktemp("run")
    trainer = Trainer(tiny_config(images), run_dir, resume="none", progress=False)
    final = trainer.run()
    return trainer, run_dir, final


def test_l1_falls_and_run_folder_is_complete(trained: tuple[Trainer, Path, Path]) -> None:
    trainer, run_dir, final = trained
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == list(range(1, 81))
    for key in ("l_pix", "l_rank_blur", "l_rank_noise", "l_anchor_min", "l_anchor_max", "lr", "s_per_iter"):
        assert all(np.isfinite(r[key]) for r in rows), key
    first = np.mean([r["l_pix"] for r in rows[:15]])
    last = np.mean([r["l_pix"] for r in rows[-15:]])
    assert last < 0.95 * first, (first, last)
    assert final == run_dir / "model_final.safetensors" and final.is_file()
    assert (run_dir / "checkpoints" / "model_0000040.safetensors").is_file()
    assert (run_dir / "checkpoints" / "model_0000080.safetensors").is_file()
    assert (run_dir / "checkpoints" / STATE_FILE).is_file()
    assert "net stage, compact" in (run_dir / "train.log").read_text()
    assert 'arch = "compact"' in (run_dir / "config.toml").read_text()
    assert trainer.step == 80


def test_checkpoint_loads_with_load_model(trained: tuple[Trainer, Path, Path]) -> None:
    trainer, run_dir, final = trained
    model = load_model(final)
    assert model.arch == "compact" and model.config["num_feat"] == TINY_COMPACT.num_feat
    x = torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(3))
    c = torch.tensor([[0.2, 0.7], [0.9, 0.1]])
    with torch.no_grad():
        ema = trainer.net_ema
        torch.testing.assert_close(model.estimate(x), ema.estimate(x), rtol=0, atol=1e-6)  # type: ignore[operator]
        torch.testing.assert_close(model.restore(x, c, tile=0), ema.restore(x, c), rtol=0, atol=1e-6)  # type: ignore[operator]
    # The EMA differs from the raw weights, and the step-40 checkpoint from the final one.
    raw = dict(trainer.net.named_parameters())
    assert any(not torch.equal(p, raw[k]) for k, p in trainer.net_ema.named_parameters())
    mid = load_model(run_dir / "checkpoints" / "model_0000040.safetensors")
    assert not torch.equal(mid.restore(x, c, tile=0), model.restore(x, c, tile=0))
    # The resumable state reads as a model too (its params_ema).
    state = load_model(run_dir / "checkpoints" / STATE_FILE)
    torch.testing.assert_close(state.restore(x, c, tile=0), model.restore(x, c, tile=0), rtol=0, atol=0)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_continues_exactly(images: Path, tmp_path: Path, workers: int) -> None:
    # The knob loss is on so that its random stream is part of the resumed state too.
    loss = dataclasses.replace(LossConfig(), knob_weight=0.01)
    cfg = full_synthesis_config(images, pool=4, steps=6, checkpoint_every=3, loss=loss)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthesis_workers=workers))
    straight = Trainer(cfg, tmp_path / "a", progress=False)
    straight.run()

    first = Trainer(
        dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, total_iter=3)), tmp_path / "b"
    )
    first.run()
    resumed = Trainer(cfg, tmp_path / "b", resume="auto", progress=False)
    assert resumed.step == 3
    resumed.run()
    assert resumed.step == 6

    for a, b in ((straight.net, resumed.net), (straight.net_ema, resumed.net_ema)):
        for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(pa, pb, rtol=0, atol=1e-6, msg=k)
    ma, mb = metrics(tmp_path / "a"), metrics(tmp_path / "b")
    assert [r["step"] for r in mb] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(ma, mb, strict=True):
        assert ra["l_pix"] == pytest.approx(rb["l_pix"], abs=1e-6)
        assert ra["l_rank_noise"] == pytest.approx(rb["l_rank_noise"], abs=1e-6)
        assert ra["l_knob_noise"] == pytest.approx(rb["l_knob_noise"], abs=1e-6)

    # An explicit state path works too; "none" starts again from step 0.
    again = Trainer(cfg, tmp_path / "c", resume=tmp_path / "b" / "checkpoints" / STATE_FILE)
    assert again.step == 6
    assert Trainer(cfg, tmp_path / "b", resume="none").step == 0


def test_slim_state_carries_a_run_without_its_pool(
    images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`python -m mmrealsr_training slim-state`: the state without its sample pool resumes the same weights,
    EMA, optimiser and step; only the pool fills afresh (so the steps after it differ)."""
    cfg = full_synthesis_config(images, pool=4, steps=5, checkpoint_every=3)
    first = Trainer(
        dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, total_iter=3)), tmp_path / "a"
    )
    first.run()
    full = tmp_path / "a" / "checkpoints" / STATE_FILE
    slim = tmp_path / "carry" / "slim.pt"
    assert main(["slim-state", str(full), str(slim)]) == 0
    a, b = read_state(full), read_state(slim)
    assert a["pool"]["count"] == 4 and b["pool"] == {"count": 0, "store": {}}
    assert slim.stat().st_size < full.stat().st_size
    assert b["step"] == 3 and b["optimizer_g"]["state"]
    for k, v in a["params_ema"].items():
        assert torch.equal(v, b["params_ema"][k]), k

    with caplog.at_level(logging.INFO, logger="mmrealsr_training.train"):
        resumed = Trainer(cfg, tmp_path / "b", resume=slim, progress=False)
    assert "fills up afresh" in caplog.text
    assert resumed.step == 3 and len(resumed.pool) == 0
    for k, v in first.net_ema.state_dict().items():
        assert torch.equal(v, resumed.net_ema.state_dict()[k]), k
    resumed.run()
    assert resumed.step == 5 and len(resumed.pool) == 4

    # Bad input names the file; nothing is written.
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a state")
    caplog.clear()
    assert main(["slim-state", str(junk), str(tmp_path / "out.pt")]) == 2
    assert "junk.pt: cannot read the training state" in caplog.text
    assert not (tmp_path / "out.pt").exists()


def test_net_stage_l1_target_follows_l1_gt_usm(images: Path, tmp_path: Path) -> None:
    """loss.l1_gt_usm: false trains towards the plain GT. Same seeds: the first step's L1 differs
    when the GT is sharpened, and is the same when unsharp masking does nothing (weight 0)."""

    def first_l1(name: str, usm: bool, weight: float) -> float:
        cfg = full_synthesis_config(images, pool=0, steps=1, checkpoint_every=1)
        cfg = dataclasses.replace(
            cfg,
            loss=dataclasses.replace(cfg.loss, l1_gt_usm=usm),
            degradation=dataclasses.replace(cfg.degradation, usm_weight=weight),
        )
        Trainer(cfg, tmp_path / name, resume="none", progress=False).run()
        return metrics(tmp_path / name)[0]["l_pix"]

    assert first_l1("a", True, 0.5) != pytest.approx(first_l1("b", False, 0.5), abs=1e-7)
    assert first_l1("c", True, 0.0) == pytest.approx(first_l1("d", False, 0.0), abs=1e-7)


def test_synthesis_workers_make_the_same_batches_for_any_count(images: Path, tmp_path: Path) -> None:
    cfg = full_synthesis_config(images, pool=0, steps=4, checkpoint_every=100)

    def batches(workers: int, start: int = 0) -> list[dict[str, torch.Tensor]]:
        c = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthesis_workers=workers))
        trainer = Trainer(c, tmp_path / f"w{workers}", resume="none", progress=False)
        trainer.step = start
        return list(trainer.batches(4))

    one, two = batches(1), batches(2)
    assert len(one) == len(two) == 4
    for a, b in zip(one, two, strict=True):
        assert a.keys() == b.keys() and {"gt", "gt_usm", "base", "max_anchor"} <= a.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    # Each step draws its own patches and degradations, and step i's batch does not depend on
    # where the stream starts (what makes a resume exact).
    assert not torch.equal(one[0]["gt"], one[1]["gt"])
    assert not torch.equal(one[0]["base"], one[1]["base"])
    later = batches(1, start=2)
    assert all(torch.equal(later[0][k], one[2][k]) for k in one[2])
    # In-process (next_batch) gives step i's batch too; the released stream (0 workers) is another.
    t = Trainer(
        dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthesis_workers=2)),
        tmp_path / "n",
        resume="none",
    )
    assert torch.equal(t.next_batch()["base"], one[0]["base"])
    assert not torch.equal(batches(0)[0]["base"], one[0]["base"])
    with pytest.raises(ConfigError, match="synthesis_workers"):
        DataConfig(synthesis_workers=-1)


def test_time_budget_stops_with_a_final_model_and_resumes(images: Path, tmp_path: Path) -> None:
    cfg = full_synthesis_config(images, pool=0, steps=4, checkpoint_every=3)
    short = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, max_minutes=1e-9))
    trainer = Trainer(short, tmp_path / "r", resume="none", progress=False)
    final = trainer.run()
    assert trainer.step == 1 and final.is_file()
    assert (tmp_path / "r" / "checkpoints" / STATE_FILE).is_file()
    assert load_model(final).arch == "compact"
    resumed = Trainer(cfg, tmp_path / "r", resume="auto", progress=False)
    assert resumed.step == 1
    resumed.run()
    assert resumed.step == 4


def test_ctrl_c_stops_after_the_step_and_resumes_exactly(images: Path, tmp_path: Path) -> None:
    cfg = full_synthesis_config(images, pool=2, steps=4, checkpoint_every=100)
    straight = Trainer(cfg, tmp_path / "a")
    straight.run()
    stopped = Trainer(cfg, tmp_path / "b")
    step = stopped.train_step

    def step_then_ctrl_c(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = step(batch)
        if stopped.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    stopped.train_step = step_then_ctrl_c  # type: ignore[method-assign]
    # Whatever handled SIGINT before comes back (Python's default, or SIG_IGN when the test runs as a
    # background job of a shell without job control).
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        stopped.run()
    assert signal.getsignal(signal.SIGINT) is before
    resumed = Trainer(cfg, tmp_path / "b")
    assert resumed.step == 2
    resumed.run()
    for (k, pa), pb in zip(straight.net.state_dict().items(), resumed.net.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-6, msg=k)


def test_unreadable_images_are_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = write_textures(tmp_path / "photos", n=2)
    sub = folder / "nested"
    sub.mkdir()
    write_textures(sub, n=1, seed=5)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (sub / "garbage.jpg").write_bytes(
        np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes()
    )
    (folder / "empty.webp").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="training"):
        bank = ImageFolder([folder], gt_size=32, workers=2)
    assert len(bank) == 3
    assert sorted(p.name for p, _ in bank.skipped) == ["broken.png", "empty.webp", "garbage.jpg"]
    for name in ("broken.png", "empty.webp", "garbage.jpg"):
        assert name in caplog.text

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="no usable training images"):
        ImageFolder([bad], gt_size=32)
    with pytest.raises(DatasetError, match="missing"):
        ImageFolder([tmp_path / "missing"], gt_size=32)


def test_small_large_grey_and_16bit_images(tmp_path: Path) -> None:
    d = tmp_path / "odd"
    d.mkdir()
    cv2.imwrite(str(d / "tiny.png"), np.full((10, 12, 3), 200, np.uint8))  # upscaled
    cv2.imwrite(str(d / "narrow.png"), np.full((28, 80, 3), 100, np.uint8))  # padded
    cv2.imwrite(str(d / "grey16.tif"), np.full((40, 40), 65535, np.uint16))  # grey, 16 bit
    cv2.imwrite(str(d / "big.jpg"), np.zeros((80, 160, 3), np.uint8))  # downscaled
    bank = ImageFolder([d], gt_size=32, max_side=64)
    shapes = {p.name: bank.image(i).shape for i, p in enumerate(bank.paths)}
    assert all(min(s[:2]) >= 32 and s[2] == 3 for s in shapes.values()), shapes
    assert max(shapes["big.jpg"][:2]) == 64
    assert int(bank.image(bank.paths.index(d / "grey16.tif")).min()) == 255
    lazy = ImageFolder([d], gt_size=32, max_side=64, cache=False)
    assert all(np.array_equal(lazy.image(i), bank.image(i)) for i in range(len(bank)))


def test_sampler_is_seeded(images: Path) -> None:
    bank = ImageFolder([images], gt_size=32)
    s = PatchSampler(bank, gt_size=32, batch_size=3, hflip=True, rot=True)
    a = s.sample(torch.Generator().manual_seed(1))
    b = s.sample(torch.Generator().manual_seed(1))
    c = s.sample(torch.Generator().manual_seed(2))
    assert (
        a.shape == (3, 3, 32, 32) and a.dtype == torch.float32 and 0 <= float(a.min()) <= float(a.max()) <= 1
    )
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_pool_exchanges_earlier_samples() -> None:
    pool = SamplePool(4)
    gen = torch.Generator().manual_seed(0)
    seen: list[float] = []
    for i in range(6):
        batch = {
            "x": torch.tensor([[2.0 * i], [2.0 * i + 1]]),
            "y": torch.tensor([[-2.0 * i], [-2.0 * i - 1]]),
        }
        out = pool.exchange(batch, gen)
        if i < 2:
            assert torch.equal(out["x"], batch["x"])  # filling up: pass through
        else:
            assert set(out["x"].flatten().tolist()) <= set(seen)
            assert torch.equal(out["y"], -out["x"])  # the tensors of one sample stay together
        seen += batch["x"].flatten().tolist()
    restored = SamplePool(4)
    restored.load_state_dict(pool.state_dict(), torch.device("cpu"))
    nxt = {"x": torch.tensor([[100.0], [101.0]]), "y": torch.tensor([[-100.0], [-101.0]])}
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(pool.exchange(nxt, g1)["x"], restored.exchange(nxt, g2)["x"])


def _tiny_vgg19(path: Path) -> Path:
    """Random weights in torchvision's vgg19 layout (features.N + a classifier), but narrow."""
    sd: dict[str, torch.Tensor] = {}
    cin = 3
    for i, name in enumerate(VGG19_LAYERS):
        if name.startswith("conv"):
            cout = 4 if name.startswith("conv1") else 6
            sd[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3) * 0.3
            sd[f"features.{i}.bias"] = torch.zeros(cout)
            cin = cout
    sd["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(sd, path)
    return path


def test_vgg19_features_match_torchvision_indices(tmp_path: Path) -> None:
    convs = [i for i, n in enumerate(VGG19_LAYERS) if n.startswith("conv")]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert VGG19_LAYERS.index("conv5_4") == 34 and len(VGG19_LAYERS) == 37
    keys = set(VGG19Features([64] * 16).state_dict())
    assert keys == {f"{i}.{p}" for i in convs for p in ("weight", "bias")}
    loss = PerceptualLoss(_tiny_vgg19(tmp_path / "vgg.pth"), {"conv1_2": 0.1, "relu2_2": 1.0, "conv5_4": 1.0})
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    gt = torch.rand(2, 3, 32, 32)
    value = loss(x, gt)
    value.backward()
    assert value.item() > 0 and x.grad is not None
    assert loss(gt.repeat(2, 1, 1, 1), gt).item() == 0
    broken = {"features.0.weight": torch.zeros(4, 3, 3, 3), "features.0.bias": torch.zeros(4)}
    torch.save(broken, tmp_path / "half.pth")
    with pytest.raises(ValueError, match=r"half\.pth.*features\.2"):
        PerceptualLoss(tmp_path / "half.pth", {"conv5_4": 1.0})


def test_gan_stage_two_steps_freezes_the_estimator(images: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = CompactNet(TINY_COMPACT)
    start = tmp_path / "net_stage.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(start))
    cfg = tiny_config(
        images,
        stage="gan",
        model=ModelConfig(arch="compact", init_from=str(start)),
        data=DataConfig(dataroot=(str(images),), gt_size=32, batch_size=2, pool_size=0, decode_workers=1),
        optim=OptimConfig(total_iter=2, lr=1e-3),
        gan=GANConfig(vgg_weights=str(_tiny_vgg19(tmp_path / "vgg19.pth")), d_num_feat=8),
        run=RunConfig(device="cpu", log_every=1, checkpoint_every=1),
    )
    trainer = Trainer(cfg, tmp_path / "gan", progress=False)
    final = trainer.run()
    rows = metrics(tmp_path / "gan")
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake", "l_rank_blur"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert rows[0]["l_percep"] > 0
    before = net.state_dict()
    after = load_model(final).net.state_dict()
    for k, v in after.items():
        if k.startswith("de_net."):
            assert torch.equal(v, before[k]), k  # frozen, in the EMA too
    assert any(
        not torch.equal(v, before[k])
        for k, v in trainer.net.state_dict().items()
        if not k.startswith("de_net")
    )
    state = torch.load(tmp_path / "gan" / "checkpoints" / STATE_FILE, weights_only=True)
    assert "net_d" in state and "optimizer_d" in state and state["step"] == 2
    assert "conv1.weight_orig" in state["net_d"]  # spectral norm, Real-ESRGAN's key layout
    # The GAN stage trains the generator: freezing it there is refused.
    frozen = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, freeze_generator=True))
    with pytest.raises(ConfigError, match=r"optim\.freeze_generator: the GAN stage trains the generator"):
        Trainer(frozen, tmp_path / "gan_frozen", progress=False)


def test_mmrrdbnet_fine_tune_from_a_released_style_checkpoint(images: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    sd = MMRRDBNet(TINY_RRDB).state_dict()
    released = tmp_path / "released_x4.pth"
    torch.save({"params": sd, "params_ema": sd}, released)
    cfg = tiny_config(
        images,
        model=ModelConfig(arch="mmrrdbnet", init_from=str(released)),
        data=DataConfig(dataroot=(str(images),), gt_size=32, batch_size=2, pool_size=0, decode_workers=1),
        optim=OptimConfig(total_iter=2, lr=1e-4),
        run=RunConfig(device="cpu", log_every=1, checkpoint_every=2),
    )
    final = train(cfg, tmp_path / "ft", progress=False)
    model = load_model(final)
    assert model.arch == "mmrrdbnet" and model.config["num_block"] == 1
    assert metrics(tmp_path / "ft")[-1]["step"] == 2
    log = (tmp_path / "ft" / "train.log").read_text()
    assert "starting from" in log and "training images: 4 usable" in log  # set-up is logged too
    wrong = dataclasses.replace(cfg, model=ModelConfig(arch="compact", init_from=str(released)))
    with pytest.raises(ValueError, match="holds a mmrrdbnet"):
        Trainer(wrong, tmp_path / "wrong")
    missing = dataclasses.replace(
        cfg, model=ModelConfig(arch="mmrrdbnet", init_from=str(tmp_path / "no.pth"))
    )
    with pytest.raises(ValueError, match=r"model\.init_from: .*no\.pth"):
        Trainer(missing, tmp_path / "missing")


def test_command_line(images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_config(
        images,
        data=DataConfig(dataroot=(str(images),), gt_size=32, batch_size=2, pool_size=0, decode_workers=1),
        optim=OptimConfig(total_iter=2),
    )
    path = tmp_path / "tiny.toml"
    path.write_text(dump_config(cfg))
    run_dir = tmp_path / "cli"
    assert main(["train", str(path), "--run-dir", str(run_dir), "--no-progress", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "model_final.safetensors")
    assert (run_dir / "config.toml").is_file()
    # Running it again resumes from the finished state and trains nothing more.
    assert main(["train", str(path), "--run-dir", str(run_dir), "--no-progress", "-q"]) == 0
    assert [r["step"] for r in metrics(run_dir)] == [1, 2]
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nlrr = 1\n")
    assert main(["train", str(bad), "--run-dir", str(tmp_path / "x"), "-q"]) == 2
    assert main(["config", str(path)]) == 0
    assert "[degradation]" in capsys.readouterr().out


def test_axis_anchors_train_with_pinned_knobs(images: Path, tmp_path: Path) -> None:
    """loss.axis_anchors adds the single-axis anchors: 7 copies per patch, each knob pinned to 1 on its own."""
    cfg = full_synthesis_config(
        images, pool=4, steps=3, checkpoint_every=3, loss=dataclasses.replace(LossConfig(), axis_anchors=True)
    )
    trainer = Trainer(cfg, tmp_path / "axis", progress=False)
    batch = trainer.next_batch()
    assert {"blur_anchor", "noise_anchor"} <= set(batch)
    seen: list[torch.Tensor] = []
    original = trainer.modnet.restore

    def spy(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        seen.append(coeffs.detach())
        return original(x, coeffs)

    trainer.modnet.restore = spy  # type: ignore[method-assign]
    trainer.train_step(batch)
    coeffs = seen[0]
    assert coeffs.shape == (7 * 2, 2)
    assert torch.all(coeffs[10:12, 0] == 1) and torch.all(coeffs[12:14, 1] == 1)
    assert torch.all(coeffs[6:8] == 0) and torch.all(coeffs[8:10] == 1)


def test_knob_loss_trains_and_restores_pairs_of_nearby_knob_values(images: Path, tmp_path: Path) -> None:
    """loss.knob_weight adds one restore of the base copies at t and t + knob_step: the first half
    of the batch varies the noise knob, the rest the blur knob, the other knob at its estimate."""
    loss = dataclasses.replace(LossConfig(), knob_weight=0.01, knob_step=0.25)
    cfg = full_synthesis_config(images, pool=0, steps=2, checkpoint_every=2, loss=loss)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=4))
    trainer = Trainer(cfg, tmp_path / "knob", progress=False)
    batch = trainer.next_batch()
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = trainer.modnet.restore

    def spy(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        seen.append((x.detach(), coeffs.detach()))
        return original(x, coeffs)

    trainer.modnet.restore = spy  # type: ignore[method-assign]
    terms = trainer.train_step(batch)
    assert len(seen) == 2
    x, c = seen[1]
    torch.testing.assert_close(x, torch.cat([batch["base"], batch["base"]]))
    lo, hi = c[:4], c[4:]
    torch.testing.assert_close(hi[:2, 1] - lo[:2, 1], torch.full((2,), 0.25, dtype=c.dtype))
    torch.testing.assert_close(hi[2:, 0] - lo[2:, 0], torch.full((2,), 0.25, dtype=c.dtype))
    torch.testing.assert_close(lo[:2, 0], hi[:2, 0])  # blur knob fixed in the noise pairs
    torch.testing.assert_close(lo[2:, 1], hi[2:, 1])
    assert torch.all((lo >= 0) & (hi <= 1))
    assert {"l_knob_noise", "l_knob_blur"} <= set(terms)
    assert float(terms["l_total"]) >= float(terms["l_pix"] + terms["l_knob_noise"] + terms["l_knob_blur"])
    trainer.modnet.restore = original  # type: ignore[method-assign]
    trainer.run()
    assert all("l_knob_noise" in r for r in metrics(tmp_path / "knob"))


def test_knob_loss_off_by_default_restores_once(images: Path, tmp_path: Path) -> None:
    cfg = full_synthesis_config(images, pool=0, steps=1, checkpoint_every=1)
    trainer = Trainer(cfg, tmp_path / "plain", progress=False)
    calls = 0
    original = trainer.modnet.restore

    def spy(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return original(x, coeffs)

    trainer.modnet.restore = spy  # type: ignore[method-assign]
    terms = trainer.train_step(trainer.next_batch())
    assert calls == 1 and "l_knob_noise" not in terms


def _run_and_see_what_moved(trainer: Trainer) -> tuple[bool, bool, Path]:
    """Runs ``trainer``; returns whether any estimator weight moved, whether any generator weight
    moved, and the final model's path."""
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    final = trainer.run()
    moved = {k for k, v in trainer.net.state_dict().items() if not torch.equal(before[k], v)}
    est = {k for k in before if k.startswith("de_net.")}
    assert est and len(est) < len(before)
    return bool(moved & est), bool(moved - est), final


def test_frozen_estimator_keeps_its_weights_and_logs_its_terms(images: Path, tmp_path: Path) -> None:
    """optim.freeze_estimator trains the generator only; the estimator's terms are logged, not trained."""
    cfg = full_synthesis_config(images, pool=0, steps=3, checkpoint_every=3)
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, freeze_estimator=True))
    estimator_moved, generator_moved, _ = _run_and_see_what_moved(
        Trainer(cfg, tmp_path / "frozen", progress=False)
    )
    assert not estimator_moved and generator_moved
    rec = metrics(tmp_path / "frozen")[-1]
    assert rec["l_rank_noise"] >= 0 and rec["l_total"] == pytest.approx(rec["l_pix"], rel=1e-5)


def test_freeze_generator_trains_the_estimator_alone(
    images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """optim.freeze_generator: the generator's weights stay; the estimator learns, through the L1 too."""
    cfg = full_synthesis_config(images, pool=0, steps=3, checkpoint_every=3)
    cfg = dataclasses.replace(
        cfg,
        optim=dataclasses.replace(cfg.optim, freeze_generator=True),
        loss=dataclasses.replace(cfg.loss, knob_weight=0.1),
    )
    with caplog.at_level(logging.WARNING, logger="mmrealsr_training.train"):
        trainer = Trainer(cfg, tmp_path / "est", progress=False)
    assert "frozen generator without model.init_from" in caplog.text
    assert "knob_weight is ignored" in caplog.text
    estimator_moved, generator_moved, final = _run_and_see_what_moved(trainer)
    assert estimator_moved and not generator_moved
    saved, raw = load_model(final).net.state_dict(), trainer.net.state_dict()
    gen_keys = [k for k in raw if not k.startswith("de_net.")]
    assert all(torch.equal(saved[k], raw[k]) for k in gen_keys)  # the EMA of a frozen generator too
    rec = metrics(tmp_path / "est")[-1]
    assert rec["l_total"] > rec["l_pix"] > 0  # the L1 and the estimator's own terms are trained
    assert "l_knob_noise" not in rec

    # With the ranking terms off, the L1 alone still moves the estimator (it conditions the copies).
    loss = dataclasses.replace(cfg.loss, rank_blur_weight=0.0, rank_noise_weight=0.0, anchor_weight=0.0)
    only_l1 = Trainer(dataclasses.replace(cfg, loss=loss), tmp_path / "l1", progress=False)
    with torch.no_grad():  # a fresh generator's modulation starts at zero: give the knobs an effect
        only_l1.net.modulation.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(3))
    assert _run_and_see_what_moved(only_l1)[0]

    with pytest.raises(ValueError, match=r"optim\.freeze_generator: cannot be set with freeze_estimator"):
        dataclasses.replace(cfg.optim, freeze_estimator=True)


def test_consistency_term_trains_the_estimator_on_shared_degradations(images: Path, tmp_path: Path) -> None:
    """loss.consistency_weight: the batch (through the pool, workers or not) carries base_shared, estimated
    but not restored; the term is the consistency loss of the two readings and moves the estimator."""
    off = full_synthesis_config(images, pool=4, steps=2, checkpoint_every=2)
    assert SHARED_COPY not in Trainer(off, tmp_path / "off", progress=False).next_batch()
    loss = dataclasses.replace(
        LossConfig(), consistency_weight=0.5, l1_weight=0.0, rank_blur_weight=0.0, rank_noise_weight=0.0,
        anchor_weight=0.0,
    )  # fmt: skip
    cfg = dataclasses.replace(
        off, loss=loss, optim=dataclasses.replace(off.optim, freeze_generator=True, total_iter=3)
    )
    trainer = Trainer(cfg, tmp_path / "on", progress=False)
    batch = trainer.next_batch()
    assert batch[SHARED_COPY].shape == batch["base"].shape
    restored: list[int] = []
    original = trainer.modnet.restore

    def spy(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        restored.append(x.shape[0])
        return original(x, coeffs)

    trainer.modnet.restore = spy  # type: ignore[method-assign]
    with torch.no_grad():
        est = trainer.modnet.estimate(torch.cat([batch["base"], batch[SHARED_COPY]]))
        expected = consistency_loss(*est.split(2))
    terms = trainer.train_step(batch)
    assert restored == [3 * 2]  # the estimated copies only (frozen generator), not the shared copy
    assert float(terms["l_consistency"]) == pytest.approx(0.5 * float(expected), rel=1e-5)
    assert float(terms["est_gap_noise"]) >= 0
    trainer.modnet.restore = original  # type: ignore[method-assign]
    estimator_moved, generator_moved, _ = _run_and_see_what_moved(trainer)
    assert estimator_moved and not generator_moved  # the consistency term alone trained it
    rec = metrics(tmp_path / "on")[-1]
    assert rec["l_total"] == pytest.approx(rec["l_consistency"], abs=1e-7)
    # The synthesis workers carry the shared copy too, the same as in process.
    workers = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthesis_workers=1, pool_size=0))
    t = Trainer(workers, tmp_path / "w", resume="none", progress=False)
    from_workers = next(iter(t.batches(1)))
    assert torch.equal(from_workers[SHARED_COPY], t.next_batch()[SHARED_COPY])


def test_init_estimator_from_copies_the_estimator_into_a_new_wider_network(
    images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new generator of another width trains against an estimator taken from a checkpoint."""
    torch.manual_seed(1)
    source = CompactNet(TINY_COMPACT)
    src_path = tmp_path / "source.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(src_path))
    wider = dataclasses.replace(TINY_COMPACT, num_feat=24, num_conv=3)
    base = full_synthesis_config(images, pool=0, steps=2, checkpoint_every=2)
    cfg = dataclasses.replace(
        base,
        model=ModelConfig(arch="compact", net=wider, init_estimator_from=str(src_path)),
        optim=dataclasses.replace(base.optim, freeze_estimator=True),
    )
    with caplog.at_level(logging.INFO, logger="mmrealsr_training.train"):
        trainer = Trainer(cfg, tmp_path / "wide", progress=False)
    assert f"estimator from {src_path}" in caplog.text
    assert "random initial weights" not in caplog.text
    final = trainer.run()
    model = load_model(final)
    assert model.config["num_feat"] == 24 and model.config["num_conv"] == 3
    got, want = model.net.state_dict(), source.state_dict()
    est_keys = [k for k in want if k.startswith("de_net.")]
    assert est_keys and all(torch.equal(got[k], want[k]) for k in est_keys)  # copied, then frozen

    # The source's estimator shape must fit the new network's, and the file must exist.
    other = dataclasses.replace(TINY_COMPACT, est_feats=(8, 8))
    bad = dataclasses.replace(
        cfg, model=ModelConfig(arch="compact", net=other, init_estimator_from=str(src_path))
    )
    with pytest.raises(ValueError, match=r"init_estimator_from: the estimator in .*source\.safetensors"):
        Trainer(bad, tmp_path / "bad")
    gone = dataclasses.replace(
        cfg, model=ModelConfig(arch="compact", net=wider, init_estimator_from=str(tmp_path / "no.pth"))
    )
    with pytest.raises(ValueError, match=r"model\.init_estimator_from: .*no\.pth"):
        Trainer(gone, tmp_path / "gone")


def test_copies_l1_weights_the_anchors_against_the_estimated_copies() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 8, 8, generator=g)
    out = torch.rand(7 * 2, 3, 8, 8, generator=g)
    plain = (out.view(7, 2, 3, 8, 8) - target).abs().mean()
    torch.testing.assert_close(copies_l1(out, target), plain)  # released: the plain mean
    torch.testing.assert_close(copies_l1(out, target, 1.0), plain)
    natural = (out[:6].view(3, 2, 3, 8, 8) - target).abs().mean()
    torch.testing.assert_close(copies_l1(out, target, 0.0), natural)
    moved = out.clone()
    moved[6:] += 0.5  # worse anchors only
    assert copies_l1(moved, target, 0.0) == copies_l1(out, target, 0.0)
    rise_quarter = copies_l1(moved, target, 0.25) - copies_l1(out, target, 0.25)
    rise_full = copies_l1(moved, target, 1.0) - copies_l1(out, target, 1.0)
    assert 0 < rise_quarter < rise_full
    # An anchor's pixel pulls a quarter as hard as an estimated copy's pixel at weight 0.25.
    leaf = out.clone().requires_grad_(True)
    copies_l1(leaf, target, 0.25).backward()
    assert leaf.grad is not None
    ratio = leaf.grad[6:].abs().mean() / leaf.grad[:6].abs().mean()
    assert abs(float(ratio) - 0.25) < 1e-5


@pytest.mark.parametrize("weight", [1.0, 0.25])
def test_copies_l1_left_out_anchors_keep_the_gradients(weight: float) -> None:
    """Pinned anchors left out (a frozen generator's) still count in the normalisation: the estimated
    copies' gradients are those of the L1 over every copy."""
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 8, 8, generator=g)
    out = torch.rand(7 * 2, 3, 8, 8, generator=g)  # base, more blur, more noise, min, max, two axis anchors
    kept = torch.cat([out[:6], out[10:]])
    full_leaf, kept_leaf = out.clone().requires_grad_(True), kept.clone().requires_grad_(True)
    full = copies_l1(full_leaf, target, weight)
    part = copies_l1(kept_leaf, target, weight, left_out=2)
    full.backward()
    part.backward()
    assert full_leaf.grad is not None and kept_leaf.grad is not None
    torch.testing.assert_close(kept_leaf.grad, torch.cat([full_leaf.grad[:6], full_leaf.grad[10:]]))
    # The value lacks exactly the left-out anchors' share.
    share = weight * (out[6:10].view(2, 2, 3, 8, 8) - target).abs().mean() * 2 / (3 + 4 * weight)
    torch.testing.assert_close(part + share, full.detach())
    # Without axis anchors: only the three estimated copies are restored.
    three = copies_l1(out[:6], target, weight, left_out=2)
    torch.testing.assert_close(
        three, 3 * (out[:6].view(3, 2, 3, 8, 8) - target).abs().mean() / (3 + 2 * weight)
    )


@pytest.mark.parametrize("axis", [False, True])
def test_freeze_generator_restores_only_the_estimated_copies_with_the_same_gradients(
    images: Path, tmp_path: Path, axis: bool
) -> None:
    """optim.freeze_generator leaves the pinned min and max anchors unrestored; the estimator's gradients
    are those of restoring every copy."""
    cfg = full_synthesis_config(images, pool=0, steps=1, checkpoint_every=1)
    cfg = dataclasses.replace(
        cfg,
        optim=dataclasses.replace(cfg.optim, freeze_generator=True),
        loss=dataclasses.replace(cfg.loss, axis_anchors=axis, anchor_l1_weight=0.25),
    )
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    with torch.no_grad():  # give the knobs an effect
        trainer.net.modulation.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(3))
    batch = trainer.next_batch()
    net = trainer.modnet
    # The reference: every copy restored, the released-shape objective.
    lq = torch.cat([batch[k] for k in trainer._lr_copies])
    est = net.estimate(lq).float()
    b = batch["base"].shape[0]
    one = lq.new_ones(b, 2)
    coeffs = [est[: 3 * b], one * 0, one]
    if axis:
        coeffs += [
            torch.stack([one[:, 0], est[5 * b : 6 * b, 1]], 1),
            torch.stack([est[6 * b :, 0], one[:, 1]], 1),
        ]
    full = copies_l1(net.restore(lq, torch.cat(coeffs)), batch["gt_usm"], 0.25)
    total = full + sum(estimator_losses(EstimatorOutputs(est[: 5 * b], b), cfg.loss).values())
    trainer.opt_g.zero_grad(set_to_none=True)
    total.backward()
    want = {n: p.grad.clone() for n, p in trainer.net.named_parameters() if p.grad is not None}
    assert want and all(n.startswith("de_net.") for n in want)

    restored: list[int] = []
    original = net.restore

    def spy(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        restored.append(x.shape[0])
        return original(x, c)

    trainer.modnet.restore = spy  # type: ignore[method-assign]
    trainer.opt_g.step = lambda *a, **k: None  # type: ignore[method-assign]  # keep the gradients
    terms = trainer.train_step(batch)
    assert restored == [(5 if axis else 3) * b]
    got = {n: p.grad for n, p in trainer.net.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys()
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-4, atol=1e-7)
    assert float(terms["l_pix"]) < float(full.detach())
