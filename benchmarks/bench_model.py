"""Network throughput: frames/s and achieved FLOP/s at a given size, per precision.

    python benchmarks/bench_model.py --model released --device cpu
    python benchmarks/bench_model.py --model default --device cuda --precisions fp32 fp16 bf16

``released`` builds the released MM-RealSR x4 configuration (random weights: speed does not depend
on the values). FLOPs are counted by torch's FLOP counter on the real forward (generator only;
``restore`` never runs the estimator) and reported next to the paper's 11.76 TFLOP per 640x480
frame, which includes the estimator.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mmrealsr_video import load_model
from mmrealsr_video.models.mmrrdbnet import MMRRDBNet

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def count_flops(model, h: int, w: int) -> tuple[float, float]:
    """(generator FLOPs, estimator FLOPs) for one h x w frame, counted on an 1/8-size frame and scaled."""
    sh, sw = max(8, h // 8), max(8, w // 8)
    x = torch.rand(1, 3, sh, sw, device=model.device, dtype=model.dtype)
    c = torch.full((1, 2), 0.5, device=model.device, dtype=model.dtype)
    ratio = (h * w) / (sh * sw)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model.net.restore(x, c)
    gen = fc.get_total_flops() * ratio
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model.net.estimate(x)
    return gen, fc.get_total_flops() * ratio


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", default="released", help="'released' (the x4 configuration), a bundled name, or a path"
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="640x480", help="WxH of the input frame")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--frames", type=int, default=0, help="timed frames (default: 1 on the CPU, 50 on CUDA)")
    ap.add_argument("--precisions", nargs="+", default=None, choices=sorted(PRECISIONS))
    ap.add_argument("--tile", type=int, default=0, help="tile side (0: whole frames)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    cuda = args.device.startswith("cuda")
    precisions = args.precisions or (["fp32", "fp16", "bf16"] if cuda else ["fp32"])
    frames = args.frames or (50 if cuda else 1)
    source = MMRRDBNet().state_dict() if args.model == "released" else args.model

    print(f"device: {args.device} ({device_name(args.device)}); torch {torch.__version__}")
    print(f"model: {args.model}; input {w}x{h}, batch {args.batch}, {frames} timed frames")
    print(
        f"{'precision':>9} {'frames/s':>9} {'s/frame':>9} {'TFLOP/frame':>12} {'TFLOP/s':>8} {'peak MiB':>9}"
    )
    for name in precisions:
        model = load_model(source, device=args.device, dtype=PRECISIONS[name])
        gen, est = count_flops(model, h, w)
        x = torch.rand(args.batch, 3, h, w, device=args.device, dtype=model.dtype)
        c = torch.full((args.batch, 2), 0.5)
        model.restore(x[:, :, : h // 4, : w // 4], c, tile=args.tile)  # warm-up (kernels, allocator)
        if cuda:
            model.restore(x, c, tile=args.tile)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        done = 0
        t0 = time.perf_counter()
        while done < frames:
            model.restore(x, c, tile=args.tile)
            done += args.batch
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        fps = done / dt
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
        print(f"{name:>9} {fps:9.3f} {1 / fps:9.3f} {gen / 1e12:12.3f} {gen * fps / 1e12:8.3f} {peak:9.0f}")
    print(
        f"estimator: {est / 1e12:.3f} TFLOP per {w}x{h} frame (generator + estimator {(gen + est) / 1e12:.2f} TFLOP)"
    )


if __name__ == "__main__":
    main()
