"""mmrealsr-video: restore old and degraded video with MM-RealSR.

The public API: ``load_model`` returns a ``ModulatedModel`` with ``estimate(x)`` (blur, noise in
[0, 1] per image) and ``restore(x, coeffs)`` (the modulated generator, per-sample coefficients).
"""

from mmrealsr_video.errors import (
    CheckpointError,
    InputError,
    MMRealSRVideoError,
    OutputError,
    UnknownArchitectureError,
    UnsafeCheckpointError,
)
from mmrealsr_video.model import BUNDLED_MODELS, ModulatedModel, load_model

__version__ = "0.1.0"

__all__ = [
    "BUNDLED_MODELS",
    "CheckpointError",
    "InputError",
    "MMRealSRVideoError",
    "ModulatedModel",
    "OutputError",
    "UnknownArchitectureError",
    "UnsafeCheckpointError",
    "__version__",
    "load_model",
]
