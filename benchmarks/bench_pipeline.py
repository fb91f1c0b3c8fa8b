"""Pipeline throughput and memory: model-only fps vs end-to-end fps, and peak RSS at two lengths.

    python benchmarks/bench_pipeline.py                      # default model, CPU, 160x120 input
    python benchmarks/bench_pipeline.py --size 320x240 --device cuda

Model-only: ``model.restore`` on frames already in memory, one at a time (the pipeline's batch).
End-to-end: ``restore_video`` on a clip of the same frames (decode, analysis, restore, encode, mux;
libx264 at its defaults). Peak RSS is measured in a fresh process for each length, so that the
two figures compare the pipeline's memory at 200 and at 2000 frames of the same content.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmrealsr_video import RestoreSettings, load_model, restore_video
from mmrealsr_video.io.source import decoded_frames, open_source
from tests.media import Scene, photos, write_clip


def make_clip(path: Path, frames: int, size: tuple[int, int]) -> None:
    ph = photos()
    per = max(1, frames // 5)
    scenes = [Scene(ph[i % 5], per if i < 4 else frames - 4 * per, 1.0, 4.0 + 3 * i) for i in range(5)]
    write_clip(path, scenes, size=size, codec="libx264", pix_fmt="yuv420p")


def child(args: argparse.Namespace) -> None:
    """Runs one end-to-end restore and prints its figures as JSON (run in a fresh process)."""
    src, dst = Path(args.child[0]), Path(args.child[1])
    settings = RestoreSettings(model=args.model, device=args.device, progress=False, force=True)
    t0 = time.perf_counter()
    summary = restore_video(src, dst, settings)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": summary.frames, "seconds": seconds, "rss_mib": rss}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--lengths", type=int, nargs=2, default=[200, 2000])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        short, long_ = (Path(tmp) / f"clip{n}.mkv" for n in args.lengths)
        make_clip(short, args.lengths[0], (w, h))
        make_clip(long_, args.lengths[1], (w, h))

        model = load_model(args.model, device=args.device)
        frames = [torch.from_numpy(f.rgb).permute(2, 0, 1)[None].float() / 255 for f in decoded_frames(open_source(short))]
        c = torch.full((1, 2), 0.5)
        model.restore(frames[0], c)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for x in frames:
            model.restore(x, c)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        model_fps = len(frames) / (time.perf_counter() - t0)

        runs = []
        for clip in (short, long_):
            out = Path(tmp) / f"{clip.stem}_x4.mp4"
            cmd = [
                sys.executable,
                __file__,
                "--model",
                args.model,
                "--device",
                args.device,
                "--child",
                str(clip),
                str(out),
            ]
            r = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))

    device = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {device}; model {args.model}; input {w}x{h} -> {4 * w}x{4 * h}")
    print(f"model-only     {model_fps:8.2f} fps")
    # Both lengths: the short run carries more start-up (encoder, first lookahead) per frame.
    for r in runs:
        e2e_fps = r["frames"] / r["seconds"]
        print(
            f"end-to-end     {e2e_fps:8.2f} fps  ({r['frames']} frames, {r['seconds']:.1f} s); "
            f"ratio {e2e_fps / model_fps:.3f} (goal >= 0.9 on CPU, >= 0.95 on GPU)"
        )
    for n, r in zip(args.lengths, runs, strict=True):
        print(f"peak RSS at {n:>5} frames: {r['rss_mib']:7.0f} MiB ({r['frames'] / r['seconds']:.2f} fps)")
    print(
        f"RSS ratio {args.lengths[1]}/{args.lengths[0]}: {runs[1]['rss_mib'] / runs[0]['rss_mib']:.3f} (goal: within 10%)"
    )


if __name__ == "__main__":
    main()
