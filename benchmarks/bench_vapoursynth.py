"""Throughput through ``vspipe`` (the VapourSynth filter) against the CLI, on the same clip.

    python benchmarks/bench_vapoursynth.py                   # default model, CPU, 160x120, 120 frames
    python benchmarks/bench_vapoursynth.py --size 320x240 --frames 240 --device 0

Four runs of the same clip (a BT.709 limited-range H.264 file of real photographs, 5 scenes):

- ``vspipe auto``: examples/vapoursynth/restore_auto.vpy (BestSource, analysis inside the filter)
  writing y4m to /dev/null;
- ``vspipe track``: examples/vapoursynth/two_pass.vpy with an existing track (no analysis);
- ``cli ffv1`` and ``cli x264``: ``mmrealsr-video restore`` to a lossless FFV1 file and to H.264
  at its defaults (the CLI always encodes; vspipe leaves that to whatever reads its output).

Figures are frames per second of wall-clock time for the whole command (start-up, model load and
BestSource's indexing included), and the command's own fps where it prints one.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.media import Scene, photos, write_clip  # noqa: E402 (after the path insert)

BIN = Path(sys.executable).parent


def make_clip(path: Path, frames: int, size: tuple[int, int]) -> None:
    ph = photos()
    per = frames // 5
    scenes = [Scene(ph[i], per if i < 4 else frames - 4 * per, 1.0, 4.0 + 3 * i) for i in range(5)]
    write_clip(path, scenes, size=size, codec="libx264", pix_fmt="yuv420p", colour=("ITU709", "MPEG"))


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return seconds, r.stdout + r.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--device", default="-1", help="CUDA index, or -1 for the CPU")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    cuda = int(args.device) >= 0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip = d / "clip.mp4"
        make_clip(clip, args.frames, (w, h))
        track = d / "clip.track.json"
        device = ["--device", f"cuda:{args.device}"] if cuda else ["--device", "cpu"]
        vspipe = [str(BIN / "vspipe"), "-c", "y4m", "-a", f"input={clip}", "-a", f"device={args.device}"]
        rows = []
        timed([str(BIN / "mmrealsr-video"), "analyze", str(clip), "-o", str(track), *device])
        s_auto, log_auto = timed([*vspipe, str(ROOT / "examples/vapoursynth/restore_auto.vpy"), "/dev/null"])
        rows.append(("vspipe auto (y4m)", s_auto, log_auto))
        s_track, log_track = timed(
            [*vspipe, "-a", f"track={track}", str(ROOT / "examples/vapoursynth/two_pass.vpy"), "/dev/null"]
        )
        rows.append(("vspipe track (y4m)", s_track, log_track))
        for codec in ("ffv1", "libx264"):
            out = d / f"cli_{codec}.mkv"
            s_cli, log_cli = timed(
                [
                    str(BIN / "mmrealsr-video"),
                    "restore",
                    str(clip),
                    str(out),
                    "--codec",
                    codec,
                    *device,
                    "--quiet",
                ]
            )
            rows.append((f"cli {codec}", s_cli, log_cli))
    card = (
        torch.cuda.get_device_name(int(args.device)) if cuda else platform.processor() or platform.machine()
    )
    print(f"# {args.frames} frames {w}x{h} -> x4, default model, {'CUDA ' + card if cuda else 'CPU ' + card}")
    print(f"# torch threads {torch.get_num_threads()}, {len(os.sched_getaffinity(0))} cores")
    print(f"{'run':22s} {'wall s':>8s} {'wall fps':>9s} {'own fps':>8s}")
    for name, seconds, log in rows:
        own = re.findall(r"\(([\d.]+) fps\)", log)
        fps = args.frames / seconds
        print(f"{name:22s} {seconds:8.1f} {fps:9.2f} {own[-1] if own else '-':>8s}")


if __name__ == "__main__":
    main()
