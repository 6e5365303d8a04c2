"""Small checks that raise :class:`~torchsnn.errors.ConfigError` with the field, the value and the rule."""

from __future__ import annotations

import math
from typing import Any

from torchsnn.errors import ConfigError


def require(condition: bool, field: str, value: Any, allowed: str) -> None:
    """Raise ``ConfigError(field, value, allowed)`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(field, value, allowed)


def check_finite(field: str, value: float) -> float:
    require(isinstance(value, (int, float)) and math.isfinite(value), field, value, "must be a finite number")
    return float(value)


def check_positive(field: str, value: float) -> float:
    check_finite(field, value)
    require(value > 0, field, value, "must be > 0")
    return float(value)


def check_non_negative(field: str, value: float) -> float:
    check_finite(field, value)
    require(value >= 0, field, value, "must be >= 0")
    return float(value)


def check_range(field: str, value: float, low: float, high: float, *, closed: bool = True) -> float:
    check_finite(field, value)
    if closed:
        require(low <= value <= high, field, value, f"must lie in [{low}, {high}]")
    else:
        require(low < value < high, field, value, f"must lie in ({low}, {high})")
    return float(value)


def check_int(field: str, value: Any, minimum: int = 0) -> int:
    ok = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    require(ok, field, value, "must be an integer")
    require(int(value) >= minimum, field, value, f"must be an integer >= {minimum}")
    return int(value)
