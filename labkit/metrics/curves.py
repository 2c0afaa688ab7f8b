"""Curves over training: the paper's running median, the one smoothing of every W curve (the
figures of :mod:`labkit.plots` and the results of :mod:`labkit.digits_experiment` alike)."""

from __future__ import annotations

import numpy as np


def median_filter(values, width: int = 101) -> np.ndarray:
    """Running median over ``width`` points (odd), the edges padded with the nearest value.

    The paper smooths its W curves this way (width 101; Figures 3 and 4).

    >>> median_filter([0, 0, 9, 0, 0], 3).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0]
    """
    import scipy.ndimage

    if isinstance(width, bool) or not isinstance(width, int) or width < 1 or width % 2 == 0:
        raise ValueError(f"width={width!r} is not allowed; it must be an odd integer >= 1")
    return scipy.ndimage.median_filter(np.asarray(values, dtype=float), size=width,
                                       mode="nearest")
