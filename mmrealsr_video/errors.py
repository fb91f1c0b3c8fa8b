"""The exception hierarchy: one root, and subclasses that also inherit the builtin they resemble,
so callers can catch either (``except CheckpointError`` or ``except ValueError``)."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "InputError",
    "MMRealSRVideoError",
    "OutputError",
    "UnknownArchitectureError",
    "UnsafeCheckpointError",
]


class MMRealSRVideoError(Exception):
    """Root of every error this package raises on purpose."""


class CheckpointError(MMRealSRVideoError, ValueError):
    """A weights file or state dict cannot be used: corrupt, truncated, or of the wrong layout."""


class UnknownArchitectureError(CheckpointError):
    """A state dict matches none of the architectures this package implements."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle asks to run code or build objects beyond plain tensors and containers; refused."""


class InputError(MMRealSRVideoError, ValueError):
    """An input (tensor, file, option) is not of the form expected."""


class OutputError(MMRealSRVideoError, OSError):
    """An output cannot be written where asked."""
