"""Test media made by the tests themselves: clips of real photographs (scikit-image's) with known
degradations, written with PyAV in a fraction of a second."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data


def photos() -> list[np.ndarray]:
    """Real colour photographs bundled with scikit-image."""
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.stereo_motorcycle()[0]]


@dataclass(frozen=True)
class Scene:
    photo: np.ndarray
    frames: int
    blur_sigma: float = 0.0  # Gaussian sigma in pixels of the 2x "clean" render
    noise_sigma: float = 0.0  # Gaussian sigma on the 0-255 scale, a fresh realisation every frame
    flash_at: int | None = None  # a single white frame inside the scene


def render_frame(scene: Scene, t: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Frame t of a scene: a slow pan across the photo, blurred at 2x, downscaled, noised."""
    w, h = size
    photo = scene.photo
    # The clean render is 2x the frame; fit the photo so that there is room to pan.
    fit = max((2 * w + scene.frames) / photo.shape[1], (2 * h) / photo.shape[0])
    big = cv2.resize(
        photo, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA if fit < 1 else cv2.INTER_CUBIC
    )
    x0 = min(t, big.shape[1] - 2 * w)
    y0 = (big.shape[0] - 2 * h) // 2
    crop = big[y0 : y0 + 2 * h, x0 : x0 + 2 * w].astype(np.float32)
    if scene.blur_sigma > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), scene.blur_sigma)
    frame = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    if scene.noise_sigma > 0:
        frame = frame + rng.normal(0, scene.noise_sigma, frame.shape).astype(np.float32)
    if scene.flash_at is not None and t == scene.flash_at:
        frame = np.full_like(frame, 250)
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def write_clip(
    path: Path,
    scenes: list[Scene],
    *,
    size: tuple[int, int] = (128, 96),
    fps: int = 24,
    codec: str = "ffv1",
    pix_fmt: str = "yuv444p",
    seed: int = 0,
) -> list[int]:
    """Writes the scenes back to back; returns the first frame of every scene after the first."""
    rng = np.random.default_rng(seed)
    cuts = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        n = 0
        for k, scene in enumerate(scenes):
            if k:
                cuts.append(n)
            for t in range(scene.frames):
                frame = av.VideoFrame.from_ndarray(render_frame(scene, t, size, rng), format="rgb24")
                frame.pts = n
                frame.time_base = Fraction(1, fps)
                out.mux(stream.encode(frame))
                n += 1
        out.mux(stream.encode(None))
    return cuts
