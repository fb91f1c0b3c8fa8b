"""Throughput of the MM-RealSR training-data synthesis on the CPU: JPEG only against real video codecs.

Prints GT patches per second (each with all its LR copies and the sharpened GT) for the degradation of a
training configuration with its video coding off (``video_prob = 0``: JPEG only) and as configured, in
1 and 2 worker processes (one torch / OpenCV thread each, as ``data.synthesis_workers`` runs them), and
with the clips of a batch coded by 2 threads in one process (``degradation.video_threads``); and the CPU
time per patch, which does not depend on what else the machine runs. Run from the repository root:

    python benchmarks/bench_synthesis.py [--config training/configs/footage_template.toml]
        [--batch 8] [--size 192] [--batches 6] [--workers 1 2] [--video-threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import torch
from mmrealsr_training.config import load_config
from mmrealsr_training.degradations import DegradationConfig, synthesize

_DEFAULT_CONFIG = "training/configs/footage_template.toml"


def _patches(batch: int, size: int, seed: int) -> torch.Tensor:
    """Textured test patches: crops of a bundled photograph if scikit-image is there, noise fields if not."""
    try:
        from skimage import data

        photo = torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1).float() / 255.0
    except ImportError:  # pragma: no cover - scikit-image is a test dependency
        photo = torch.rand(3, 512, 512, generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)
    _, h, w = photo.shape
    tops = torch.randint(0, h - size + 1, (batch,), generator=gen).tolist()
    lefts = torch.randint(0, w - size + 1, (batch,), generator=gen).tolist()
    return torch.stack([photo[:, t : t + size, s : s + size] for t, s in zip(tops, lefts, strict=True)])


def _init_worker() -> None:
    """One core per worker, as the training's synthesis workers run."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _run(
    cfg: DegradationConfig, batch: int, size: int, batches: int, axis_anchors: bool, seed: int
) -> tuple[float, float, float]:
    """Synthesises ``batches`` batches after one warm-up batch; returns the wall-clock start and end and
    the CPU seconds of the process (all its threads) in between."""
    gt = _patches(batch, size, seed)
    rng = torch.Generator().manual_seed(seed)
    synthesize(gt, cfg, rng, axis_anchors=axis_anchors)
    start, cpu = time.time(), time.process_time()
    for _ in range(batches):
        synthesize(gt, cfg, rng, axis_anchors=axis_anchors)
    return start, time.time(), time.process_time() - cpu


def _rate(
    cfg: DegradationConfig, workers: int, batch: int, size: int, batches: int, axis_anchors: bool
) -> tuple[float, float]:
    """GT patches per second of ``workers`` processes synthesising side by side, and CPU ms per patch."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        jobs = [pool.submit(_run, cfg, batch, size, batches, axis_anchors, seed) for seed in range(workers)]
        spans = [job.result() for job in jobs]
    wall = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    patches = workers * batches * batch
    return patches / wall, 1000 * sum(cpu for _, _, cpu in spans) / patches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=_DEFAULT_CONFIG, help="training configuration (TOML)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=0, help="GT patch side (default: the config's gt_size)")
    parser.add_argument("--batches", type=int, default=6, help="timed batches per worker (after 1 warm-up)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker processes to try")
    parser.add_argument(
        "--video-threads", type=int, default=2, help="also: 1 process coding with this many threads (0: skip)"
    )
    args = parser.parse_args()
    train = load_config(args.config)
    size = args.size or train.data.gt_size
    axis = train.loss.axis_anchors
    coded = train.degradation
    if coded.video_prob == 0:
        coded = dataclasses.replace(coded, video_prob=0.8)
    modes = {
        "jpeg only": dataclasses.replace(coded, video_prob=0.0, video_threads=1),
        f"codecs (video_prob {coded.video_prob:g})": dataclasses.replace(coded, video_threads=1),
    }
    copies = 7 if axis else 5
    print(
        f"synthesis of {args.config}: batch {args.batch} at {size} px, {copies} LR copies per patch, "
        f"{args.batches} timed batches per worker"
    )
    for workers in args.workers:
        for name, cfg in modes.items():
            rate, cpu = _rate(cfg, workers, args.batch, size, args.batches, axis)
            label = f"{workers} worker{'s' if workers > 1 else ''}"
            print(f"  {name:24s} {label:26s} {rate:6.1f} patches/s, {cpu:5.0f} CPU ms/patch")
    if args.video_threads > 1:
        cfg = dataclasses.replace(coded, video_threads=args.video_threads)
        rate, cpu = _rate(cfg, 1, args.batch, size, args.batches, axis)
        name, label = (
            f"codecs (video_prob {coded.video_prob:g})",
            f"1 worker, {args.video_threads} coding threads",
        )
        print(f"  {name:24s} {label:26s} {rate:6.1f} patches/s, {cpu:5.0f} CPU ms/patch")


if __name__ == "__main__":
    main()
