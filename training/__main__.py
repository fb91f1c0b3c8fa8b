"""``python -m mmrealsr_training``: train a modulated model from a TOML configuration, or check one.

python -m mmrealsr_training train CONFIG [--run-dir DIR] [--resume auto|PATH|none]
python -m mmrealsr_training config CONFIG      # print the effective configuration (all defaults filled in)
python -m mmrealsr_training grow SOURCE DEST [--num-feat N] [--num-conv N] [--context-feat N]   # grow a compact model
python -m mmrealsr_training rescale SOURCE DEST --scale N   # an xN compact model from a trained x4 (N divides 4)
python -m mmrealsr_training slim-state STATE DEST   # a state without its sample pool, to carry a run elsewhere
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mmrealsr_video.errors import MMRealSRVideoError

__all__ = ["main"]


def _model_source_and_dest(p: argparse.ArgumentParser, made: str) -> None:
    """The two positionals of the commands that derive one compact model file from another."""
    p.add_argument("source", help="compact checkpoint, or a bundled model's name (default)")
    p.add_argument("dest", help=f"where to write the {made} model (.safetensors)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mmrealsr_training", description="Train MM-RealSR-style modulated models."
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train or fine-tune from a TOML configuration")
    t.add_argument("config", help="TOML configuration (see training/configs/)")
    t.add_argument("--run-dir", default=None, help="output folder (default: runs/<config name>)")
    t.add_argument(
        "--resume",
        default="auto",
        help="auto: continue from RUN_DIR/checkpoints/state_latest.pt if present; none: start afresh; "
        "or the path of a state file",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("-q", "--quiet", action="store_true", help="only warnings on the terminal")
    c = sub.add_parser("config", help="validate a configuration and print it with every default filled in")
    c.add_argument("config")
    g = sub.add_parser(
        "grow",
        help="widen and deepen a trained compact model without changing its output "
        "(a starting point for model.init_from)",
    )
    _model_source_and_dest(g, "grown")
    g.add_argument(
        "--num-feat", type=int, default=None, help="new width (channels), >= the old (default: same)"
    )
    g.add_argument(
        "--num-conv", type=int, default=None, help="new number of body layers, >= the old (default: same)"
    )
    g.add_argument(
        "--context-feat", type=int, default=0, help="add a context branch of this width (default 0: none)"
    )
    g.add_argument("--context-conv", type=int, default=4, help="convolutions of the context branch")
    g.add_argument("--context-pool", type=int, default=4, help="pooling factor of the context branch")
    g.add_argument("--seed", type=int, default=0, help="seed of the new channels' weights")
    r = sub.add_parser(
        "rescale",
        help="derive a compact model for a smaller scale (x4 -> x2) whose output is the trained one's, "
        "area-downscaled (a starting point for training at that scale)",
    )
    _model_source_and_dest(r, "re-scaled")
    r.add_argument("--scale", type=int, required=True, help="the new factor; it must divide the model's")
    s = sub.add_parser(
        "slim-state",
        help="copy a training state without its sample pool (a few MB, to carry a run to another "
        "machine; the resume refills the pool)",
    )
    s.add_argument("source", help="a state file (RUN_DIR/checkpoints/state_latest.pt)")
    s.add_argument("dest", help="where to write the slim copy (resume with --resume DEST)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # The level sits on the handler: the run's log file still gets INFO with --quiet.
    handler.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Imported here so that `--help` stays fast.
    from .config import dump_config, load_config
    from .train import train

    try:
        if args.command == "config":
            sys.stdout.write(dump_config(load_config(args.config)))
            return 0
        if args.command == "grow":
            from .grow import grow_file

            final = grow_file(
                args.source,
                args.dest,
                args.num_feat,
                args.num_conv,
                context_feat=args.context_feat,
                context_conv=args.context_conv,
                context_pool=args.context_pool,
                seed=args.seed,
            )
            sys.stdout.write(f"{final}\n")
            return 0
        if args.command == "rescale":
            from .grow import rescale_file

            sys.stdout.write(f"{rescale_file(args.source, args.dest, args.scale)}\n")
            return 0
        if args.command == "slim-state":
            from .train import slim_state

            sys.stdout.write(f"{slim_state(args.source, args.dest)}\n")
            return 0
        final = train(args.config, args.run_dir, args.resume, progress=False if args.no_progress else None)
    except MMRealSRVideoError as e:
        logging.getLogger("mmrealsr_training").error("%s", e)
        return 2
    except KeyboardInterrupt:
        logging.getLogger("mmrealsr_training").warning("interrupted; run the same command again to resume")
        return 130
    sys.stdout.write(f"{final}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
