"""Local workers: chunks restored side by side in threads of this process, sharing one model.

One model per device, as on a GPU two copies would only compete for the same memory and compute;
what runs in parallel is everything around it: decoding, colour conversion and the encoders (PyAV
and PyTorch release the GIL), so that all cores code while the model runs. Chunks are handed out
in order; each finished one is reported at once (the manifest is saved), so an interruption loses
only the chunks in flight, whose temporary segments are removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from mmrealsr_video.jobs.segment import SegmentResult, SegmentSpec, restore_segment
from mmrealsr_video.models.loader import ModulatedModel

__all__ = ["run_locally"]

log = logging.getLogger(__name__)


def run_locally(
    specs: Sequence[SegmentSpec],
    model: ModulatedModel,
    workers: int,
    done: Callable[[SegmentResult], None],
    *,
    total: int | None = None,
    progress: bool = False,
) -> None:
    """Restores every spec's segment with up to ``workers`` chunks at once; ``done`` is called
    (from the calling thread's pool, one at a time) with each finished segment.

    Raises:
        The first error of any chunk (the others in flight are stopped first), or KeyboardInterrupt.
    """
    cancel = threading.Event()
    bar = _bar(progress, total)
    bar_lock = threading.Lock()

    def frame_done(_index: int) -> None:
        if bar is not None:
            with bar_lock:
                bar.update(1)

    def one(spec: SegmentSpec) -> SegmentResult:
        if cancel.is_set():
            raise KeyboardInterrupt
        result = restore_segment(spec, model, cancel=cancel, on_frame=frame_done)
        done(result)
        return result

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunk")
    futures: list[Future[SegmentResult]] = []
    try:
        futures = [pool.submit(one, spec) for spec in specs]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in finished:
            if f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
    except BaseException:
        cancel.set()  # chunks in flight stop at their next frame and remove their temporary segment
        for f in futures:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=True)
        if bar is not None:
            bar.close()


def _bar(enabled: bool, total: int | None) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total or None, unit="frame", desc="restore", disable=None, dynamic_ncols=True)
