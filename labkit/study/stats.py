"""Statistics over seeds: Spearman's rank correlation, mean and standard error, each refusing
what was not measured (``nan``, ``inf``) rather than dropping it silently."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.stats

from labkit import _checks


def _finite_vector(name: str, values: Any) -> np.ndarray:
    """``values`` as a 1-D float64 array of finite numbers, else a BadValue naming ``name``."""
    array = _checks.float_array(name, values)
    if array.ndim != 1:
        raise _checks.BadValue(name, values, "a 1-D sequence of numbers",
                               f" (got shape {array.shape})")
    bad = np.flatnonzero(~np.isfinite(array))
    if len(bad):
        raise _checks.BadValue(name, values, "finite numbers",
                               f" ({array[bad[0]]} at index {bad[0]}; leave out values that "
                               "were not measured)")
    return array


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (``scipy.stats.spearmanr``), refusing unmeasured values.

    rho = cov(R(x), R(y)) / (std R(x) std R(y)), R the tie-averaged ranks; ``nan`` when either
    side is constant. Rounded to 12 decimals, so that a correlation that is exactly a fraction
    compares as one: scipy gives 0.49999999999999994 for an exact 0.5, which would fail the
    study's ``>= 0.5`` rule.

    Parameters
    ----------
    x, y : sequence of float, same length n >= 2, finite
        Leave out pairs where either value was not measured; a ``nan`` or ``inf`` is refused
        (``ValueError`` naming ``x`` or ``y``) rather than silently dropped.

    Returns
    -------
    float in [-1, 1], or nan

    Examples
    --------
    >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
    0.8
    >>> spearman([1, 2, 3, 4, 5], [3, 2, 1, 5, 4])  # scipy alone: 0.49999999999999994
    0.5
    """
    x, y = _finite_vector("x", x), _finite_vector("y", y)
    if len(x) != len(y):
        raise _checks.BadValue("y", f"{len(y)} values", f"as many values as x ({len(x)})")
    if len(x) < 2:
        raise _checks.BadValue("x", x.tolist(), "at least 2 values")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return round(float(scipy.stats.spearmanr(x, y).statistic), 12)


def mean_se(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean and standard error s / sqrt(n) (s with ddof 1) of ``values``, and n.

    ``values`` must be finite (leave out what was not measured); an empty sequence gives
    ``(nan, nan, 0)`` and a single value an undefined (nan) standard error.

    >>> mean_se([1.0, 2.0, 3.0])
    (2.0, 0.5773502691896258, 3)
    """
    v = _finite_vector("values", list(values))
    if len(v) == 0:
        return math.nan, math.nan, 0
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se, len(v)
