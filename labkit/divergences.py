"""Divergences between probability laws: the closed forms of the paper's Example 1 and numeric
KL, JS and TV between 1-D densities sampled on a grid.

Everything is in nats and numpy. JS is 0.5 KL(P || M) + 0.5 KL(Q || M) with M = (P + Q) / 2,
so it is at most log 2; the paper's displayed formula (Section 2) omits the two 1/2 factors.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid

from labkit import _checks

__all__ = ["example1", "js", "kl", "tv"]


def example1(theta) -> dict:
    """Distances between P_0 and P_theta of Example 1 (uniform on {0} x [0,1] and {theta} x [0,1]).

    W = |theta|; JS = log 2, KL = +inf (both ways), TV = 1 if theta != 0; all four are 0 at
    theta = 0 (paper, Example 1 and Figure 1).

    Parameters
    ----------
    theta : float or array-like
        Horizontal offset(s), finite.

    Returns
    -------
    dict
        Keys "W", "JS", "KL", "TV"; each a float for scalar ``theta``, else a float array of
        ``theta``'s shape.

    Examples
    --------
    >>> d = example1(0.5)
    >>> d["W"], round(d["JS"], 6), d["KL"], d["TV"]
    (0.5, 0.693147, inf, 1.0)
    >>> example1([0.0, -2.0])["W"].tolist()
    [0.0, 2.0]
    """
    t = _checks.float_array("theta", theta)
    if not np.isfinite(t).all():
        raise ValueError(f"theta must be finite, got {_checks.brief(theta)}")
    apart = t != 0
    out = {
        "W": np.abs(t),
        "JS": np.where(apart, np.log(2.0), 0.0),
        "KL": np.where(apart, np.inf, 0.0),
        "TV": np.where(apart, 1.0, 0.0),
    }
    if t.ndim == 0:
        return {k: float(v) for k, v in out.items()}
    return out


def _check_densities(p, q, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate densities p, q sampled on a strictly increasing 1-D grid x; return float arrays."""
    x = _checks.float_array("x", x)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x must be a 1-D grid of at least 2 points, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x must be finite, got NaN or inf")
    if not (np.diff(x) > 0).all():
        raise ValueError("x must be strictly increasing")
    out = []
    for name, f in (("p", p), ("q", q)):
        f = _checks.float_array(name, f)
        if f.shape != x.shape:
            raise ValueError(f"{name} must have the shape of x {x.shape}, got {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError(f"{name} must be finite, got NaN or inf")
        if (f < 0).any():
            raise ValueError(f"{name} must be >= 0 (a density), got min {float(f.min())!r}")
        out.append(f)
    return out[0], out[1], x


def _kl(p: np.ndarray, q: np.ndarray, x: np.ndarray) -> float:
    """KL(p || q) by the trapezoid rule for already validated arrays (0 log 0 = 0)."""
    if ((p > 0) & (q == 0)).any():
        return float("inf")
    support = p > 0
    integrand = np.zeros_like(p)
    integrand[support] = p[support] * np.log(p[support] / q[support])
    return float(trapezoid(integrand, x))


def kl(p, q, x) -> float:
    """Kullback-Leibler divergence KL(P || Q) = int p log(p / q) dx, in nats, on a grid.

    Trapezoid rule on the grid values, with 0 log(0 / q) = 0 and +inf as soon as q = 0 < p at a
    grid point (P not absolutely continuous w.r.t. Q, the situation of the paper's Example 1).
    Tails that underflow to 0 in q but not in p also give +inf: choose the grid accordingly.

    Parameters
    ----------
    p, q : array-like, shape (N,)
        Densities of P and Q at the grid points, >= 0 (normalise them on the grid yourself).
    x : array-like, shape (N,)
        Strictly increasing grid, N >= 2.

    Returns
    -------
    float
        >= 0 up to quadrature error, or inf.

    Examples
    --------
    >>> x = np.linspace(0.0, 1.0, 101)
    >>> kl(np.ones(101), np.ones(101), x)
    0.0
    >>> kl(np.ones(101), np.r_[np.zeros(50), 2 * np.ones(51)], x)
    inf
    """
    return _kl(*_check_densities(p, q, x))


def js(p, q, x) -> float:
    """Jensen-Shannon divergence JS(P, Q) = 0.5 KL(P || M) + 0.5 KL(Q || M), M = (P + Q) / 2.

    In nats, so 0 <= JS <= log 2 with log 2 exactly when the supports are disjoint (paper,
    Example 1; its displayed definition lacks the 1/2). Trapezoid rule as in `kl`.

    Parameters
    ----------
    p, q : array-like, shape (N,)
        Densities at the grid points, >= 0.
    x : array-like, shape (N,)
        Strictly increasing grid.

    Returns
    -------
    float

    Examples
    --------
    >>> x = np.linspace(0.0, 3.0, 301)
    >>> p, q = (x <= 1.0) / 1.005, (x >= 2.0) / 1.005  # trapezoid mass 1 each, disjoint
    >>> round(js(p, q, x), 12) == round(float(np.log(2)), 12)
    True
    """
    p, q, x = _check_densities(p, q, x)
    m = 0.5 * (p + q)
    return 0.5 * _kl(p, m, x) + 0.5 * _kl(q, m, x)


def tv(p, q, x) -> float:
    """Total variation distance TV(P, Q) = 0.5 int |p - q| dx (trapezoid rule), in [0, 1].

    Parameters
    ----------
    p, q : array-like, shape (N,)
        Densities at the grid points, >= 0.
    x : array-like, shape (N,)
        Strictly increasing grid.

    Returns
    -------
    float

    Examples
    --------
    >>> x = np.linspace(0.0, 1.0, 11)
    >>> tv(np.ones(11), np.ones(11), x)
    0.0
    """
    p, q, x = _check_densities(p, q, x)
    return 0.5 * float(trapezoid(np.abs(p - q), x))
