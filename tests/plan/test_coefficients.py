"""Coefficient values as users write them."""

from __future__ import annotations

import pytest

from mmrealsr_video.errors import InputError
from mmrealsr_video.plan.coefficients import CoefficientValue, parse_coefficient


@pytest.mark.parametrize(
    ("text", "auto", "expected"),
    [
        ("0.6", 0.2, 0.6),
        ("auto", 0.37, 0.37),
        ("+0.1", 0.5, 0.6),
        ("-0.2", 0.1, 0.0),
        ("+0.3", 0.9, 1.0),
        (1, 0.3, 1.0),
    ],
)
def test_forms_resolve(text: str, auto: float, expected: float) -> None:
    assert parse_coefficient(text).resolve(auto) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["1.5", "lots", "nan", "+2", "", "inf"])
def test_bad_values_name_the_field(text: str) -> None:
    with pytest.raises(InputError, match="--blur"):
        parse_coefficient(text, field="--blur")


def test_string_forms_round_trip() -> None:
    for text in ("auto", "+0.1", "-0.25", "0.5"):
        assert str(parse_coefficient(text)) == text
    assert CoefficientValue("relative", -0.2).kind == "relative"
