"""mmrealsr-video: restore old and degraded video with MM-RealSR.

The public API: ``load_model`` returns a ``ModulatedModel`` with ``estimate(x)`` (blur, noise in
[0, 1] per image) and ``restore(x, coeffs)`` (the modulated generator, per-sample coefficients);
``analyze`` turns a video into a ``CoefficientTrack`` (scenes, estimates, per-frame coefficients),
``apply_keyframes`` / ``apply_fixed`` apply the user's overrides to a track.
"""

from mmrealsr_video.analysis import analyze
from mmrealsr_video.errors import (
    CheckpointError,
    InputError,
    MMRealSRVideoError,
    OutputError,
    UnknownArchitectureError,
    UnsafeCheckpointError,
)
from mmrealsr_video.keyframes import Keyframes, apply_fixed, apply_keyframes, parse_keyframes
from mmrealsr_video.model import BUNDLED_MODELS, ModulatedModel, load_model
from mmrealsr_video.track import CoefficientTrack, FrameCoefficients, plot_track

__version__ = "0.1.0"

__all__ = [
    "BUNDLED_MODELS",
    "CheckpointError",
    "CoefficientTrack",
    "FrameCoefficients",
    "InputError",
    "Keyframes",
    "MMRealSRVideoError",
    "ModulatedModel",
    "OutputError",
    "UnknownArchitectureError",
    "UnsafeCheckpointError",
    "__version__",
    "analyze",
    "apply_fixed",
    "apply_keyframes",
    "load_model",
    "parse_keyframes",
    "plot_track",
]
