"""Whether each of the paper's claims (Figures 3 to 7) holds on the digits, by rules fixed before
the full runs (:data:`RULES`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labkit.digits_experiment.config import ARMS
from labkit.digits_experiment.tables import _measured, _nan
from labkit.study import format_cell, mean_se

#: The stated rules of :func:`verdicts`, fixed before the full runs. A run's final digits are
#: "samples" at ``learned`` or more confident digits (real held-out digits: 0.87), "poor"
#: between ``failed`` and ``learned``, "no samples" below ``failed``; they have "collapsed" when
#: the confident ones cover fewer than ``collapse_classes`` classes or their class histogram is
#: ``collapse_kl`` nats or more from uniform (real digits: 10 classes, 0.01 nats). Training
#: "fails" (Figure 3, bottom: "samples are constant") with no samples or collapsed ones. An
#: estimate "tracks" sample quality when its Spearman correlation with the SWD over the
#: evaluations from ``after`` on is ``tracks`` or more (both fall together); it is "flat" when
#: its median-filtered curve from ``after`` on spans less than ``flat`` of its mean.
RULES = {"learned": 0.3, "failed": 0.1, "collapse_classes": 8, "collapse_kl": 0.5,
         "tracks": 0.5, "after": 500, "flat": 0.2}


def run_state(run: dict) -> str:
    """``"samples"``, ``"poor"``, ``"no samples"`` or ``"collapsed"`` by :data:`RULES`."""
    final = run["final"]
    confident = _nan(final.get("confident"))
    if run["diverged"] or not confident >= RULES["failed"]:
        return "no samples"
    if final["classes"] < RULES["collapse_classes"] or \
            _nan(final.get("class_kl")) >= RULES["collapse_kl"]:
        return "collapsed"
    return "samples" if confident >= RULES["learned"] else "poor"


def tracking(run: dict) -> float:
    """Spearman correlation between the median-filtered estimate and the SWD, over the
    evaluations at iterations >= ``RULES["after"]`` (positive: they fall together)."""
    from labkit.study import spearman

    w = dict(zip(run["w"]["iteration"], run["w"]["median101"], strict=True))
    pairs = [(w[t], v) for t, v in zip(run["evals"]["iteration"], run["evals"]["swd"],
                                       strict=True) if t >= RULES["after"] and t in w]
    if len(pairs) < 3:
        return math.nan
    return spearman([p[0] for p in pairs], [_nan(p[1]) for p in pairs])


def flatness(run: dict) -> float:
    """(max - min) / |mean| of the median-filtered estimate from ``RULES["after"]`` on."""
    w = np.array([v for t, v in zip(run["w"]["iteration"], run["w"]["median101"], strict=True)
                  if t >= RULES["after"]], dtype=float)
    return float(np.ptp(w) / max(abs(w.mean()), 1e-12)) if len(w) else math.nan


def _states(data: dict, arm: str) -> list[str]:
    return [run_state(r) for r in data["runs"].values() if r["arm"] == arm]


def _share(states: list[str], *wanted: str) -> float:
    return sum(s in wanted for s in states) / len(states) if states else math.nan


def _describe(data: dict, arm: str) -> str:
    runs = [r for r in data["runs"].values() if r["arm"] == arm]
    cells = {f: format_cell(mean_se(_measured(r["final"].get(f) for r in runs)), d)
             for f, d in (("confident", 2), ("classes", 1), ("class_kl", 2), ("swd", 0))}
    states = ", ".join(run_state(r) for r in runs)
    return (f"{ARMS[arm].label}: confident {cells['confident']}, classes {cells['classes']}, "
            f"KL {cells['class_kl']}, SWD {cells['swd']} (seeds: {states})")


def _verdict(holds: bool, fails: bool) -> str:
    return "holds here" if holds else "fails here" if fails else "cannot be decided here"


def verdicts(data: dict) -> dict[str, dict[str, Any]]:
    """Whether each of the paper's claims holds on the digits, by :data:`RULES`.

    Returns
    -------
    dict
        Figure name -> ``{"claim", "verdict", "lines"}``: the claim in the paper's words, one of
        "holds here", "fails here", "cannot be decided here" (or "not run"), and the numbers
        behind it, one line per arm.
    """
    out: dict[str, dict[str, Any]] = {}

    def have(*arms: str) -> bool:
        return all(_states(data, a) for a in arms)

    def track_line(arm: str) -> tuple[float, str]:
        rho = [tracking(r) for r in data["runs"].values() if r["arm"] == arm]
        mean, se, n = mean_se(_measured(rho))
        return mean, f"{ARMS[arm].label}: Spearman(estimate, SWD) {format_cell((mean, se, n))}"

    arms = ("wgan/mlp", "wgan/dcgan")
    if have(*arms):
        rho, lines = zip(*(track_line(a) for a in arms), strict=True)
        out["Figure 3, top"] = {
            "claim": "the critic's estimate falls as the samples improve (MLP and DCGAN "
                     "generators, DCGAN critic)",
            "verdict": _verdict(min(rho) >= RULES["tracks"], max(rho) < RULES["tracks"]),
            "lines": list(lines)}
    arm = "wgan-mlp-critic/mlp"
    if have(arm):
        runs = [r for r in data["runs"].values() if r["arm"] == arm]
        flat = mean_se(_measured(flatness(r) for r in runs))
        failed = _share(_states(data, arm), "no samples", "collapsed")
        out["Figure 3, bottom"] = {
            "claim": "with an MLP critic and generator at a high learning rate training fails "
                     "(no digits, or the same ones for every z) and the estimate stays constant",
            "verdict": _verdict(failed == 1 and flat[0] < RULES["flat"], failed == 0),
            "lines": [_describe(data, arm),
                      f"span of the median estimate after iteration {RULES['after']}: "
                      f"{format_cell(flat)} of its mean"]}
    arms = ("gan/mlp", "gan/dcgan")
    if have(*arms):
        rho, lines = zip(*(track_line(a) for a in arms), strict=True)
        out["Figure 4"] = {
            "claim": "a standard GAN's JS estimate does not track sample quality",
            "verdict": _verdict(max(rho) < RULES["tracks"], min(rho) >= RULES["tracks"]),
            "lines": list(lines)}
    if have("wgan/dcgan", "gan/dcgan"):
        good = [_share(_states(data, f"{loss}/dcgan"), "samples") for loss in ("wgan", "gan")]
        out["Figure 5"] = {
            "claim": "DCGAN generator: WGAN and the standard GAN both produce good samples",
            "verdict": _verdict(min(good) == 1, max(good) == 0),
            "lines": [_describe(data, f"{loss}/dcgan") for loss in ("wgan", "gan")]}
    for gen in ("dcgan-const", "dcgan-nobn"):
        if have(f"wgan/{gen}", f"gan/{gen}"):
            wgan = _share(_states(data, f"wgan/{gen}"), "samples", "poor")
            gan = _share(_states(data, f"gan/{gen}"), "no samples", "poor", "collapsed")
            name = "Figure 6" + (" (the paper's generator)" if gen == "dcgan-const" else
                                 " (the authors' code's generator)")
            out[name] = {
                "claim": "without BatchNorm the standard GAN fails, WGAN still produces samples",
                "verdict": _verdict(wgan == 1 and gan == 1, wgan == 0 or gan == 0),
                "lines": [_describe(data, f"{loss}/{gen}") for loss in ("wgan", "gan")]}
    if have("wgan/mlp", "gan/mlp"):
        wgan = _share(_states(data, "wgan/mlp"), "samples", "poor")
        gan = _share(_states(data, "gan/mlp"), "collapsed")
        out["Figure 7"] = {
            "claim": "MLP generator: WGAN produces (poorer) samples, the standard GAN collapses",
            "verdict": _verdict(wgan == 1 and gan == 1, wgan == 0 or gan == 0),
            "lines": [_describe(data, f"{loss}/mlp") for loss in ("wgan", "gan")]}
    return out
