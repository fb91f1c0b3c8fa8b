"""Coefficient values as users write them: a number in [0, 1], ``auto``, or relative to auto
(``+0.1``, ``-0.2``). One parser for the command line, keyframe files and the VapourSynth front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmrealsr_video.errors import InputError

__all__ = ["COEFFICIENT_NAMES", "CoefficientValue", "parse_coefficient"]

#: Column order of every (B, 2) coefficient tensor.
COEFFICIENT_NAMES = ("blur", "noise")


@dataclass(frozen=True)
class CoefficientValue:
    """``kind`` is ``absolute`` (value), ``relative`` (auto + value) or ``auto``."""

    kind: Literal["absolute", "relative", "auto"]
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.kind == "absolute" and not 0.0 <= self.value <= 1.0:
            raise InputError(f"an absolute coefficient must lie in [0, 1], not {self.value}")
        if self.kind == "relative" and not -1.0 <= self.value <= 1.0:
            raise InputError(f"a relative coefficient must lie in [-1, 1], not {self.value:+}")

    def resolve(self, auto: float) -> float:
        """The final value given the automatic one, clamped to [0, 1]."""
        if self.kind == "auto":
            v = auto
        elif self.kind == "relative":
            v = auto + self.value
        else:
            v = self.value
        return min(1.0, max(0.0, v))

    def __str__(self) -> str:
        if self.kind == "auto":
            return "auto"
        return f"{self.value:+g}" if self.kind == "relative" else f"{self.value:g}"


def parse_coefficient(text: str | float | int, *, field: str = "coefficient") -> CoefficientValue:
    """Parses ``0.6``, ``auto``, ``+0.1`` or ``-0.2``.

    Raises:
        InputError: naming ``field`` and what is wrong.
    """
    if isinstance(text, bool):
        raise InputError(f"{field}: expected a number, 'auto' or a relative '+0.1', not {text!r}")
    if isinstance(text, int | float):
        try:
            number = float(text)
        except OverflowError:  # an int too large for a float (and to print: more than 4300 digits)
            raise InputError(
                f"{field}: a number of about {int(int(text).bit_length() * 0.30103) + 1} digits is not a coefficient in [0, 1]"
            ) from None
        return _make("absolute", number, field, text)
    s = text.strip().lower()
    if s == "auto":
        return CoefficientValue("auto")
    try:
        number = float(s)
    except ValueError:
        raise InputError(
            f"{field}: expected a number in [0, 1], 'auto' or a relative '+0.1'/'-0.2', not {text!r}"
        ) from None
    if s[0] in "+-":
        return _make("relative", number, field, text)
    return _make("absolute", number, field, text)


def _make(kind: Literal["absolute", "relative"], number: float, field: str, text: object) -> CoefficientValue:
    if number != number or number in (float("inf"), float("-inf")):
        shown = repr(text) if len(str(text)) <= 40 else repr(str(text)[:40]) + "..."
        raise InputError(f"{field}: {shown} is not a finite number")
    try:
        return CoefficientValue(kind, number)
    except InputError as e:
        raise InputError(f"{field}: {e}") from None
