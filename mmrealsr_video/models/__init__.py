"""Models: the modulated architectures (each in its own module), the loader that recognises them
from a state dict, safe checkpoint reading, tiling, and the bundled weights (``weights/``)."""

from mmrealsr_video.models.loader import (
    BUNDLED_MODELS,
    PRECISIONS,
    ModulatedModel,
    bundled_model_path,
    load_model,
    precision_dtype,
)
from mmrealsr_video.models.registry import ARCHITECTURES, Architecture, ModulatedNet

__all__ = [
    "ARCHITECTURES",
    "BUNDLED_MODELS",
    "PRECISIONS",
    "Architecture",
    "ModulatedModel",
    "ModulatedNet",
    "bundled_model_path",
    "load_model",
    "precision_dtype",
]
