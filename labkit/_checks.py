"""Argument checks shared by the figure and widget modules (errors name the parameter)."""

import math


def finite_real(name: str, value) -> float:
    """Return ``value`` as a finite float; raise ``ValueError`` naming ``name`` otherwise.

    >>> finite_real("theta", 0.5)
    0.5
    """
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return result
