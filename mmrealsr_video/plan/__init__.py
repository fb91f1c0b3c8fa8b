"""Plan: from raw estimates to the coefficients of every frame. Per-scene aggregation, the
coefficient track (its files and plot), the user's keyframes and fixed values, and the one
resolver every front asks for frame N's values."""

from mmrealsr_video.plan.aggregate import PLAN_MODES, PlanConfig, plan_auto
from mmrealsr_video.plan.coefficients import COEFFICIENT_NAMES, CoefficientValue, parse_coefficient
from mmrealsr_video.plan.keyframes import Keyframes, apply_fixed, apply_keyframes, parse_keyframes
from mmrealsr_video.plan.plot import plot_track
from mmrealsr_video.plan.resolver import CoefficientResolver
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients

__all__ = [
    "COEFFICIENT_NAMES",
    "PLAN_MODES",
    "CoefficientResolver",
    "CoefficientTrack",
    "CoefficientValue",
    "FrameCoefficients",
    "Keyframes",
    "PlanConfig",
    "apply_fixed",
    "apply_keyframes",
    "parse_coefficient",
    "parse_keyframes",
    "plan_auto",
    "plot_track",
]
