"""The exception hierarchy: one root, and subclasses that also inherit the builtin they resemble,
so callers can catch either (``except CheckpointError`` or ``except ValueError``)."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "InputError",
    "MMRealSRVideoError",
    "OutputError",
    "SettingsError",
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


class SettingsError(InputError):
    """A setting has a value it cannot take. ``field`` names the setting as the API spells it
    (``batch``, ``tile_overlap``), so that each front can name it its own way (the CLI as ``--batch``);
    ``problem`` says what is wrong (``must be at least 1, not 0``)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field} {problem}")


class OutputError(MMRealSRVideoError, OSError):
    """An output cannot be written where asked."""
