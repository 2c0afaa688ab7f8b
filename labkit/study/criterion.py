"""Has a curve stopped moving? The study's convergence criterion over seeds, and the curves of a
run as arrays (iterations, seeds x iterations)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from labkit import _checks
from labkit.study.stats import _finite_vector

#: Tolerance of the convergence criterion: the drift over the last quarter, relative to the level.
CONVERGENCE_TOLERANCE = 0.05


#: Standard errors added to the drift before it is compared with the tolerance.
CONVERGENCE_Z = 2.0


def convergence(iterations: Sequence[float], values: Sequence[Sequence[float]],
                tolerance: float = CONVERGENCE_TOLERANCE, z: float = CONVERGENCE_Z) -> dict:
    """Has a curve stopped moving? The convergence criterion of the study, over seeds.

    Take the evaluations in the last quarter of training, ``t >= t_end - (t_end - t_0) / 4``
    (at least 3). For each seed s fit a line to its values there by least squares; its
    **drift** d_s is the fitted change over that quarter (slope times its length) and its
    **level** l_s the mean value there. Over the S seeds: the seed-mean curve's drift
    D = mean d_s, its standard error se_D = sd(d_s) / sqrt(S), the level L = mean l_s. Then

        converged  <=>  |D| + z se_D  <  tolerance * L,

    i.e. even at z standard errors the seed-mean curve moves by less than ``tolerance`` (5%)
    of its level over the last quarter. Noise cannot help a drifting curve pass: more noise
    widens se_D and only makes the bound harder to meet. A curve that does not pass is
    **falling** or **rising** when |D| > z se_D (a trend the seeds agree on); otherwise it is
    **oscillating** when the seeds' curves swing around their own lines by at least the
    tolerance (the ``fluctuation`` below), and **unsettled** when they are smooth but drift
    differently from seed to seed.

    Parameters
    ----------
    iterations : sequence of T numbers, increasing
    values : array (S, T)
        One curve per seed (S >= 2), finite and positive (a distance, e.g. exact W1).
    tolerance : float, default 0.05
    z : float, default 2

    Returns
    -------
    dict
        ``verdict`` ("converged", "falling", "rising", "oscillating" or "unsettled"),
        ``converged`` (bool),
        ``level`` L, ``drift`` D, ``drift_se`` se_D, ``bound`` (|D| + z se_D) / L, the
        ``fluctuation`` (mean over seeds of the residual standard deviation around each seed's
        line, over L), ``from_iteration`` and ``points`` (evaluations in the last quarter).

    Examples
    --------
    >>> t = np.arange(0, 1001, 50)
    >>> flat = [1 + 0.01 * np.sin(t + s) for s in range(4)]
    >>> convergence(t, flat)["verdict"], convergence(t, [1 - t / 2000 for s in range(4)])["verdict"]
    ('converged', 'falling')
    """
    t = _finite_vector("iterations", iterations)
    v = _checks.float_array("values", values)
    if v.ndim != 2 or v.shape[1] != len(t) or v.shape[0] < 2:
        raise _checks.BadValue("values", f"shape {v.shape}",
                               f"an array (S >= 2 seeds, {len(t)} evaluations)")
    if not np.isfinite(v).all():
        raise _checks.BadValue("values", "a non-finite value", "finite numbers")
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        raise _checks.BadValue("iterations", t.tolist(), "increasing numbers")
    start = t[-1] - (t[-1] - t[0]) / 4
    last = t >= start
    if last.sum() < 3:
        raise _checks.BadValue("iterations", f"{int(last.sum())} evaluation(s) in the last "
                               "quarter", "at least 3 there (evaluate more often)")
    tq, vq = t[last], v[:, last]
    centred = tq - tq.mean()
    slopes = vq @ centred / (centred @ centred)
    drifts = slopes * (tq[-1] - tq[0])
    levels = vq.mean(1)
    residuals = vq - levels[:, None] - slopes[:, None] * centred
    drift, level = float(drifts.mean()), float(levels.mean())
    drift_se = float(drifts.std(ddof=1) / math.sqrt(len(drifts)))
    if level <= 0:
        raise _checks.BadValue("values", f"level {level}", "a positive level (a distance)")
    bound = (abs(drift) + z * drift_se) / level
    fluctuation = float(residuals.std(1, ddof=2).mean() / level)
    if bound < tolerance:
        verdict = "converged"
    elif abs(drift) > z * drift_se:
        verdict = "falling" if drift < 0 else "rising"
    else:
        verdict = "oscillating" if fluctuation >= tolerance else "unsettled"
    return {"verdict": verdict, "converged": verdict == "converged", "level": level,
            "drift": drift, "drift_se": drift_se, "bound": float(bound),
            "fluctuation": fluctuation, "from_iteration": float(tq[0]), "points": int(last.sum())}


def run_convergence(run: dict, field: str = "w1_exact") -> dict:
    """:func:`convergence` of one run's ``field`` curves (its seeds' exact W1 by default).

    A run that diverged, or whose curves hold a value that was not measured (a non-finite
    distance, stored as None), gets the verdict ``"diverged"``; one with a single seed or
    fewer than 3 evaluations in its last quarter (a smoke run) ``"undecided"``.
    """
    if run.get("diverged"):
        return {"verdict": "diverged", "converged": False}
    its, values = seed_curves(run, field)
    if np.isnan(values).any():
        return {"verdict": "diverged", "converged": False}
    if len(values) < 2 or np.sum(its >= its[-1] - (its[-1] - its[0]) / 4) < 3:
        return {"verdict": "undecided", "converged": False}
    return convergence(its, values)


def seed_curves(run: dict, field: str = "w1_exact") -> tuple[np.ndarray, np.ndarray]:
    """One run's curves of ``field`` as arrays: iterations (T,) and values (S, T), one row per
    seed in seed order, nan where nothing was measured."""
    c = run["curves"]
    if field not in c:
        raise _checks.BadValue("field", field, "one of " + ", ".join(
            k for k in c if k not in ("iteration", "seed")))
    its, seeds = sorted(set(c["iteration"])), sorted(set(c["seed"]))
    table = {(s, t): v for s, t, v in zip(c["seed"], c["iteration"], c[field], strict=True)}
    values = np.array([[math.nan if table.get((s, t)) is None else table[(s, t)] for t in its]
                       for s in seeds], dtype=float)
    return np.array(its, dtype=float), values
