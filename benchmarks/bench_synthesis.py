"""Throughput of the MM-RealSR training-data synthesis on the CPU.

Prints samples per second for batches of GT patches (every sample with all five LR copies and the
sharpened GT), averaged over batches with different random plans. Run from the repository root:

    python benchmarks/bench_synthesis.py [--batch 8] [--size 192] [--batches 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from mmrealsr_training.degradations import DegradationConfig, synthesize


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=192, help="GT patch side (a multiple of 4)")
    parser.add_argument("--batches", type=int, default=20, help="timed batches (after 2 warm-up ones)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = DegradationConfig()
    gt = _patches(args.batch, args.size, seed=0)
    rng = torch.Generator().manual_seed(0)
    for _ in range(2):
        synthesize(gt, cfg, rng)
    times = []
    for _ in range(args.batches):
        start = time.perf_counter()
        synthesize(gt, cfg, rng)
        times.append(time.perf_counter() - start)
    total = sum(times)
    print(
        f"synthesis: batch {args.batch} at {args.size}px, {torch.get_num_threads()} torch threads: "
        f"{args.batch * len(times) / total:.1f} samples/s "
        f"(per batch: median {1000 * float(np.median(times)):.0f} ms, "
        f"min {1000 * min(times):.0f} ms, max {1000 * max(times):.0f} ms)"
    )


if __name__ == "__main__":
    main()
