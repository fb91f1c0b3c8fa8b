"""Makes ``examples/sample.png``, a degraded still to try ``mmrealsr-video image`` on.

A real photograph (scikit-image's ``coffee``, CC0, by Rachel Michetti) is degraded the way old
footage is: Gaussian blur, a x2 bicubic downscale, Gaussian noise and JPEG compression, with the
project's own ``mmrealsr_training.degradations.degrade_fixed``. Deterministic: rerunning it rewrites the same
file.

    python examples/make_sample.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from mmrealsr_training.degradations import degrade_fixed
from skimage import data

from mmrealsr_video.io.images import from_tensor, write_image

OUT = Path(__file__).with_name("sample.png")


def main() -> None:
    hr = torch.from_numpy(np.ascontiguousarray(data.coffee())).permute(2, 0, 1)[None].float() / 255
    lr = degrade_fixed(hr, blur_sigma=1.2, noise_sigma=10.0, jpeg_quality=60, scale=2, seed=7)
    write_image(OUT, from_tensor(lr), force=True)
    print(f"wrote {OUT} ({lr.shape[3]}x{lr.shape[2]})")


if __name__ == "__main__":
    main()
