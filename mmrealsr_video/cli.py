"""The ``mmrealsr-video`` command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from mmrealsr_video import __version__
from mmrealsr_video.errors import InputError, MMRealSRVideoError, OutputError, SettingsError
from mmrealsr_video.models.loader import PRECISIONS, parse_device, precision_dtype
from mmrealsr_video.plan.coefficients import COEFFICIENT_NAMES, parse_coefficient

__all__ = ["main"]

log = logging.getLogger("mmrealsr_video")

#: Exit statuses of an interrupted command, as shells report a process ended by the signal.
_EXIT_INTERRUPTED = 128 + signal.SIGINT
_EXIT_TERMINATED = 128 + signal.SIGTERM


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C's ``KeyboardInterrupt`` is, so that every
    writer cleans up the same way (the atomic writers remove their temporary files)."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turns SIGTERM into :class:`_Terminated` while the command runs; the previous handler is put
    back after. A second SIGTERM during the cleanup is ignored, so that the cleanup finishes
    (``kill -9`` still ends the process; its temporary files are removed by the next write)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            return
        raised = True
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return str(parse_device(name))
    except InputError:
        raise SettingsError("device", f"must be auto, cpu, cuda or cuda:N, not {name[:40]!r}") from None


def _cmd_info(args: argparse.Namespace) -> int:
    import av
    import numpy

    if args.input is not None:
        return _info_input(args.input)

    from mmrealsr_video.models.loader import BUNDLED_MODELS, bundled_model_path

    try:
        import vapoursynth

        vs_version = str(vapoursynth.__version__)
    except ImportError:
        vs_version = "not installed (pip install 'mmrealsr-video[vapoursynth]')"
    print(f"mmrealsr-video {__version__}")
    print(f"python       {sys.version.split()[0]}")
    print(f"torch        {torch.__version__} (CUDA build {torch.version.cuda or 'none'})")
    print(f"av           {av.__version__} (FFmpeg {getattr(av, 'ffmpeg_version_info', '?')})")
    print(f"vapoursynth  {vs_version}")
    print(f"numpy        {numpy.__version__}")
    print("devices:")
    print(f"  cpu        {torch.get_num_threads()} threads")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            print(f"  cuda:{i}     {p.name}, {p.total_memory / 2**30:.1f} GiB")
    else:
        print("  cuda       not available")
    print("bundled models:")
    for name, fname in BUNDLED_MODELS.items():
        path = bundled_model_path(name)
        if path is None:
            print(f"  {name:10} missing ({fname} is not in this install)")
            continue
        from mmrealsr_video.models.loader import load_model

        m = load_model(name)
        params = sum(p.numel() for p in m.net.parameters())
        print(f"  {name:10} {m.arch} x{m.scale}, {params / 1e6:.2f} M parameters ({path})")
    return 0


def _info_input(source: str) -> int:
    """What ``restore`` would read: an image sequence's frames, size and bit depth, or a video's."""
    from mmrealsr_video.io.images import read_image
    from mmrealsr_video.io.sequences import find_sequence, is_sequence

    if is_sequence(source):
        seq = find_sequence(source)
        rgb, alpha = read_image(seq.files[0])
        bits = 16 if rgb.dtype.itemsize == 2 else 8
        types = sorted({f.suffix.lower() for f in seq.files})
        print(f"{source}: image sequence, {len(seq)} frames ({', '.join(types)})")
        print(f"  size       {rgb.shape[1]}x{rgb.shape[0]} (of the first frame, {seq.files[0].name})")
        print(f"  bit depth  {bits}-bit RGB" + (" + alpha" if alpha is not None else ""))
        print(f"  frames     {seq.files[0].name} ... {seq.files[-1].name}")
        return 0
    import av.error

    from mmrealsr_video.io.video import Orientation, open_video, probe

    info = probe(source)
    container, stream = open_video(source)
    try:
        first = next(iter(container.decode(stream)), None)
    except av.error.FFmpegError:
        first = None
    finally:
        container.close()
    orientation = Orientation.of(first) if first is not None else Orientation()
    w, h = orientation.size(info.width, info.height)
    turned = f" as shown (coded {info.width}x{info.height}, turned {orientation})"
    print(f"{source}: video, {info.codec} {info.pix_fmt}")
    print(f"  size       {w}x{h}" + ("" if orientation.identity else turned))
    if first is not None:
        print(f"  bit depth  {max(c.bits for c in first.format.components)}-bit")
    rate = f"{float(info.frame_rate):.3f} fps" if info.frame_rate else "unknown rate"
    length = f"{info.duration:.2f} s" if info.duration is not None else "unknown duration"
    print(f"  frames     {info.frames or 'unknown'}, {rate}, {length}")
    return 0


def _restore_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The settings every restoring command shares (see :func:`_add_restore_arguments`)."""
    device = _device(args.device)
    return {
        "model": args.model,
        "device": device,
        "dtype": precision_dtype(args.precision, device),
        "tile": args.tile,
        "tile_overlap": args.tile_overlap,
        "blur": parse_coefficient(args.blur, field="--blur"),
        "noise": parse_coefficient(args.noise, field="--noise"),
        "outscale": args.outscale,
        "force": args.force,
    }


def _cmd_image(args: argparse.Namespace) -> int:
    from mmrealsr_video.engine import restore_image
    from mmrealsr_video.settings import ImageSettings

    summary = restore_image(args.input, args.output, ImageSettings(**_restore_fields(args)))
    r = summary.record
    desc = ", ".join(
        f"{n} {c:.3f} (auto {a:.3f})"
        for n, c, a in zip(COEFFICIENT_NAMES, (r.blur, r.noise), (r.auto_blur, r.auto_noise), strict=True)
    )
    (w, h), (ow, oh) = summary.input_size, summary.output_size
    print(
        f"{args.input} -> {summary.output}: {w}x{h} -> {ow}x{oh}, {desc}, model {summary.model}, "
        f"{summary.seconds:.2f} s"
    )
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from mmrealsr_video.analysis import AnalysisConfig, SceneDetectorConfig
    from mmrealsr_video.engine import analyze
    from mmrealsr_video.io.files import atomic_output, check_output_file
    from mmrealsr_video.plan import PlanConfig, plot_track
    from mmrealsr_video.plan.track import check_track_output

    out = check_track_output(args.output, force=args.force)
    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise OutputError(f"{plot}: the plot is written as .png")
        if plot.resolve() == out.resolve():
            raise OutputError(f"{plot}: the plot and the track are the same file")
        check_output_file(plot, force=args.force, what="plot")
    keyframes = None
    if args.keyframes is not None:
        from mmrealsr_video.plan import parse_keyframes

        keyframes = parse_keyframes(args.keyframes)  # validate before the long pass
    cuts = _read_cuts(args.cuts) if args.cuts else None
    config = AnalysisConfig(
        sample_every=args.sample_every,
        detector=SceneDetectorConfig(method=args.detector, min_scene_len=args.min_scene_len),
        plan=PlanConfig(mode=args.mode, drift_window=args.drift_window),
    )
    device = _device(args.device)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as outputs:
        # Claimed before the pass (a folder that cannot be written fails now), renamed in after it.
        track_tmp = outputs.enter_context(atomic_output(out, force=args.force))
        plot_tmp = outputs.enter_context(atomic_output(plot, force=args.force)) if plot is not None else None
        track = analyze(
            args.input,
            args.model,
            config=config,
            cuts=cuts,
            keyframes=keyframes,
            device=device,
            progress=not args.quiet,
            fps=args.fps,
        )
        track.save(track_tmp, force=True)
        if plot_tmp is not None:
            plot_track(track, plot_tmp, keyframes)
    c = track.coefficients()
    print(
        f"{args.input}: {len(track)} frames, {len(track.scenes())} scenes in {time.perf_counter() - t0:.1f} s; "
        f"blur {c[:, 0].min():.3f}-{c[:, 0].max():.3f}, noise {c[:, 1].min():.3f}-{c[:, 1].max():.3f}; "
        f"track: {out}" + (f", plot: {plot}" if plot is not None else "")
    )
    return 0


def _read_cuts(text: str) -> list[int]:
    """Cuts as a comma-separated list of frames, or a file holding them (one per line or comma-separated)."""
    from mmrealsr_video.io.files import is_file, read_text

    p = Path(text)
    source = str(p) if is_file(p) else "--cuts"
    raw = read_text(p, "cuts") if is_file(p) else text
    cuts = []
    for i, item in enumerate(raw.replace("\n", ",").split(",")):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        shown = item if len(item) <= 30 else item[:20] + "..."
        if not re.fullmatch(r"[0-9]+", item):
            raise InputError(f"{source}: entry {i + 1} ({shown!r}) is not a frame number")
        if len(item) > 18:  # more than any frame number (and past Python's 4300-digit int limit)
            raise InputError(
                f"{source}: entry {i + 1} ({shown!r}): a {len(item)}-digit frame number is too large"
            )
        cuts.append(int(item))
    return cuts


def _parse_frames(text: str | None) -> tuple[int, int | None] | None:
    if text is None:
        return None
    a, sep, b = text.partition(":")
    try:
        if len(a) > 18 or len(b) > 18:
            raise ValueError("more digits than any frame number")
        first = int(a) if a.strip() else 0
        end = int(b) if b.strip() else None
    except ValueError:
        raise InputError(
            f"--frames {text!r}: expected A:B (frame numbers, end exclusive), e.g. 100:250"
        ) from None
    if not sep:
        raise InputError(f"--frames {text!r}: expected A:B (frame numbers, end exclusive), e.g. 100:250")
    return first, end


def _parse_time(text: str | None, field: str) -> float | None:
    """Seconds (``12.5``) or a timecode (``MM:SS.mmm``, ``HH:MM:SS.mmm``); ``nan``, ``inf`` and
    negative times are left to the settings, which refuse them naming the flag."""
    if text is None:
        return None
    usage = f"{field} {text[:40]!r}: expected seconds (12.5) or a timecode (HH:MM:SS.mmm)"
    fields = text.split(":")
    try:
        parts = [float(p) for p in fields]
    except ValueError:
        raise InputError(usage) from None
    if len(parts) > 3:
        raise InputError(usage)
    if len(parts) > 1 and not all(0 <= p < 60 for p in parts[1:]):
        raise InputError(f"{usage}; minutes and seconds of a timecode are 0 to 59")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def _cmd_restore(args: argparse.Namespace) -> int:
    from mmrealsr_video.analysis import AnalysisConfig
    from mmrealsr_video.engine import restore_video
    from mmrealsr_video.plan import PlanConfig
    from mmrealsr_video.settings import EncodeSettings, RestoreSettings

    options = {}
    for item in args.encoder_opt or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--encoder-opt {item!r}: expected key=value")
        options[key] = value
    fields = _restore_fields(args)
    settings = RestoreSettings(
        **fields,
        batch=args.batch if args.batch is not None else (4 if fields["device"].startswith("cuda") else 1),
        keyframes=args.keyframes,
        track=args.track,
        save_track=args.save_track,
        analysis=AnalysisConfig(plan=PlanConfig(mode=args.mode)),
        encode=EncodeSettings(
            codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt, options=options
        ),
        frames=_parse_frames(args.frames),
        start=_parse_time(args.start, "--start"),
        duration=_parse_time(args.duration, "--duration"),
        progress=not args.quiet,
        fps=args.fps,
        image_format=args.image_format,
    )
    job = _job_settings(args)
    if job is None:
        summary = restore_video(args.input, args.output, settings)
        chunks = ""
    else:
        from mmrealsr_video.jobs import RestoreJob

        restore_job = RestoreJob(args.input, args.output, settings, job)
        try:
            summary = restore_job.run()
        except KeyboardInterrupt:
            if restore_job.folder.is_dir():
                print(f"mmrealsr-video: the job in {restore_job.folder} keeps every finished chunk: run the "
                      "same command again to resume", file=sys.stderr)  # fmt: skip
            raise
        chunks = f", {summary.chunks} chunks" + (f" ({summary.resumed} done before)" if summary.resumed else "")
    print(
        f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.2f} fps), {summary.scenes} scenes{chunks}, "
        f"blur {summary.blur_range[0]:.3f}-{summary.blur_range[1]:.3f}, "
        f"noise {summary.noise_range[0]:.3f}-{summary.noise_range[1]:.3f}, "
        f"{summary.width}x{summary.height} -> {summary.output}"
    )
    return 0


def _job_settings(args: argparse.Namespace) -> Any:
    """The job's settings, or None for a single pass: ``--no-job``, or an image sequence in or out
    (jobs cut video files; a folder of images is resumable by nature)."""
    from mmrealsr_video.io.sequences import is_image_output, is_sequence
    from mmrealsr_video.jobs import JobSettings

    job_options = [
        flag
        for flag, given in (
            ("--workers", args.workers is not None),
            ("--ray", args.ray is not False),
            ("--chunk-frames", args.chunk_frames is not None),
            ("--keep-job", args.keep_job),
            ("--restart", args.restart),
            ("--job-folder", args.job_folder is not None),
        )
        if given
    ]
    if args.no_job or is_sequence(args.input) or is_image_output(args.output):
        if job_options:
            why = "--no-job" if args.no_job else "an image sequence (in or out) is restored in one pass"
            raise InputError(f"{', '.join(job_options)}: for jobs, but {why}")
        return None
    kw: dict[str, Any] = {"workers": args.workers or 1, "ray": args.ray, "keep_job": args.keep_job}
    if args.chunk_frames is not None:
        kw["chunk_frames"] = args.chunk_frames
    return JobSettings(
        **kw, restart=args.restart, folder=Path(args.job_folder) if args.job_folder is not None else None
    )


def _add_restore_arguments(p: argparse.ArgumentParser) -> None:
    """The options every restoring command shares: model, coefficients, device, tiling, output."""
    p.add_argument(
        "--model",
        default="default",
        help="bundled model (default = compact-x4, or compact-x2) or weights file (.pth/.safetensors)",
    )
    p.add_argument("--blur", default="auto", help="number in [0,1], 'auto', or relative to auto like +0.1")
    p.add_argument("--noise", default="auto", help="number in [0,1], 'auto', or relative to auto like -0.2")
    p.add_argument("--device", default="auto", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--precision", choices=sorted(PRECISIONS), help="default: fp16 on CUDA, fp32 on the CPU")
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        help="tile side in input pixels (default: only when needed; 0: never; at least 32 are used)",
    )
    p.add_argument(
        "--tile-overlap", type=int, default=32, help="pixels shared by neighbouring tiles (default 32)"
    )
    p.add_argument(
        "--outscale", type=float, default=None, help="final scale, by a high-quality resize after the model"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


#: Settings fields whose flag is not ``--`` + the field's name with dashes.
_FLAG_OF_FIELD = {"dtype": "--precision", "encode": "--codec", "options": "--encoder-opt"}


def _flag(field: str) -> str:
    """The command-line flag that sets a settings field."""
    return _FLAG_OF_FIELD.get(field, "--" + field.replace("_", "-"))


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmrealsr-video",
        description="Restore old and degraded video with MM-RealSR (blur and noise knobs, automatic or by hand).",
    )
    p.add_argument("--version", action="version", version=f"mmrealsr-video {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser(
        "info", help="versions, devices and bundled models; or what an input video or image sequence holds"
    )
    info.add_argument("input", nargs="?", help="a video file or an image sequence (folder or pattern)")
    info.set_defaults(func=_cmd_info)

    img = sub.add_parser("image", help="restore one still image")
    img.add_argument("input", help="image file (PNG, JPEG, TIFF 8/16-bit, WebP)")
    img.add_argument("output", help="where to write the result (type from the extension)")
    _add_restore_arguments(img)
    img.set_defaults(func=_cmd_image)

    rs = sub.add_parser(
        "restore",
        help="restore a video file or an image sequence (audio, subtitles, chapters and metadata copied)",
    )
    rs.add_argument(
        "input",
        help="video file, or image sequence: a folder, a pattern like frames/%%05d.png or 'frames/*.png'",
    )
    rs.add_argument(
        "output",
        help="video file (the container follows the extension: .mp4, .mkv, .mov...), or images: a folder "
        "(existing, ending in /, or without an extension) or a pattern like out/%%06d.png",
    )
    _add_restore_arguments(rs)
    rs.add_argument("--track", help="coefficient track from 'analyze' (JSON/CSV) to use instead of analysing")
    rs.add_argument(
        "--keyframes",
        help="keyframe file or string, applied on top of --track, or else of a first analysis pass",
    )
    rs.add_argument("--save-track", help="write the coefficients used to this track file (.json/.csv)")
    rs.add_argument(
        "--mode", choices=["scene", "drift", "raw"], default="scene", help="automatic plan (default scene)"
    )
    rs.add_argument(
        "--batch", type=int, default=None, help="frames per model call (default 1 on CPU, 4 on CUDA)"
    )
    rs.add_argument("--codec", help="encoder (default libx264; ffv1 for lossless)")
    rs.add_argument("--crf", type=int, help="quality for x264/x265/SVT-AV1 (default 18)")
    rs.add_argument("--preset", help="encoder preset (x264 default medium)")
    rs.add_argument("--pix-fmt", help="output pixel format (default: keeps the input's bit depth and chroma)")
    rs.add_argument(
        "--encoder-opt", action="append", metavar="KEY=VALUE", help="extra encoder option (repeatable)"
    )
    rs.add_argument("--frames", help="a part of the input: A:B frame numbers, end exclusive")
    rs.add_argument("--start", help="a part of the input: start time (seconds or HH:MM:SS.mmm)")
    rs.add_argument("--duration", help="a part of the input: duration (seconds or HH:MM:SS.mmm)")
    rs.add_argument("--fps", help="an image sequence's frame rate (default 25; e.g. 24, 29.97, 30000/1001)")
    rs.add_argument(
        "--image-format",
        choices=["png", "jpg", "tif"],
        help="type of output images (default: the input sequence's, png from a video)",
    )
    jobs = rs.add_argument_group(
        "jobs", "a video file is restored as a resumable job, cut at scene cuts into chunks (docs/jobs.md)"
    )
    jobs.add_argument("--workers", type=int, help="chunks restored and coded at once (default 1)")
    jobs.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=False,
        metavar="ADDRESS",
        help="run the chunks on Ray actors: a local instance, or a cluster's ADDRESS (needs the ray extra)",
    )
    jobs.add_argument("--chunk-frames", type=int, help="frames per chunk at most (default 480)")
    jobs.add_argument("--keep-job", action="store_true", help="keep the job folder after the output is written")
    jobs.add_argument("--restart", action="store_true", help="discard this output's unfinished job and start over")
    jobs.add_argument("--job-folder", help="where the job's state lives (default: .NAME.job beside the output)")
    jobs.add_argument("--no-job", action="store_true", help="one pass, no job folder, no resume")
    rs.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    rs.set_defaults(func=_cmd_restore)

    an = sub.add_parser("analyze", help="find scenes, estimate blur and noise, write a coefficient track")
    an.add_argument("input", help="video file or image sequence (folder or pattern)")
    an.add_argument("--fps", help="an image sequence's frame rate (default 25)")
    an.add_argument("-o", "--output", required=True, help="track file to write (.json or .csv)")
    an.add_argument("--plot", help="also write a PNG plot of the track")
    an.add_argument(
        "--keyframes", help="keyframe file (.toml/.json) or string, e.g. 'blur: 0=auto; 120|=0.6'"
    )
    an.add_argument(
        "--model",
        default="default",
        help="bundled model (default = compact-x4, or compact-x2) or weights file (its estimator is used)",
    )
    an.add_argument(
        "--mode", choices=["scene", "drift", "raw"], default="scene", help="aggregation (default: scene)"
    )
    an.add_argument("--drift-window", type=int, default=48, help="frames of smoothing in drift mode")
    an.add_argument("--sample-every", type=int, default=6, help="estimate every k-th frame (default 6)")
    an.add_argument(
        "--detector", choices=["content", "adaptive"], default="content", help="scene-cut detector"
    )
    an.add_argument("--min-scene-len", type=int, default=12, help="shortest scene in frames (default 12)")
    an.add_argument("--cuts", help="scene cuts given from outside: '120,300,415' or a file; skips detection")
    an.add_argument("--device", default="auto", help="cpu, cuda or cuda:N")
    an.add_argument("--force", action="store_true", help="overwrite an existing track or plot")
    an.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    an.set_defaults(func=_cmd_analyze)

    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmrealsr-video`` command."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with _sigterm_as_interrupt():
            return int(args.func(args))
    except SettingsError as e:  # the library names the field; the user typed a flag
        print(f"mmrealsr-video: error: {_flag(e.field)} {e.problem}", file=sys.stderr)
        return 1
    except MMRealSRVideoError as e:
        print(f"mmrealsr-video: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the system refused a file operation the library did not foresee
        name = str(e.filename) if e.filename is not None else ""
        name = name if len(name) <= 80 else name[:60] + "..."
        print(f"mmrealsr-video: error: {name + ': ' if name else ''}{e.strerror or e}", file=sys.stderr)
        return 1
    except _Terminated:
        print("mmrealsr-video: interrupted (SIGTERM)", file=sys.stderr)
        return _EXIT_TERMINATED
    except KeyboardInterrupt:
        print("mmrealsr-video: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
