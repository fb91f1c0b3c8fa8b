"""Jobs: a long restore cut at scene cuts into chunks, each restored into its own segment, with a
manifest that makes it resumable, workers that run chunks side by side, a Ray backend that runs
them across machines, and the final join (``docs/jobs.md``)."""

from mmrealsr_video.jobs.chunks import DEFAULT_CHUNK_FRAMES, Chunk, plan_chunks
from mmrealsr_video.jobs.job import ENCODER_THREADS, JobSettings, RestoreJob, job_folder

__all__ = [
    "DEFAULT_CHUNK_FRAMES",
    "ENCODER_THREADS",
    "Chunk",
    "JobSettings",
    "RestoreJob",
    "job_folder",
    "plan_chunks",
]
