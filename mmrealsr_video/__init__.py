"""mmrealsr-video: restore old and degraded video with MM-RealSR."""

__version__ = "0.1.0"
