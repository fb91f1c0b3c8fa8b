"""End-to-end speed against the model alone, workers, memory and a job's own overhead.

    python benchmarks/bench_pipeline.py                        # CPU, the bundled model
    python benchmarks/bench_pipeline.py --device cuda --model default --rounds 3
    python benchmarks/bench_pipeline.py --only plan            # a 2-hour film's planning overhead
    python benchmarks/bench_pipeline.py --model released --device cuda --only speed   # the released x4 network

``--model released`` runs the released MM-RealSR x4 architecture with random weights (speed does not
depend on the values), written once to a temporary file.

Every measurement runs in a fresh process, and the kinds alternate round by round (model-only,
then the job with 1 worker, then with 2, then the next size...), so that a machine whose speed
drifts (other work, heat) spreads the drift over all of them; the table gives medians.

- **model-only**: ``ModulatedModel.restore_frames`` on the clip's frames already in memory, one
  call per frame (the restore's batch on a CPU), after a warm-up.
- **end-to-end**: ``RestoreJob`` on a clip of the same frames: planning (decode, scenes,
  estimates), chunks restored and coded with libx264 (``--workers``), the join. Its frames/s counts
  the whole job, start-up included.
- **RSS**: peak resident memory of a job at two lengths of the same content (flat = memory does
  not grow with the video).
- **plan**: a 172,800-frame track (2 hours at 24 fps, 64x48) planned into chunks, saved, its
  manifest written once per finished chunk as a job does, and read back and checked as a resume does.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.media import Scene, photos, write_clip


def make_clip(path: Path, frames: int, size: tuple[int, int]) -> None:
    ph = photos()
    per = max(1, frames // 5)
    scenes = [Scene(ph[i % 5], per if i < 4 else frames - 4 * per, 1.0, 4.0 + 3 * i) for i in range(5)]
    write_clip(path, scenes, size=size, codec="libx264", pix_fmt="yuv420p")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- what each fresh process measures ---------------------------------------------------------------


def child_model(clip: Path, model_name: str, device: str) -> dict[str, Any]:
    from mmrealsr_video import load_model
    from mmrealsr_video.io.source import decoded_frames, open_source

    model = load_model(model_name, device=device)
    frames = [torch.from_numpy(f.rgb).permute(2, 0, 1)[None].float() / 255 for f in decoded_frames(open_source(clip))]
    h, w = frames[0].shape[-2:]
    size = (h * model.scale, w * model.scale)
    c = torch.full((1, 2), 0.5)
    model.restore_frames(frames[0], c, size)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for x in frames:
        model.restore_frames(x, c, size)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"frames": len(frames), "seconds": seconds, "rss_mib": _rss_mib()}


def child_job(clip: Path, out: Path, model_name: str, device: str, workers: int) -> dict[str, Any]:
    from mmrealsr_video import JobSettings, RestoreJob, RestoreSettings

    settings = RestoreSettings(model=model_name, device=device, progress=False, force=True)
    t0 = time.perf_counter()
    summary = RestoreJob(clip, out, settings, JobSettings(workers=workers, restart=True)).run()
    seconds = time.perf_counter() - t0
    return {"frames": summary.frames, "seconds": seconds, "rss_mib": _rss_mib(), "chunks": summary.chunks}


def child_plan(folder: Path) -> dict[str, Any]:
    """The job machinery's own cost on a 2-hour film's track (no decoding, no model)."""
    import random

    from mmrealsr_video.jobs.chunks import plan_chunks
    from mmrealsr_video.jobs.manifest import ChunkRecord, Manifest, file_sha256
    from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients

    rng = random.Random(0)
    frames, index, scene = [], 0, 0
    while index < 172_800:
        for _ in range(min(rng.randint(12, 400), 172_800 - index)):
            v = rng.random()
            frames.append(FrameCoefficients(index, index / 24, scene, None, None, v, v, v, v, "auto"))
            index += 1
        scene += 1
    track = CoefficientTrack(tuple(frames), model="default", fps=24.0)
    before = _rss_mib()
    t0 = time.perf_counter()
    chunks = plan_chunks(track)
    t_plan = time.perf_counter() - t0
    t0 = time.perf_counter()
    track.save(folder / "track.json", force=True)
    t_track = time.perf_counter() - t0
    manifest = Manifest(
        input={"size": 0},
        settings={},
        model={"sha256": ""},
        track_sha256=file_sha256(folder / "track.json"),
        chunks=[ChunkRecord(c.number, c.first, c.end, c.start) for c in chunks],
    )
    t0 = time.perf_counter()
    for c in manifest.chunks:  # one save per finished chunk, as a job does
        c.state, c.file, c.size, c.sha256 = "done", f"chunk-{c.number:06d}.mkv", 1, "0" * 64
        manifest.save(folder)
    t_manifest = time.perf_counter() - t0
    t0 = time.perf_counter()
    Manifest.load(folder)
    CoefficientTrack.load(folder / "track.json")
    t_resume = time.perf_counter() - t0
    return {
        "frames": len(track),
        "scenes": scene,
        "chunks": len(chunks),
        "plan_s": t_plan,
        "track_save_s": t_track,
        "track_mib": (folder / "track.json").stat().st_size / 2**20,
        "manifest_saves_s": t_manifest,
        "manifest_kib": (folder / "manifest.json").stat().st_size / 1024,
        "resume_read_s": t_resume,
        "rss_mib": _rss_mib(),
        "rss_before_mib": before,
    }


# --- the driver ------------------------------------------------------------------------------------------


def run_child(model: str, device: str, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--model", model, "--device", device, "--child", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", nargs="+", default=["160x120", "320x240"])
    ap.add_argument("--frames", type=int, nargs="+", default=[48, 24], help="clip length per size")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rss", type=int, nargs=2, default=[200, 2000], help="two lengths (64x48 clips)")
    ap.add_argument("--only", choices=["speed", "rss", "plan"], action="append")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "model":
            out = child_model(Path(rest[0]), args.model, args.device)
        elif kind == "job":
            out = child_job(Path(rest[0]), Path(rest[1]), args.model, args.device, int(rest[2]))
        else:
            out = child_plan(Path(rest[0]))
        print(json.dumps(out))
        return
    only = set(args.only or ["speed", "rss", "plan"])
    print(f"{time.strftime('%Y-%m-%d')}, {_device_name(args.device)}, model {args.model}, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.model == "released":
            from safetensors.torch import save_file

            from mmrealsr_video.models.mmrrdbnet import MMRRDBNet

            weights = folder / "released_x4_random.safetensors"
            save_file({k: v.contiguous() for k, v in MMRRDBNet().state_dict().items()}, str(weights))
            args.model = str(weights)
        if "speed" in only:
            clips = {}
            for size, n in zip(args.sizes, args.frames, strict=True):
                w, h = (int(v) for v in size.split("x"))
                clips[size] = folder / f"clip_{size}.mkv"
                make_clip(clips[size], n, (w, h))
            runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for _ in range(args.rounds):
                for size, clip in clips.items():
                    runs.setdefault((size, "model"), []).append(run_child(args.model, args.device, "model", str(clip)))
                    for w in args.workers:
                        out = str(folder / f"out_{size}.mkv")
                        runs.setdefault((size, f"job {w}"), []).append(run_child(args.model, args.device, "job", str(clip), out, str(w)))
            print(f"\n{'input':>9} {'run':>10} {'frames/s (median)':>18} {'all rounds':>28} {'vs model-only':>14}")
            for size in clips:
                model_fps = statistics.median(r["frames"] / r["seconds"] for r in runs[(size, "model")])
                for key in ["model", *(f"job {w}" for w in args.workers)]:
                    fps = [r["frames"] / r["seconds"] for r in runs[(size, key)]]
                    med = statistics.median(fps)
                    label = "model-only" if key == "model" else f"workers {key.split()[1]}"
                    rounds = ", ".join(f"{v:.2f}" for v in fps)
                    print(f"{size:>9} {label:>10} {med:18.2f} {rounds:>28} {med / model_fps:14.2f}")
        if "rss" in only:
            print("\npeak RSS of a job (64x48 clips, 1 worker):")
            rss = []
            for n in args.rss:
                clip = folder / f"rss_{n}.mkv"
                make_clip(clip, n, (64, 48))
                r = run_child(args.model, args.device, "job", str(clip), str(folder / f"rss_{n}_x4.mkv"), "1")
                rss.append(r["rss_mib"])
                print(f"  {n:>6} frames: {r['rss_mib']:7.0f} MiB ({r['frames'] / r['seconds']:.1f} frames/s, {r['chunks']} chunks)")
            print(f"  ratio {args.rss[1]}/{args.rss[0]}: {rss[1] / rss[0]:.3f}")
        if "plan" in only:
            plan_dir = folder / "plan"
            plan_dir.mkdir()
            p = run_child(args.model, args.device, "plan", str(plan_dir))
            print(
                f"\nplanning a {p['frames']}-frame film ({p['scenes']} scenes -> {p['chunks']} chunks): "
                f"plan {p['plan_s'] * 1000:.0f} ms; track file {p['track_mib']:.1f} MiB saved in "
                f"{p['track_save_s']:.2f} s; manifest ({p['manifest_kib']:.0f} KiB) saved {p['chunks']} times, "
                f"{p['manifest_saves_s']:.2f} s in all; resume reads both in {p['resume_read_s']:.2f} s; "
                f"peak RSS {p['rss_mib']:.0f} MiB ({p['rss_before_mib']:.0f} MiB with the track in memory)"
            )


if __name__ == "__main__":
    main()
