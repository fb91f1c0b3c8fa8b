"""Analysis: scene cuts and sampled degradation estimates of frames given in order, settled into
per-frame records as soon as each scene's values are known."""

from mmrealsr_video.analysis.estimate import CropEstimator, select_crops
from mmrealsr_video.analysis.scenes import SceneDetector, SceneDetectorConfig
from mmrealsr_video.analysis.streaming import (
    AnalysisConfig,
    FetchedFrame,
    SequentialAnalysis,
    StreamingAnalysis,
    analyze_frames,
)

__all__ = [
    "AnalysisConfig",
    "CropEstimator",
    "FetchedFrame",
    "SceneDetector",
    "SceneDetectorConfig",
    "SequentialAnalysis",
    "StreamingAnalysis",
    "analyze_frames",
    "select_crops",
]
