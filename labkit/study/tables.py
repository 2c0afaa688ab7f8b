"""The study file as the notebook's tables: mean +- standard error over seeds per (method,
target) and baseline, the mode-collapse verdicts, whether the critic's estimate tracks the exact
W1 (Spearman per seed), the convergence verdicts, and the published rows to compare with."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from labkit import _checks
from labkit.study.baseline import baseline_points
from labkit.study.config import BASELINES, TARGETS
from labkit.study.criterion import run_convergence
from labkit.study.stats import mean_se, spearman

TABLE_FIELDS = ("modes", "hq_percent", "reverse_kl", "w1_exact")


def _measured(run: dict, field: str, where: str = "run") -> list[float]:
    """The seeds' values of ``field`` in ``run["final"]``, leaving out those not measured
    (None: no high-quality sample for reverse KL, a diverged generator for W1)."""
    values = []
    for k, row in enumerate(run["final"]):
        value = row.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise _checks.BadValue(f"{where}['final'][{k}][{field!r}]", value,
                                   "a finite number, or None where nothing was measured")
        values.append(float(value))
    return values


def _check_results(data: Any) -> dict:
    """``data`` if it looks like study results (:func:`load_results`), else a BadValue."""
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict) or not isinstance(
            data.get("methods"), dict):
        raise _checks.BadValue("data", data, "study results (labkit.study.load_results)")
    for key, run in data["runs"].items():
        method, _, target = str(key).partition("/")
        if method not in data["methods"] or target not in TARGETS or not isinstance(
                run, dict) or not isinstance(run.get("final"), list):
            raise _checks.BadValue("data", f"run {key!r}", "runs keyed 'method/target' with a "
                                   "list of final metrics, the method in data['methods']")
    return data


def _row(label: str, method: str, target: str, run: dict, where: str,
         kind: str) -> dict[str, Any]:
    row = {"method": method, "label": label, "target": target, "kind": kind,
           "n_seeds": len(run["final"])}
    for field in TABLE_FIELDS:
        row[field] = mean_se(_measured(run, field, where))
    return row


def summary_table(data: dict) -> list[dict[str, Any]]:
    """One row per (method, target), then the baselines: mean, standard error and n.

    Returns
    -------
    list of dict
        ``{"method", "label", "target", "kind" ("method" or "baseline"), "n_seeds",
        "<field>": (mean, se, n), ...}`` for each field of :data:`TABLE_FIELDS`;
        ``reverse_kl`` averages only seeds with high-quality samples (n says how many). A
        baseline's ``method`` and ``label`` are its name in :data:`BASELINES`.
    """
    data = _check_results(data)
    rows = []
    for key, run in data["runs"].items():
        method, target = key.split("/")
        rows.append(_row(data["methods"][method]["label"], method, target, run,
                         f"data['runs'][{key!r}]", "method"))
    for key, run in data.get("baselines", {}).items():
        name, target = key.split("/")
        rows.append(_row(name, name, target, run, f"data['baselines'][{key!r}]", "baseline"))
    return rows


def captures_modes(row: dict, support: dict) -> bool:
    """The study's rule: a method captures the modes only where it beats ``support only`` on
    %HQ (higher) and on exact W1 (lower), each by more than the standard error of the
    difference, sqrt(se_method^2 + se_support^2).

    Parameters
    ----------
    row, support : rows of :func:`summary_table` (a method's, and the same target's
        ``support only``)
    """
    def beats(field: str, sign: float) -> bool:
        (m, se, n), (b, se_b, n_b) = row[field], support[field]
        if n < 2 or n_b < 2:
            return False
        return sign * (m - b) > math.sqrt(se**2 + se_b**2)

    return beats("hq_percent", 1.0) and beats("w1_exact", -1.0)


def collapse_kind(row: dict, support: dict, verdict: str, n_modes: int) -> str:
    """What a run's final table says about mode collapse, in the study's words.

    - not converged: ``"unconverged: swinging"`` (verdict oscillating), ``"unconverged: still
      moving"`` (falling, rising or unsettled), ``"diverged"``, ``"undecided"``;
    - converged and :func:`captures_modes`: ``"captures the modes"``;
    - converged onto fewer than three quarters of the ``n_modes`` modes (seed mean) with more
      high-quality samples than ``support only`` (mass concentrated on a few modes):
      ``"converged onto few modes"``, a mode collapse;
    - converged with an exact W1 above ``support only``'s: ``"converged, away from the data"``;
    - otherwise converged: ``"converged, spread between the modes"`` (no better than a
      generator that knows only the support).

    "Beyond" means by more than the standard error of the difference, as in
    :func:`captures_modes`.

    Parameters
    ----------
    row, support : rows of :func:`summary_table` (the run's, and the same target's ``support
        only``)
    verdict : str
        The run's :func:`run_convergence` verdict.
    n_modes : int
        Modes of the target (8 or 25).
    """
    if verdict != "converged":
        return {"oscillating": "unconverged: swinging"}.get(
            verdict, "unconverged: still moving" if verdict in ("falling", "rising",
                                                                "unsettled") else verdict)
    if captures_modes(row, support):
        return "captures the modes"

    def above(field: str, sign: float) -> bool:  # row beyond support by the combined error
        (m, se, _), (b, se_b, _) = row[field], support[field]
        return sign * (m - b) > math.hypot(np.nan_to_num(se), np.nan_to_num(se_b))

    if row["modes"][0] < 0.75 * n_modes and above("hq_percent", 1.0):
        return "converged onto few modes"
    if above("w1_exact", 1.0):
        return "converged, away from the data"
    return "converged, spread between the modes"


def collapse_lines(data: dict) -> list[str]:
    """Every run's :func:`collapse_kind` with the numbers behind it, as text."""
    from labkit import toys

    data = _check_results(data)
    rows = {(r["method"], r["target"]): r for r in summary_table(data)}
    head = (f"{'method':<38} {'target':<6} {'modes':>6} {'%HQ':>6} {'W1':>6}   "
            f"{'support only: %HQ, W1':<22} kind")
    lines = [head, "-" * (len(head) + 24)]
    for key, run in data["runs"].items():
        method, target = key.split("/")
        row, support = rows[method, target], rows.get(("support only", target))
        if support is None:
            continue
        kind = collapse_kind(row, support, run_convergence(run)["verdict"],
                             len(toys.make_target(target).centers))
        lines.append(f"{row['label']:<38} {target:<6} {row['modes'][0]:>6.1f} "
                     f"{row['hq_percent'][0]:>6.1f} {row['w1_exact'][0]:>6.3f}   "
                     f"{support['hq_percent'][0]:>6.1f}, {support['w1_exact'][0]:<14.3f} {kind}")
    return lines


def loss_tracking(data: dict) -> list[dict[str, Any]]:
    """Does the critic's estimate track the exact W1 over training? Spearman per seed.

    For each run and seed, rho = spearman(estimate_t, W1_t) over the evaluation iterations
    t > 0 where both were measured (at t = 0 the critic is untrained and, for clipping, not
    yet clipped, so its value estimates nothing); then mean +- standard error over seeds.
    Beside it, how much W1 moved in that seed's run, ``w1_range`` = (max - min) / median of
    W1_t over the same t: a rank correlation needs the distance to move more than the noise
    of its estimate, so rho is confounded with how much W1 moves.

    Returns
    -------
    list of dict
        ``{"method", "target", "rho": [per seed], "w1_range": [per seed], "mean", "se"}``;
        a seed whose estimate (or W1) is constant has rho nan, left out of the mean.
    """
    data = _check_results(data)
    rows = []
    for key, run in data["runs"].items():
        method, target = key.split("/")
        c = run["curves"]
        rho, spread = [], []
        for seed in sorted(set(c["seed"])):
            pairs = [(c["w_estimate"][i], c["w1_exact"][i]) for i, (s, t) in
                     enumerate(zip(c["seed"], c["iteration"], strict=True))
                     if s == seed and t > 0 and c["w_estimate"][i] is not None
                     and c["w1_exact"][i] is not None]
            if len(pairs) < 2:
                rho.append(math.nan)
                spread.append(math.nan)
                continue
            estimate, w1 = (np.array(v, dtype=float) for v in zip(*pairs, strict=True))
            rho.append(spearman(estimate, w1))
            spread.append(float((w1.max() - w1.min()) / np.median(w1)))
        mean, se, _ = mean_se([r for r in rho if math.isfinite(r)])
        rows.append({"method": method, "target": target, "rho": rho, "w1_range": spread,
                     "mean": mean, "se": se})
    return rows


def baseline_levels(data: dict, target: str, field: str = "w1_curve") -> dict[str, float]:
    """The baselines' seed-mean ``field`` on ``target``: ``w1_curve`` (exact W1 at the curves'
    size, default), or a final-table field such as ``w1_exact`` or ``hq_percent``."""
    _checks.choice("target", target, TARGETS)
    return {name: mean_se(_measured(data["baselines"][f"{name}/{target}"], field))[0]
            for name in BASELINES if f"{name}/{target}" in data.get("baselines", {})}


def baseline_samples(data: dict, target: str, n: int = 500) -> dict[str, torch.Tensor]:
    """n points of each baseline on ``target`` for figures (the study's first seed; the
    support-only spread the study chose)."""
    spread = data["baselines"][f"support only/{target}"]["spread"]
    seed = data["config"]["first_seed"]
    return {name: baseline_points(name, target, n, seed, spread)[0] for name in BASELINES}


#: Published rows on 2,500 samples: (modes, %HQ) on the ring of 8 and the grid of 25, and the
#: source. PacGAN's carry standard errors.
PUBLISHED = {
    "GAN": ("1", "99.3", "3.3", "0.5", "VEEGAN Table 1, 5 runs"),
    "Unrolled GAN": ("7.6", "35.6", "23.6", "16", "VEEGAN Table 1, 5 runs"),
    "VEEGAN": ("8", "52.9", "24.6", "40", "VEEGAN Table 1, 5 runs"),
    "WGAN-GP": ("6.8", "59.6", "24.2", "28.7", "GDPP Table 1, 5 runs"),
    "GDPP-GAN": ("8.0", "71.7", "24.8", "68.5", "GDPP Table 1, 5 runs"),
    "PacGAN4": ("7.8 +- 0.1", "95.9 +- 1.4", "24.8 +- 0.2", "93.6 +- 0.6",
                "PacGAN Table 1, 10 trials"),
}


def comparison_lines(data: dict, target: str) -> list[str]:
    """The notebook's table for one target as text: our rows (mean +- s.e. over seeds: modes,
    %HQ, reverse KL, exact W1; whether the run converged (:func:`run_convergence`) and whether
    it captures the modes (:func:`captures_modes`)), the baselines ``floor`` and ``support
    only`` (with its spread), then the published rows of :data:`PUBLISHED` (modes, %HQ).
    """
    data = _check_results(data)
    _checks.choice("target", target, TARGETS)
    rows = {(r["method"], r["target"]): r for r in summary_table(data)}
    support = rows.get(("support only", target))
    head = (f"{'method':<38} {'modes':>11} {'%HQ':>11} {'reverse KL':>11} {'exact W1':>14}  "
            f"{'converged':<11} {'captures':<8}")
    lines = [head, "-" * len(head)]
    config_methods = data.get("config", {}).get("methods", list(data["methods"]))
    for method in config_methods:
        row = rows.get((method, target))
        cells = [format_cell(row[f], d) if row else "-"
                 for f, d in zip(TABLE_FIELDS, (1, 1, 2, 3), strict=True)]
        run = data["runs"].get(f"{method}/{target}")
        verdict = run_convergence(run)["verdict"] if run else "-"
        captures = ("-" if row is None or support is None else
                    "yes" if captures_modes(row, support) else "no")
        lines.append(f"{data['methods'][method]['label']:<38} {cells[0]:>11} {cells[1]:>11} "
                     f"{cells[2]:>11} {cells[3]:>14}  {verdict:<11} {captures:<8}")
    for name in BASELINES:
        row = rows.get((name, target))
        if row is None:
            continue
        label = name
        if name == "support only":
            spread = data["baselines"][f"{name}/{target}"]["spread"]
            label += f" ({'radial std' if target == 'ring' else 'half-width'} {spread:g})"
        cells = [format_cell(row[f], d) for f, d in zip(TABLE_FIELDS, (1, 1, 2, 3), strict=True)]
        lines.append(f"{label:<38} {cells[0]:>11} {cells[1]:>11} {cells[2]:>11} "
                     f"{cells[3]:>14}")
    lines.append("published (source, runs)")
    column = 0 if target == "ring" else 2
    for name, values in PUBLISHED.items():
        label = f"{name} ({values[4]})"
        lines.append(f"{label:<38} {values[column]:>11} {values[column + 1]:>11}")
    return lines


def convergence_lines(data: dict) -> list[str]:
    """Every run's :func:`run_convergence` as text: verdict, level L, drift D +- se over the
    last quarter (relative to L), the bound (|D| + 2 se) / L against the 5% tolerance, and the
    seeds' fluctuation around their trends."""
    data = _check_results(data)
    head = (f"{'method':<38} {'target':<6} {'verdict':<12} {'W1 level':>9} "
            f"{'drift / level':>16} {'bound':>7} {'fluctuation':>11}")
    lines = [head, "-" * len(head)]
    for key, run in data["runs"].items():
        method, target = key.split("/")
        c = run_convergence(run)
        label = data["methods"][method]["label"]
        if "level" not in c:  # diverged, or undecided (too short)
            lines.append(f"{label:<38} {target:<6} {c['verdict']:<12}")
            continue
        drift = f"{100 * c['drift'] / c['level']:+.1f} +- {100 * c['drift_se'] / c['level']:.1f}%"
        lines.append(f"{label:<38} {target:<6} {c['verdict']:<12} {c['level']:>9.3f} "
                     f"{drift:>16} {100 * c['bound']:>6.1f}% {100 * c['fluctuation']:>10.1f}%")
    return lines


def format_cell(stat: tuple[float, float, int], digits: int = 2) -> str:
    """``(mean, se, n)`` as ``"mean +- se"`` (``"-"`` without data).

    >>> format_cell((7.25, 0.31, 8), 1)
    '7.2 +- 0.3'
    """
    mean, se, n = stat
    if n == 0:
        return "-"
    if not math.isfinite(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {se:.{digits}f}"
