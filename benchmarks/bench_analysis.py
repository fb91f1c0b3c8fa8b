"""Analysis cost against generator cost for the same frames, and scene-detector accuracy and speed.

    python benchmarks/bench_analysis.py                    # bundled default model, 320x240
    python benchmarks/bench_analysis.py --released --size 320x240

Analysis = scene detection on the 64-px proxy + crop selection + the estimator on crops of every
k-th frame (decoding is shared with restoration and not counted). Generator = ``restore`` on every
frame. Both are timed on this machine's device, and their FLOPs are counted by torch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmrealsr_video import load_model
from mmrealsr_video.analysis.scenes import SceneDetector, SceneDetectorConfig
from mmrealsr_video.analysis.streaming import AnalysisConfig, analyze_frames
from mmrealsr_video.io.source import decoded_frames, open_source
from mmrealsr_video.models.mmrrdbnet import MMRRDBNet
from tests.media import Scene, photos, write_clip


def flops(fn) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument(
        "--released", action="store_true", help="use the released x4 configuration (random weights)"
    )
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--frames-per-scene", type=int, default=24)
    ap.add_argument(
        "--generator-frames",
        type=int,
        default=0,
        help="frames to time the generator on (default: all, 1 if released)",
    )
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    model = load_model(MMRRDBNet().state_dict() if args.released else args.model)
    name = "released mmrrdbnet x4" if args.released else f"{args.model} ({model.arch})"

    ph = photos()
    scenes = [Scene(ph[i % 5], args.frames_per_scene, 0.5 + 0.3 * i, 4.0 * i) for i in range(5)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mkv"
        cuts = write_clip(path, scenes, size=(w, h))
        frames = list(decoded_frames(open_source(path)))
    n = len(frames)
    cfg = AnalysisConfig()

    # Scene detectors alone.
    print(f"clip: {n} frames of {w}x{h}, cuts at {cuts} (noise up to 16/255, pans)")
    print(f"{'detector':>9} {'found':>24} {'exact':>6} {'ms/frame':>9}")
    for method in ("content", "adaptive"):
        det = SceneDetector(SceneDetectorConfig(method=method), fps=24)
        t0 = time.perf_counter()
        found: list[int] = []
        for f in frames:
            found += det.process_frame(f.index, f.rgb)
        found += det.post_process()
        ms = (time.perf_counter() - t0) / n * 1000
        print(f"{method:>9} {found!s:>24} {found == cuts!s:>6} {ms:9.3f}")

    # Analysis vs generator.
    analyze_frames(frames[:8], model, config=cfg)  # warm-up
    t0 = time.perf_counter()
    track = analyze_frames(frames, model, config=cfg, fps=24)
    t_analysis = time.perf_counter() - t0
    sampled = sum(f.raw_noise is not None for f in track.frames)
    crops = torch.rand(cfg.crops, 3, cfg.crop_size, cfg.crop_size)
    f_est = flops(lambda: model.net.estimate(crops)) * sampled / n
    x = torch.from_numpy(np.stack([f.rgb for f in frames[:1]])).permute(0, 3, 1, 2).float() / 255
    c = torch.full((1, 2), 0.5)
    f_gen = flops(lambda: model.net.restore(x, c))
    g_frames = args.generator_frames or (1 if args.released else n)
    model.restore(x[:, :, :32, :32], c)  # warm-up
    t0 = time.perf_counter()
    for f in frames[:g_frames]:
        xf = torch.from_numpy(f.rgb).permute(2, 0, 1)[None].float() / 255
        model.restore(xf, c)
    t_gen = (time.perf_counter() - t0) / g_frames * n
    print(
        f"\nmodel: {name}; {sampled}/{n} frames sampled (every {cfg.sample_every} + scene starts), {cfg.crops} crops of {cfg.crop_size} px"
    )
    print(f"{'':>10} {'seconds':>9} {'GFLOP/frame':>12}")
    print(f"{'analysis':>10} {t_analysis:9.2f} {f_est / 1e9:12.3f}")
    print(
        f"{'generator':>10} {t_gen:9.2f} {f_gen / 1e9:12.3f}"
        + (f"  (timed on {g_frames} frame(s), scaled)" if g_frames < n else "")
    )
    print(f"analysis / generator: time {t_analysis / t_gen:.2%}, FLOPs {f_est / f_gen:.2%}")


if __name__ == "__main__":
    main()
