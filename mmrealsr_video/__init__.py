"""mmrealsr-video: restore old and degraded video with MM-RealSR.

The Python API, one function per job:

- :func:`restore_video` (a video file or an image sequence, settings in :class:`RestoreSettings`,
  the encoder's in :class:`EncodeSettings`) and :func:`restore_image` (one picture,
  :class:`ImageSettings`);
- :class:`RestoreJob` (:class:`JobSettings`): a video restored as a resumable job, cut at scene
  cuts into chunks restored on workers or Ray actors (``docs/jobs.md``);
- :func:`analyze`: a video's :class:`CoefficientTrack` (scenes, estimates, per-frame coefficients),
  to edit, plot (:func:`plot_track`) or restore with later; :func:`apply_keyframes` /
  :func:`apply_fixed` apply the user's overrides to a track;
- :func:`load_model`: a :class:`ModulatedModel` with ``estimate(x)`` (blur, noise in [0, 1] per
  image) and ``restore(x, coeffs)`` (the modulated generator, per-sample coefficients).

The packages below follow a frame: ``io`` (sources, sinks, colour), ``analysis`` (scenes,
estimates), ``plan`` (track, keyframes, the coefficient resolver), ``models``; ``engine`` wires them.
"""

from mmrealsr_video._version import __version__
from mmrealsr_video.engine import ImageSummary, RestoreSummary, analyze, restore_image, restore_video
from mmrealsr_video.errors import (
    CheckpointError,
    InputError,
    MMRealSRVideoError,
    OutputError,
    SettingsError,
    UnknownArchitectureError,
    UnsafeCheckpointError,
)
from mmrealsr_video.jobs import JobSettings, RestoreJob
from mmrealsr_video.models import BUNDLED_MODELS, ModulatedModel, load_model
from mmrealsr_video.plan import (
    CoefficientTrack,
    CoefficientValue,
    FrameCoefficients,
    Keyframes,
    apply_fixed,
    apply_keyframes,
    parse_coefficient,
    parse_keyframes,
    plot_track,
)
from mmrealsr_video.settings import EncodeSettings, ImageSettings, RestoreSettings

__all__ = [
    "BUNDLED_MODELS",
    "CheckpointError",
    "CoefficientTrack",
    "CoefficientValue",
    "EncodeSettings",
    "FrameCoefficients",
    "ImageSettings",
    "ImageSummary",
    "InputError",
    "JobSettings",
    "Keyframes",
    "MMRealSRVideoError",
    "ModulatedModel",
    "OutputError",
    "RestoreJob",
    "RestoreSettings",
    "RestoreSummary",
    "SettingsError",
    "UnknownArchitectureError",
    "UnsafeCheckpointError",
    "__version__",
    "analyze",
    "apply_fixed",
    "apply_keyframes",
    "load_model",
    "parse_coefficient",
    "parse_keyframes",
    "plot_track",
    "restore_image",
    "restore_video",
]
