"""Makes ``examples/sample.mp4``, the clip the README's main command restores.

Three scenes of real photographs (scikit-image's ``coffee``, ``chelsea`` and ``rocket``, all free
to redistribute), each a slow pan, degraded the way old footage is: Gaussian blur and a 2x area
downscale (soft optics and a low-resolution source), fresh Gaussian noise on every frame (sensor
or tape noise, a different level per scene), then H.264 at a high CRF (compression artefacts).
A quiet 440 Hz tone is the audio track, so that the restored file shows the audio carried over.
Deterministic: rerunning it rewrites the same pictures.

    python examples/make_sample_clip.py
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

OUT = Path(__file__).with_name("sample.mp4")
SIZE = (240, 160)  # width, height of the degraded clip
FPS = 24
SCENES = [  # photo, frames, blur sigma (at 2x), noise sigma (0-255)
    (data.coffee, 30, 1.4, 6.0),
    (data.chelsea, 30, 1.0, 14.0),
    (data.rocket, 30, 1.8, 3.0),
]


def main() -> None:
    rng = np.random.default_rng(2022)
    w, h = SIZE
    with av.open(str(OUT), "w") as out:
        out.metadata["title"] = "mmrealsr-video sample (degraded)"
        video = out.add_stream("libx264", rate=FPS, options={"crf": "30", "preset": "slow"})
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.codec_context.colorspace = av.video.reformatter.Colorspace.ITU709
        video.codec_context.color_range = av.video.reformatter.ColorRange.MPEG
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "mono"
        n = 0
        for load, frames, blur, noise in SCENES:
            photo = load()
            fit = max((2 * w + frames * 2) / photo.shape[1], 2 * h / photo.shape[0])
            big = cv2.resize(photo, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA if fit < 1 else cv2.INTER_CUBIC)
            y0 = (big.shape[0] - 2 * h) // 2
            for t in range(frames):
                crop = big[y0 : y0 + 2 * h, 2 * t : 2 * t + 2 * w].astype(np.float32)
                crop = cv2.GaussianBlur(crop, (0, 0), blur)
                small = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
                small += rng.normal(0, noise, small.shape).astype(np.float32)
                rgb = np.clip(small + 0.5, 0, 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                    format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
                )
                frame.pts, frame.time_base = n, Fraction(1, FPS)
                out.mux(video.encode(frame))
                n += 1
        out.mux(video.encode(None))
        samples = int(48000 * n / FPS)
        tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
        for i in range(0, samples - 1023, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, i
            out.mux(audio.encode(af))
        out.mux(audio.encode(None))
    print(f"wrote {OUT}: {n} frames of {w}x{h}, {OUT.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
