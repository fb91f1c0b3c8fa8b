"""Chunks on Ray: each actor holds one model on its own GPU (or CPU) and restores the chunks it is
given; the driver (the process that runs the job) records each finished segment in the manifest.

A chunk is a task whose only effect is its segment file, written under a temporary name and renamed
when complete, so a task may safely run twice: actors are restarted when their process dies, and
their tasks retried. The job folder must be on storage every worker sees (NFS, a shared disk), and
a model given as a file must be at the same path on every machine. Needs ``pip install
'mmrealsr-video[ray]'``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from mmrealsr_video.errors import InputError
from mmrealsr_video.jobs.segment import SegmentResult, SegmentSpec

__all__ = ["ACTOR_RESTARTS", "run_on_ray"]

log = logging.getLogger(__name__)

#: How often an actor is restarted after its process died, and its chunk retried.
ACTOR_RESTARTS = 3


class ChunkWorker:
    """A Ray actor's body: one model, loaded once, restoring chunk after chunk."""

    def __init__(self, model: str, device: str, dtype: Any) -> None:
        from mmrealsr_video.models.loader import load_model

        self.model = load_model(model, device=device, dtype=dtype)

    def pid(self) -> int:
        import os

        return os.getpid()

    def restore(self, spec: SegmentSpec) -> SegmentResult:
        from mmrealsr_video.jobs.segment import restore_segment

        return restore_segment(spec, self.model)


def run_on_ray(
    specs: Sequence[SegmentSpec],
    job: Any,
    done: Callable[[SegmentResult], None],
    *,
    address: str | None = None,
    actors: Callable[[list[Any]], None] | None = None,
) -> None:
    """Restores every spec's segment on Ray actors (``job.workers`` of them); ``done`` is called in
    this process with each finished segment, in the order they finish.

    Args:
        specs: the chunks to restore.
        job: the job's settings (``workers``).
        done: records a finished segment.
        address: a Ray cluster's address; None starts (or joins) a local instance.
        actors: called with the actor handles once they exist (tests use it to kill one).

    Raises:
        InputError: Ray is not installed.
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'mmrealsr-video[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    if not specs:
        return
    settings = specs[0].settings
    gpu = settings.device.startswith("cuda")
    options: dict[str, Any] = {"max_restarts": ACTOR_RESTARTS, "max_task_retries": ACTOR_RESTARTS}
    options.update({"num_gpus": 1} if gpu else {"num_cpus": 1})
    remote = ray.remote(ChunkWorker).options(**options)
    device = "cuda" if gpu else "cpu"
    handles = [remote.remote(str(settings.model), device, settings.dtype) for _ in range(job.workers)]
    if actors is not None:
        actors(handles)
    pool = ActorPool(handles)
    try:
        for result in pool.map_unordered(lambda a, spec: a.restore.remote(spec), list(specs)):
            done(result)
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else None
        if cause is not None:
            raise cause from None
        raise
    finally:
        for h in handles:
            ray.kill(h, no_restart=True)  # type: ignore[arg-type]
