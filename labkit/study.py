"""The mode-collapse study of notebook 03: every method on the 8-Gaussian ring and the 25-Gaussian
grid, several seeds trained together as one ensemble per (method, target), scored as in VEEGAN /
PacGAN (modes captured, % high quality, reverse KL) and by exact W1, beside two baselines that any
claim of "capturing the modes" must beat.

:func:`run_study` writes one JSON file: the config, the labkit and torch versions, per-seed final
metrics, the curves over training (exact W1, the critic's estimate, modes, %HQ, and the cosine
between the critic's optimiser step and its gradient), a few snapshots for figures, the
:func:`convergence` verdict of every run, and the baselines (:func:`baselines`). The file is
locked while a study writes it and rewritten atomically after each finished (method, target);
inside a pair the trainer checkpoints into a work folder (``runs/<file name>/``), so an
interrupted study resumes where it stopped, losing at most ``checkpoint_every`` iterations.
:func:`summary_table`, :func:`comparison_lines`, :func:`loss_tracking` and
:func:`convergence_lines` turn the file into the notebook's tables (mean +- standard error over
seeds). :data:`DIAGNOSTICS` configures the second, smaller study behind the notebook's
conclusions (critic steps, learning rates, the Adam cosine).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import multiprocessing
import os
import queue
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit import _checks, rundir

FORMAT = 2
TARGETS = ("ring", "grid")
#: Row labels of the baselines: a second real sample, and a generator that knows the support only.
BASELINES = ("floor", "support only")


@dataclass(frozen=True)
class Method:
    """One row of the study: a loss, a Lipschitz constraint and an optimiser, with their source.

    Attributes
    ----------
    label : str
        Name printed in tables.
    settings : dict
        :class:`labkit.train.TrainConfig` fields that define the method (loss, constraint,
        optimizer, lr, betas, n_critic, clip, gp_lambda).
    source : str
        Where the settings come from, and what was changed.
    """

    label: str
    settings: dict[str, Any]
    source: str


_ADAM_GP = {"optimizer": "adam", "lr": 1e-4, "betas": (0.5, 0.9)}
_CLIP = {"loss": "wgan", "constraint": "clip", "clip": 0.01, "n_critic": 5}
_CLIP_TENFOLD = {**_CLIP, "optimizer": "rmsprop", "lr": 5e-4}

#: The methods of the study, in table order. GANs take one discriminator step per generator step
#: (Goodfellow et al. 2014; as in VEEGAN's and PacGAN's baselines); the WGANs take n_critic = 5.
METHODS: dict[str, Method] = {
    "gan": Method("GAN (minimax)", {"loss": "gan", "constraint": "none", "n_critic": 1,
                                    **_ADAM_GP},
                  "Goodfellow et al. 2014, log(1 - D) generator loss; Adam 1e-4, betas (0.5, 0.9) "
                  "as WGAN-GP's gan_toy.py"),
    "gan-logd": Method("GAN (-log D)", {"loss": "gan-logd", "constraint": "none", "n_critic": 1,
                                        **_ADAM_GP},
                       "Goodfellow et al. 2014, non-saturating -log D loss; Adam as above"),
    "wgan-clip": Method("WGAN, clipping (RMSprop 5e-4)", _CLIP_TENFOLD,
                        "Algorithm 1 with the learning rate raised tenfold (a toy calibration "
                        "found 5e-5 slow on the ring); c = 0.01, n_critic = 5"),
    "wgan-clip-paper": Method("WGAN, clipping (paper: RMSprop 5e-5)",
                              {**_CLIP, "optimizer": "rmsprop", "lr": 5e-5},
                              "Algorithm 1 exactly: RMSprop 5e-5, c = 0.01, n_critic = 5"),
    "wgan-clip-adam": Method("WGAN, clipping (Adam 5e-4)",
                             {**_CLIP, "optimizer": "adam", "lr": 5e-4, "betas": (0.5, 0.999)},
                             "as wgan-clip with the authors' --adam option (betas (0.5, 0.999)) "
                             "instead of RMSprop: the paper's momentum warning (Section 4.2)"),
    "wgan-gp": Method("WGAN-GP (lambda 10)", {"loss": "wgan", "constraint": "gp",
                                              "gp_lambda": 10.0, "n_critic": 5, **_ADAM_GP},
                      "Gulrajani et al. 2017: lambda = 10, n_critic = 5, Adam 1e-4, betas "
                      "(0.5, 0.9) as in its gan_toy.py"),
    "wgan-sn": Method("WGAN, spectral norm", {"loss": "wgan", "constraint": "sn", "n_critic": 5,
                                              **_ADAM_GP},
                      "Miyato et al. 2018 spectral normalisation of every critic layer (one "
                      "power iteration per step), WGAN loss, n_critic = 5, Adam as WGAN-GP"),
}

#: Variants of the tenfold-rate clipped WGAN for the diagnostics (:data:`DIAGNOSTICS`): does the
#: critic fall behind (n_critic 1 and 25 beside the study's 5), and what do high learning rates do
#: (the paper's Figure 3, lower half)?
DIAGNOSTIC_METHODS: dict[str, Method] = {
    "wgan-clip-ncritic1": Method("WGAN, clipping, n_critic 1", {**_CLIP_TENFOLD, "n_critic": 1},
                                 "wgan-clip with one critic step per generator step"),
    "wgan-clip-ncritic25": Method("WGAN, clipping, n_critic 25",
                                  {**_CLIP_TENFOLD, "n_critic": 25},
                                  "wgan-clip with 25 critic steps per generator step"),
    "wgan-clip-lr5e-3": Method("WGAN, clipping (RMSprop 5e-3)", {**_CLIP_TENFOLD, "lr": 5e-3},
                               "wgan-clip at 100 times the paper's learning rate"),
    "wgan-clip-lr5e-2": Method("WGAN, clipping (RMSprop 5e-2)", {**_CLIP_TENFOLD, "lr": 5e-2},
                               "wgan-clip at 1,000 times the paper's learning rate"),
}

#: Every method a study may run: the study's and the diagnostics' variants.
ALL_METHODS: dict[str, Method] = {**METHODS, **DIAGNOSTIC_METHODS}


@dataclass
class StudyConfig:
    """The budget and scope of a study; every method and target gets the same budget.

    The defaults are the shipped study's (``python -m labkit study`` reproduces it).

    Parameters
    ----------
    methods, targets : tuple of str
        Keys of :data:`ALL_METHODS` and of :data:`TARGETS`.
    n_seeds : int, default 8
        Seeds ``first_seed, ..., first_seed + n_seeds - 1``, trained together as one ensemble.
    iters : int, default 8000
        Generator iterations per run (batch 256: 2.05 M samples, 21 times the 96,000 of the
        first study).
    batch_size : int, default 256
        Batch m (WGAN-GP's ``gan_toy.py``; Algorithm 1's is 64).
    hidden, depth, nz
        The MLPs: ``depth`` hidden ReLU layers of ``hidden`` (128 for every method); latent
        dimension ``nz``.
    curve_every, curve_samples : int
        Evaluate every ``curve_every`` iterations on ``curve_samples`` fixed points per seed
        (exact W1, critic estimate, modes, the optimiser-step cosine): the curves.
    eval_samples : int, default 2500
        Fresh samples per seed for the final table (VEEGAN / PacGAN use 2,500).
    snapshot_every : int
        Iterations between the snapshots (seed ``first_seed``'s samples and critic on a grid).
    checkpoint_every : int, default 250
        Iterations between the trainer's checkpoints inside a pair (what a stop can lose).
    lag_steps : int, default 0
        If > 0, at every curve evaluation a copy of the critic takes this many more critic
        steps against the frozen generator, and its estimate is recorded beside the running
        critic's (``w_estimate_retrained``): how far the critic lags its optimum.
    threads : int, default 1
        Torch threads per run (0: labkit's choice by model size). Part of what a result depends
        on: matrix products split over other thread counts round differently.
    """

    methods: tuple[str, ...] = tuple(METHODS)
    targets: tuple[str, ...] = TARGETS
    n_seeds: int = 8
    first_seed: int = 0
    iters: int = 8000
    batch_size: int = 256
    hidden: int = 128
    depth: int = 3
    nz: int = 2
    curve_every: int = 100
    curve_samples: int = 500
    eval_samples: int = 2500
    snapshot_every: int = 1000
    checkpoint_every: int = 250
    lag_steps: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for name, allowed in (("methods", tuple(ALL_METHODS)), ("targets", TARGETS)):
            values = getattr(self, name)
            values = (values,) if isinstance(values, str) else tuple(values)
            if not values or len(set(values)) != len(values) or any(
                    not isinstance(v, str) or v not in allowed for v in values):
                raise _checks.BadValue(name, list(values),
                                       "distinct values among " + ", ".join(allowed))
            setattr(self, name, values)
        for name in ("n_seeds", "iters", "batch_size", "hidden", "depth", "nz", "curve_every",
                     "curve_samples", "eval_samples", "snapshot_every", "checkpoint_every"):
            setattr(self, name, _checks.integer(name, getattr(self, name), minimum=1))
        for name in ("first_seed", "lag_steps", "threads"):
            setattr(self, name, _checks.integer(name, getattr(self, name), minimum=0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def seeds(self) -> list[int]:
        """The seeds of every ensemble."""
        return list(range(self.first_seed, self.first_seed + self.n_seeds))

    def train_config(self, method: str, target: str, checkpoint: str | None = None):
        """The :class:`labkit.train.TrainConfig` of one (method, target) ensemble."""
        from labkit.train import TrainConfig

        return TrainConfig(target=target, iters=self.iters, batch_size=self.batch_size,
                           hidden=self.hidden, depth=self.depth, nz=self.nz,
                           seed=self.first_seed, n_seeds=self.n_seeds,
                           eval_every=self.curve_every, eval_samples=self.curve_samples,
                           checkpoint=checkpoint, checkpoint_every=self.checkpoint_every,
                           threads=self.threads, **ALL_METHODS[method].settings)


QUICK = {"n_seeds": 2, "iters": 60, "batch_size": 64, "curve_every": 5, "curve_samples": 200,
         "eval_samples": 500, "snapshot_every": 30, "checkpoint_every": 20}
"""Overrides of :class:`StudyConfig` for a smoke run (``--quick``, ``LABKIT_QUICK=1``)."""

DIAGNOSTICS = {"methods": ("wgan-clip-ncritic1", "wgan-clip", "wgan-clip-ncritic25",
                           "wgan-clip-adam", "wgan-clip-lr5e-3", "wgan-clip-lr5e-2"),
               "targets": ("ring",), "n_seeds": 4, "iters": 2000, "curve_every": 50,
               "snapshot_every": 500, "lag_steps": 200}
"""Overrides of :class:`StudyConfig` for the diagnostics (``study --diagnostics``): the
tenfold-rate clipped WGAN on the ring with n_critic 1, 5 and 25, with Adam, and at learning
rates 5e-3 and 5e-2; 4 seeds, 2,000 iterations, curves every 50 with the critic's lag
(200 more critic steps). With ``--quick``, :data:`QUICK` applies on top (``lag_steps`` 5)."""
QUICK_DIAGNOSTICS = {**QUICK, "lag_steps": 5}


# --------------------------------------------------------------------------- statistics


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


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``x``, ties getting the mean of the ranks they span (``scipy``'s default).

    >>> rankdata([10.0, 30.0, 20.0, 20.0]).tolist()
    [1.0, 4.0, 2.5, 2.5]
    """
    x = _finite_vector("x", x)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Start index of each run of equal values, and its length.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    lengths = np.diff(np.r_[starts, len(x)])
    mean_rank = starts + (lengths + 1) / 2.0
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(mean_rank, lengths)
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: the Pearson correlation of the (tie-averaged) ranks.

    rho = cov(R(x), R(y)) / (std R(x) std R(y)); ``nan`` when either side is constant.

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
    """
    x, y = _finite_vector("x", x), _finite_vector("y", y)
    if len(x) != len(y):
        raise _checks.BadValue("y", f"{len(y)} values", f"as many values as x ({len(x)})")
    if len(x) < 2:
        raise _checks.BadValue("x", x.tolist(), "at least 2 values")
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denominator if denominator > 0 else math.nan


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


# --------------------------------------------------------------------------- baselines


def _stream(seed: int, child: int) -> torch.Generator:
    """Seed ``seed``'s independent stream number ``child`` (``SeedSequence(seed).spawn``):
    0-2 train (:func:`labkit.train.member_seeds`), 3 the final table's real points and
    latent codes, 4 the floor's second real sample, 5 the support-only samples."""
    state = np.random.SeedSequence(seed).spawn(child + 1)[child].generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> 1))


def support_only_points(target_name: str, n: int, spread: float,
                        generator: torch.Generator) -> torch.Tensor:
    """n points of the best generator that knows the target's support but not its modes.

    - ``"ring"``: uniform angle on the circle of the centres (radius R = 2), radius
      R + ``spread`` * N(0, 1) (a radial spread);
    - ``"grid"``: uniform over the square [-``spread``, ``spread``]^2.

    The draws do not depend on ``spread`` (angle and normal, or a uniform square, are scaled),
    so W1 against a fixed real sample is a smooth function of ``spread``.

    Returns
    -------
    Tensor (n, 2), float32
    """
    from labkit import toys

    _checks.choice("target_name", target_name, TARGETS)
    spread = _checks.finite_real("spread", spread, at_least=0)
    if target_name == "ring":
        radius = float(toys.ring().centers.norm(dim=1).max())
        angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        r = radius + spread * torch.randn(n, generator=generator, dtype=torch.float64)
        points = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1)
    else:
        points = spread * (2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1)
    return points.float()


#: Candidate spreads searched by :func:`choose_spread`: radial std on the ring, half-width of the
#: square on the grid (whose centres span [-4, 4]).
SPREADS = {"ring": tuple(round(0.01 * k, 2) for k in range(11)),
           "grid": tuple(round(4.0 + 0.1 * k, 1) for k in range(16))}
#: Seeds the spread is chosen on, disjoint from any study's (0, 1, ...), so that the baseline is
#: not tuned on the points it is scored on.
SPREAD_SEEDS = (1000, 1001)


def choose_spread(target_name: str, n: int, seeds: Iterable[int] = SPREAD_SEEDS,
                  candidates: Sequence[float] | None = None) -> dict:
    """The support-only spread with the least exact W1 to the target, by a grid search.

    For each seed: n real points (its stream 3) and n support-only points (stream 5), the same
    draws for every candidate; the mean exact W1 over the seeds is minimised over
    ``candidates`` (default :data:`SPREADS`).

    Returns
    -------
    dict
        ``spread`` (the chosen value), ``candidates``, ``w1`` (mean exact W1 of each) and
        ``seeds``.
    """
    from labkit import ot, toys

    target = toys.make_target(target_name)
    seeds = [_checks.integer("seeds", s, minimum=0) for s in seeds]
    candidates = list(SPREADS[target_name] if candidates is None else candidates)
    w1 = np.zeros(len(candidates))
    for seed in seeds:
        real = target.sample(n, generator=_stream(seed, 3)).double()
        for k, spread in enumerate(candidates):
            fake = support_only_points(target_name, n, spread, _stream(seed, 5)).double()
            w1[k] += ot.w1(fake, real) / len(seeds)
    best = int(np.argmin(w1))
    return {"spread": candidates[best], "candidates": candidates, "w1": w1.tolist(),
            "seeds": seeds}


def baseline_points(kind: str, target_name: str, n: int, seed: int,
                    spread: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The (fake, real) points a baseline is scored on for one seed, each (n, 2).

    ``real``: the n real points the methods' final table uses for this seed (its stream 3);
    ``fake``: for ``"floor"`` a second real sample (stream 4), for ``"support only"``
    :func:`support_only_points` with ``spread`` (stream 5).
    """
    from labkit import toys

    _checks.choice("kind", kind, BASELINES)
    target = toys.make_target(target_name)
    real = target.sample(n, generator=_stream(seed, 3))
    if kind == "floor":
        return target.sample(n, generator=_stream(seed, 4)), real
    return support_only_points(target_name, n, spread, _stream(seed, 5)), real


def baselines(study: StudyConfig) -> dict[str, dict]:
    """The two baselines of every target, scored like the methods on the study's seeds.

    For seed s the methods' final table compares ``eval_samples`` generated points with real
    points from the seed's stream 3; the baselines replace the generated points by

    - ``floor``: a second, independent real sample (stream 4): the best any generator can
      score with this many points (its W1 is not 0);
    - ``support only``: :func:`support_only_points` (stream 5) with the spread of
      :func:`choose_spread` (chosen on :data:`SPREAD_SEEDS`, not on the study's seeds).

    Each seed's row also holds ``w1_curve``, the same baseline's exact W1 at the curves' size
    (``curve_samples`` points of each), the level to read the curves against (W1 between
    finite samples grows as they shrink).

    Returns
    -------
    dict
        ``{"floor/ring": {"final": [per seed]}, "support only/ring": {"final": [...],
        "spread": ..., "spread_search": choose_spread's dict}, ...}``.
    """
    from labkit import ot, toys

    out = {}
    for name in study.targets:
        target = toys.make_target(name)
        search = choose_spread(name, study.eval_samples)
        rows = {"floor": [], "support only": []}
        for seed in study.seeds:
            for kind in BASELINES:
                fake, real = baseline_points(kind, name, study.eval_samples, seed,
                                             search["spread"])
                fake_c, real_c = baseline_points(kind, name, study.curve_samples, seed,
                                                 search["spread"])
                rows[kind].append({"seed": seed, **sample_metrics(fake, real, target),
                                   "w1_curve": ot.w1(fake_c.double(), real_c.double())})
        out[f"floor/{name}"] = _rounded({"final": rows["floor"]})
        out[f"support only/{name}"] = _rounded({"final": rows["support only"],
                                                "spread": search["spread"],
                                                "spread_search": search})
    return out


# --------------------------------------------------------------------------- evaluation


def sample_metrics(fake: torch.Tensor, real: torch.Tensor, target) -> dict[str, float]:
    """Final metrics of one seed: modes, %HQ, reverse KL (VEEGAN / PacGAN) and exact W1.

    Parameters
    ----------
    fake, real : Tensor (n, 2)
        Generated and real samples (the table uses n = 2,500 of each).
    target : labkit.toys.GaussianMixture
        Gives the centres and std of the high-quality rule (within 3 std of a centre).

    Returns
    -------
    dict
        ``modes`` (int), ``hq_percent`` (100 x fraction), ``reverse_kl`` (nats; nan without
        high-quality samples) and ``w1_exact`` = W1(fake, real), Euclidean cost.
    """
    from labkit import metrics, ot

    fake, real = fake.detach().cpu().double(), real.detach().cpu().double()
    coverage = metrics.mode_coverage(fake, target.centers, target.std)
    w1 = ot.w1(fake, real) if torch.isfinite(fake).all() else math.nan
    return {"modes": int(coverage.modes), "hq_percent": 100.0 * coverage.hq_fraction,
            "reverse_kl": float(coverage.reverse_kl), "w1_exact": float(w1)}


def _final_points(trainer, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh (S, n, 2) real points and (S, n, nz) latent codes for the final table, drawn from
    each seed's stream 3 (training used 0-2)."""
    gens = [_stream(s, 3) for s in trainer.seeds]
    real = torch.stack([trainer.target.sample(n, generator=g) for g in gens])
    z = torch.stack([torch.randn(n, trainer.config.nz, generator=g) for g in gens])
    return real.to(trainer.device), z.to(trainer.device)


def grid_points(target, size: int = 20) -> torch.Tensor:
    """(size * size, 2) points of a square grid covering the target's centres with a margin of
    1.5, x varying fastest (row-major image order: ``values.reshape(size, size)``)."""
    lo = float(target.centers.min()) - 1.5
    hi = float(target.centers.max()) + 1.5
    axis = torch.linspace(lo, hi, size)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    return torch.stack([gx.flatten(), gy.flatten()], 1)


def _estimate(loss: str, critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The critic's distance estimate between ``real`` and ``fake``, one value per seed (S,)."""
    from labkit import objectives

    with torch.no_grad():
        value = objectives.critic_loss(loss, critic(real), critic(fake))
    return objectives.distance_estimate(loss, value).reshape(-1)


def update_cosine(optimizer: torch.optim.Optimizer, n_seeds: int) -> list[float]:
    """Cosine between the optimiser's last step and minus the gradient it was computed from.

    The step of RMSprop (no momentum) is -lr g / (sqrt(v) + eps), of Adam
    -lr m_hat / (sqrt(v_hat) + eps) with the bias-corrected moments m_hat, v_hat (PyTorch's
    formulas), of SGD -lr g; the cosine with -g is 1 for SGD, positive for RMSprop (an
    elementwise positive rescaling of -g), and negative for Adam when the momentum points
    uphill for the current gradient (the paper's diagnostic, Section 4.2). Read right after a
    step, while ``.grad`` still holds that step's gradient (the trainer's "eval" event: the
    generator step leaves the critic's gradient alone). Steps before clipping.

    Parameters
    ----------
    optimizer : torch.optim.RMSprop, Adam or SGD
    n_seeds : int
        Parameters carry a leading seed dimension when > 1 (an ensemble); one cosine per seed.

    Returns
    -------
    list of float
        One cosine per seed (nan before the first step).
    """
    dots = torch.zeros(n_seeds, dtype=torch.float64)
    norms = torch.zeros(2, n_seeds, dtype=torch.float64)
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.RMSprop | torch.optim.SGD):
        raise _checks.BadValue("optimizer", optimizer, "torch.optim.Adam, RMSprop or SGD")
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if p.grad is None or (not state and not isinstance(optimizer, torch.optim.SGD)):
                return [math.nan] * n_seeds  # no step yet
            g = p.grad.double()
            if isinstance(optimizer, torch.optim.Adam):
                beta1, beta2 = group["betas"]
                t = float(state["step"])
                m_hat = state["exp_avg"].double() / (1 - beta1**t)
                v_hat = state["exp_avg_sq"].double() / (1 - beta2**t)
                step = m_hat / (v_hat.sqrt() + group["eps"])
            elif isinstance(optimizer, torch.optim.RMSprop):  # no momentum, not centred
                step = g / (state["square_avg"].double().sqrt() + group["eps"])
            else:  # plain SGD
                step = g
            g, step = g.reshape(n_seeds, -1), step.reshape(n_seeds, -1)
            dots += (g * step).sum(1)
            norms += torch.stack([g.square().sum(1), step.square().sum(1)])
    return (dots / norms.prod(0).sqrt()).tolist()


def retrained_estimate(trainer, steps: int) -> torch.Tensor:
    """The estimate of a copy of the critic after ``steps`` more critic steps (S,).

    The copy (with a copy of the optimiser's state) trains against the current, frozen
    generator on fresh batches from private streams (seeded by seed and iteration, so
    training is not disturbed and a resumed study draws the same), then is evaluated on the
    trainer's evaluation points. Beside the running critic's estimate on the same points it
    says how far the critic lags its optimum: a critic that keeps up gains little.
    """
    from labkit.train import build_optimizer

    critic = copy.deepcopy(trainer.critic)
    optimizer = build_optimizer(trainer.config, critic.parameters())
    # a deep copy: load_state_dict keeps tensors that need no conversion, which would let the
    # copy's steps move the running optimiser's moments
    optimizer.load_state_dict(copy.deepcopy(trainer.opt_critic.state_dict()))
    rngs = [torch.Generator().manual_seed(s * 1_000_003 + trainer.iteration + 7)
            for s in trainer.seeds]
    running = trainer.critic, trainer.opt_critic, trainer.rngs
    trainer.critic, trainer.opt_critic, trainer.rngs = critic, optimizer, rngs
    try:  # the trainer's own critic phase, on the copy
        trainer.critic_phase(steps)
    finally:
        trainer.critic, trainer.opt_critic, trainer.rngs = running
    evaluator = trainer.evaluator
    with torch.no_grad():
        fake = trainer.generator(evaluator.z)
    return _estimate(trainer.config.loss, critic, evaluator.real, fake)


class _Recorder:
    """Trainer callback: what the study records besides the trainer's own evaluations.

    At every evaluation: :func:`update_cosine` of the critic's optimiser per seed, and with
    ``lag_steps`` the :func:`retrained_estimate`; every ``snapshot_every``-th iteration, the
    first seed's evaluation samples (first 128) and its critic's values on a 20 x 20 grid
    (critic in eval mode, so spectral norm's power iteration is not advanced), to 4
    significant digits. Its records are part of the trainer's checkpoints (``state_dict``),
    so they survive a stop.
    """

    def __init__(self, snapshot_every: int, target, lag_steps: int = 0) -> None:
        self.every, self.grid, self.lag_steps = snapshot_every, grid_points(target), lag_steps
        self.snapshots: list[dict[str, Any]] = []
        self.extra: list[dict[str, Any]] = []

    def __call__(self, event: str, trainer) -> None:
        if event != "eval":
            return
        row = {"iteration": trainer.iteration,
               "update_cosine": update_cosine(trainer.opt_critic, len(trainer.seeds))}
        if self.lag_steps:
            row["w_estimate_retrained"] = retrained_estimate(trainer, self.lag_steps).tolist()
        self.extra.append(_rounded(row))
        if trainer.iteration % self.every == 0:
            self.snapshots.append(self._snapshot(trainer))

    def _snapshot(self, trainer) -> dict[str, Any]:
        critic = trainer.critic
        was_training = critic.training
        critic.eval()
        with torch.no_grad():
            grid = self.grid.to(trainer.device)
            if trainer.ensemble:
                grid = grid.expand(len(trainer.seeds), *grid.shape)
            values = critic(grid)
        critic.train(was_training)
        values = values[0] if trainer.ensemble else values
        samples = trainer.samples()[1][0][:128]
        return {"iteration": trainer.iteration, "samples": _rounded(samples.tolist(), 4),
                "critic": _rounded(values.cpu().tolist(), 4)}

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": self.snapshots, "extra": self.extra}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.snapshots, self.extra = list(state["snapshots"]), list(state["extra"])


def _rounded(value: Any, digits: int = 5) -> Any:
    """Floats rounded to ``digits`` significant digits (non-finite ones become None), in
    nested lists and dicts: keeps the results file small and valid JSON."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value


class PairInterrupted(Exception):
    """Ctrl-C stopped a (method, target) run; its checkpoint is kept in the work folder."""

    def __init__(self, key: str, iteration: int) -> None:
        super().__init__(key, iteration)
        self.key, self.iteration = key, iteration

    def __str__(self) -> str:
        return f"{self.key} stopped at iteration {self.iteration}"


def pair_folder(work: str | os.PathLike, key: str) -> Path:
    """The work folder of one ``"method/target"`` run: ``work/method_target``."""
    return Path(work) / key.replace("/", "_").replace(" ", "-")


def run_one(study: StudyConfig, method: str, target: str, work: str | os.PathLike | None = None,
            progress: bool = False) -> dict:
    """Train one (method, target) ensemble and evaluate it.

    With ``work``, the trainer checkpoints every ``study.checkpoint_every`` iterations into
    :func:`pair_folder` (claimed as a :mod:`labkit.rundir` run folder) and a call that finds a
    checkpoint there continues from it: the result is the same as in one go, timings aside.
    Ctrl-C stops at the next step, saves, and raises :class:`PairInterrupted`.

    Returns
    -------
    dict
        ``seconds`` (training and evaluation wall time, over resumes), ``diverged`` (None or
        the message), ``iterations``, ``final``: one dict per seed (:func:`sample_metrics` on
        ``eval_samples`` fresh points, plus ``w_estimate``, the critic's estimate on them: W for
        WGANs, the JS lower bound for GANs), ``curves``: ``{"iteration", "seed", "w1_exact",
        "w_estimate", "modes", "hq_percent", "update_cosine"[, "w_estimate_retrained"]}``
        (lists, one entry per evaluation and seed), ``snapshots`` and ``convergence``
        (:func:`run_convergence`).
    """
    from labkit import toys

    key = f"{method}/{target}"
    recorder = _Recorder(study.snapshot_every, toys.make_target(target), study.lag_steps)
    if work is None:
        return _train_and_score(study, method, target, None, recorder, progress)
    folder = pair_folder(work, key)
    with rundir.claim(folder, "--work", fresh=False, outputs=("checkpoint.pt",)):
        return _train_and_score(study, method, target, folder / "checkpoint.pt", recorder,
                                progress)


def _train_and_score(study: StudyConfig, method: str, target: str, checkpoint: Path | None,
                     recorder: _Recorder, progress: bool) -> dict:
    from labkit.train import DivergenceError, Trainer

    config = study.train_config(method, target, None if checkpoint is None else str(checkpoint))
    if checkpoint is not None and checkpoint.exists():
        try:
            trainer = Trainer.resume(checkpoint, config, callbacks=[recorder], progress=progress)
        except ValueError as err:
            raise ValueError(f"{checkpoint} does not continue this study ({err}); delete its "
                             "folder or choose another --work") from None
    else:
        trainer = Trainer(config, callbacks=[recorder], progress=progress)
    diverged = None
    try:
        trainer.run()
    except DivergenceError as err:
        diverged = str(err)
    if trainer.interrupted:
        raise PairInterrupted(f"{method}/{target}", trainer.iteration)
    trained = time.perf_counter()  # trainer.elapsed holds the training so far, over resumes
    real, z = _final_points(trainer, study.eval_samples)
    with torch.no_grad():
        fake = trainer.generator(z if trainer.ensemble else z[0])
    fake = fake if trainer.ensemble else fake[None]
    critic = trainer.critic
    estimate = (_estimate(config.loss, critic, real, fake) if trainer.ensemble
                else _estimate(config.loss, critic, real[0], fake[0]))
    final = [{"seed": seed, **sample_metrics(fake[s], real[s], trainer.target),
              "w_estimate": float(estimate[s])} for s, seed in enumerate(trainer.seeds)]
    run = {"seconds": trainer.elapsed + time.perf_counter() - trained, "diverged": diverged,
           "iterations": trainer.iteration, "final": final,
           "curves": _curves(trainer.history.evals, recorder.extra),
           "snapshots": recorder.snapshots}
    run = _rounded(run)
    run["convergence"] = _rounded(run_convergence(run))
    return run


def _curves(evals: list[dict], extra: list[dict]) -> dict[str, list]:
    """The trainer's evaluations and the recorder's extras as flat per-(iteration, seed) lists."""
    curves = {"iteration": [e["iteration"] for e in evals], "seed": [e["seed"] for e in evals],
              "w1_exact": [e["w1_exact"] for e in evals],
              "w_estimate": [e["w_estimate_eval"] for e in evals],
              "modes": [e["modes"] for e in evals],
              "hq_percent": [100.0 * e["hq_fraction"] for e in evals]}
    by_iteration = {row["iteration"]: row for row in extra}
    position = {seed: k for k, seed in enumerate(sorted({e["seed"] for e in evals}))}
    for field in ("update_cosine", "w_estimate_retrained"):
        if any(field in row for row in extra):
            curves[field] = [by_iteration[e["iteration"]][field][position[e["seed"]]]
                             for e in evals]
    return curves


# --------------------------------------------------------------------------- the study file


def _write_atomic(data: dict, path: Path) -> None:
    """Write ``data`` as JSON to ``path`` atomically (:func:`labkit.rundir.atomic_path`)."""
    with rundir.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n")


def load_results(path: str | os.PathLike) -> dict:
    """Read a study file written by :func:`run_study`.

    Returns
    -------
    dict
        ``format``, ``labkit``, ``torch``, ``config`` (a :class:`StudyConfig` as a dict),
        ``methods`` (label, settings and source of each method), ``baselines``
        (:func:`baselines`), ``runs`` (``{"method/target": run_one's dict}``), ``wall_seconds``,
        ``load_average``, ``jobs``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no study results file there")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"path={str(path)!r}: not a study file (invalid JSON: {err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("format"), int):
        raise ValueError(f"path={str(path)!r}: not a study file of format {FORMAT}")
    if data["format"] != FORMAT:
        raise ValueError(f"path={str(path)!r}: a study file of format {data['format']}, from "
                         f"another labkit (this one reads format {FORMAT}); delete it and run the "
                         "study again to remake it")
    return data


def default_work(path: str | os.PathLike) -> Path:
    """The work folder of the results file ``path``: ``runs/<file name without .json>``."""
    return Path("runs") / Path(path).stem


def run_study(study: StudyConfig, path: str | os.PathLike, progress: bool = True,
              log: Callable[[str], None] = print, jobs: int = 1,
              work: str | os.PathLike | None = None) -> dict:
    """Run the baselines and every (method, target) of ``study`` not yet in ``path``.

    The results file is locked for the whole call (:func:`labkit.rundir.claim_file`: a
    second study on the same file is refused). An existing file is continued only when it was
    made with the same config, ``threads`` included (else ValueError naming the differing
    fields); its finished runs are kept. The file is replaced atomically after the baselines
    and after each finished run; a run in progress checkpoints into ``work`` (default
    :func:`default_work`), so an interrupted study loses at most ``checkpoint_every``
    iterations of each run in progress. A finished run's folder is deleted once the file
    holds it.

    Parameters
    ----------
    study : StudyConfig
    path : str or PathLike
        The results file (JSON).
    progress : bool
        Progress bars (only with ``jobs=1``).
    log : callable
        Receives one line per finished run.
    jobs : int, default 1
        Runs trained at once, each in its own process (``spawn``), which dies with this one
        (Linux). On two cores, two jobs of one thread each keep both cores busy and, unlike
        two threads in one process, do not stall when another program takes a core.
    work : str or PathLike, optional
        The folder of the runs' checkpoints.

    Returns
    -------
    dict
        The results, as :func:`load_results` reads them; ``wall_seconds`` is the wall time of
        all calls together, ``runs[key]["seconds"]`` each run's own.

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C: the runs in progress were stopped and checkpointed (those of other
        processes too); :func:`progress_report` says what is on disk.
    """
    jobs = _checks.integer("jobs", jobs, minimum=1)
    path = Path(path)
    work = default_work(path) if work is None else Path(work)
    with rundir.claim_file(path, "--out", "study"):
        data = _open_results(study, path)
        started, wall_before = time.perf_counter(), data["wall_seconds"]

        def save() -> None:
            data["wall_seconds"] = round(wall_before + time.perf_counter() - started, 1)
            data["load_average"] = [round(x, 2) for x in os.getloadavg()]
            data["jobs"] = jobs
            _write_atomic(data, path)

        if "baselines" not in data:
            data["baselines"] = baselines(study)
            save()
            log("baselines: " + "; ".join(f"{k} {_one_line(b)}"
                                          for k, b in data["baselines"].items()))
        order = [f"{m}/{t}" for t in study.targets for m in study.methods]
        for key in order:
            if key in data["runs"]:
                log(f"{key}: done before, kept")

        def finished(key: str, run: dict) -> None:
            runs = {**data["runs"], key: run}
            data["runs"] = {k: runs[k] for k in order if k in runs}
            save()
            shutil.rmtree(pair_folder(work, key), ignore_errors=True)
            log(f"{key}: {run['seconds']:.0f} s; {_one_line(run)}; "
                f"{run['convergence']['verdict']}")

        todo = [key for key in order if key not in data["runs"]]
        if jobs == 1:
            try:
                for key in todo:
                    finished(key, run_one(study, *key.split("/"), work=work,
                                          progress=progress))
            except PairInterrupted as err:  # the trainer saw Ctrl-C and saved a checkpoint
                raise KeyboardInterrupt(str(err)) from None
        else:  # longest runs first (gradient penalty, many critic steps, ...) so jobs end together
            todo.sort(key=lambda key: -_relative_cost(key.split("/")[0]))
            _run_in_processes(study, todo, jobs, work, finished,
                              started=lambda key: log(f"{key}: started"))
        for key in order:  # folders of runs that finished but were not cleaned up (a crash)
            shutil.rmtree(pair_folder(work, key), ignore_errors=True)
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
    return data


def _open_results(study: StudyConfig, path: Path) -> dict:
    """The results in ``path`` if it continues ``study``; a new, empty study if none."""
    import labkit

    config = study.to_dict()
    if path.exists():
        data = load_results(path)
        diffs = [f"{k}: file {data['config'].get(k)!r}, asked {v!r}"
                 for k, v in config.items() if data["config"].get(k) != v]
        if diffs:
            raise ValueError(f"path={str(path)!r} holds a study with another config ("
                             + "; ".join(diffs) + "); choose another path or delete it")
        return data
    return {"format": FORMAT, "labkit": labkit.__version__, "torch": torch.__version__,
            "config": config, "runs": {}, "wall_seconds": 0.0,
            "methods": {k: dataclasses.asdict(ALL_METHODS[k]) for k in study.methods}}


def _relative_cost(method: str) -> float:
    """Rough cost of a method's generator iteration, in units of one forward-backward pass."""
    settings = ALL_METHODS[method].settings
    return settings["n_critic"] * (2.0 if settings["constraint"] == "gp" else 1.0) + 1.0


def _one_line(run: dict) -> str:
    cells = []
    for field in ("modes", "hq_percent", "w1_exact"):
        mean, se, _ = mean_se(_measured(run, field))
        cells.append(f"{field} {mean:.3g} +- {se:.2g}")
    return ", ".join(cells)


# ----------------------------------------------------------------- runs in other processes


def _die_with_parent(parent: int) -> None:
    """Make this process get SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``), and
    leave the parent's process group, so that a Ctrl-C at the terminal reaches the parent
    only (which then stops this process once, cleanly)."""
    os.setpgrp()
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _pair_worker(study: StudyConfig, key: str, work: str, results, parent: int) -> None:
    """Body of a worker process: one run, its outcome (the run, or the exception) queued."""
    _die_with_parent(parent)
    try:
        outcome: Any = run_one(study, *key.split("/"), work=work)
    except KeyboardInterrupt:  # stopped outside the training loop (its last checkpoint kept)
        outcome = PairInterrupted(key, -1)
    except Exception as err:  # noqa: BLE001  (sent to the parent, which raises it)
        outcome = err if _picklable(err) else RuntimeError(f"{type(err).__name__}: {err}")
    results.put((key, outcome))


def _picklable(value: Any) -> bool:
    import pickle

    try:
        pickle.loads(pickle.dumps(value))
    except Exception:  # noqa: BLE001
        return False
    return True


def _run_in_processes(study: StudyConfig, keys: list[str], jobs: int, work: Path,
                      finished: Callable[[str, dict], None],
                      started: Callable[[str], None] = lambda key: None) -> None:
    """Run ``keys`` in up to ``jobs`` worker processes, calling ``started`` as each begins and
    ``finished`` with each result.

    Ctrl-C (KeyboardInterrupt here) sends each running worker one SIGINT, so its trainer
    saves a checkpoint and stops; runs that finish meanwhile are still passed to ``finished``;
    then KeyboardInterrupt is raised again. A second Ctrl-C kills the workers at once (their
    last checkpoints stay).
    """
    context = multiprocessing.get_context("spawn")  # no fork of torch's OpenMP pool
    results = context.Queue()
    pending, running = list(keys), {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                key = pending.pop(0)
                process = context.Process(target=_pair_worker, name=f"labkit study {key}",
                                          args=(study, key, str(work), results, os.getpid()),
                                          daemon=True)
                process.start()
                running[key] = process
                started(key)
            _collect(results, running, finished, timeout=1.0)
    except KeyboardInterrupt:
        for process in running.values():
            _signal(process, signal.SIGINT)
        try:
            while running:
                _collect(results, running, finished, timeout=1.0, stopping=True)
        except KeyboardInterrupt:
            pass
        raise
    finally:
        for process in running.values():
            _signal(process, signal.SIGKILL)
            process.join()


def _signal(process, signum: int) -> None:
    if process.is_alive():
        try:
            os.kill(process.pid, signum)
        except ProcessLookupError:
            pass


def _collect(results, running: dict, finished: Callable[[str, dict], None], timeout: float,
             stopping: bool = False) -> None:
    """Wait up to ``timeout`` s for one worker's outcome and act on it; notice dead workers."""
    try:
        key, outcome = results.get(timeout=timeout)
    except queue.Empty:
        for key, process in list(running.items()):
            if process.exitcode not in (None, 0):  # died without a word (killed, crashed)
                running.pop(key)
                if not stopping:
                    raise RuntimeError(f"the worker of {key} died (exit code "
                                       f"{process.exitcode}); run the study again to continue "
                                       "from its last checkpoint") from None
        return
    running.pop(key).join()
    if isinstance(outcome, PairInterrupted):
        if not stopping:
            raise KeyboardInterrupt(str(outcome))
        return
    if isinstance(outcome, BaseException):
        raise outcome
    finished(key, outcome)


# ----------------------------------------------------------------- what a stopped study kept


def progress_report(study: StudyConfig, path: str | os.PathLike,
                    work: str | os.PathLike | None = None) -> str:
    """What a (stopped) study has on disk, in one line: the finished runs in the results
    file and the checkpoints of unfinished ones in the work folder (read back, so it is
    true however the study stopped)."""
    from labkit import checkpoint

    path = Path(path)
    work = default_work(path) if work is None else Path(work)
    order = [f"{m}/{t}" for t in study.targets for m in study.methods]
    try:
        done = set(load_results(path)["runs"]) if path.exists() else set()
    except ValueError:
        done = set()
    parts = [f"{str(path)!r} holds {len(done)} of {len(order)} finished (method, target) runs"
             + ("" if path.exists() else " (it was not written yet)")]
    kept = []
    for key in order:
        ckpt = pair_folder(work, key) / "checkpoint.pt"
        if key not in done and ckpt.is_file():
            try:
                kept.append(f"{key} at iteration {checkpoint.load(ckpt)['iteration']}")
            except (ValueError, KeyError):
                kept.append(f"{key} (unreadable checkpoint, will restart)")
    if kept:
        parts.append(f"checkpoints in {str(work)!r}: " + ", ".join(kept))
    return "; ".join(parts)


def command_line(argv: Sequence[str]) -> str:
    """``argv`` (the study command's arguments) as a line to paste into a shell."""
    return "python -m labkit " + shlex.join(argv)


# --------------------------------------------------------------------------- tables


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


# --------------------------------------------------------------------------- cost


def step_matmuls(config) -> list[tuple[str, int, int, int, int]]:
    """The matrix products of one generator iteration of a toy ensemble, from layer shapes.

    For :class:`labkit.train.Trainer`'s loop on the CPU (no fast path) with MLPs, the WGAN or
    GAN losses, and clipping or no constraint: the critic phase runs the frozen generator once
    on ``n_critic * m`` codes, then per critic step one critic pass on the 2m real and fake
    points, its backward (weight gradients of every layer, input gradients of all but the
    first, whose input needs none); the generator step runs generator and critic on m codes
    and back-propagates to the generator's weights (critic: input gradients only; generator:
    weight gradients of every layer, input gradients of all but the first).

    Parameters
    ----------
    config : labkit.train.TrainConfig
        A toy config with ``constraint`` in ("clip", "none").

    Returns
    -------
    list of (kind, S, B, i, o)
        One entry per batched product (S, B, i) x (S, i, o) or its backward transposes;
        ``kind`` is "forward", "grad_input" ((S, B, o) x (S, o, i)) or "grad_weight"
        ((S, i, B) x (S, B, o)). Each costs 2 S B i o floating-point operations.
    """
    from labkit import toys

    if config.constraint not in ("clip", "none") or config.target not in toys.TARGETS:
        raise _checks.BadValue("config", f"constraint={config.constraint!r}, "
                               f"target={config.target!r}", "a toy config with clipping or "
                               "no constraint (the penalty's double backward is not counted)")
    S, m, n = config.n_seeds, config.batch_size, config.n_critic
    dim = toys.make_target(config.target).dim
    gen = list(zip([config.nz] + [config.hidden] * config.depth,
                   [config.hidden] * config.depth + [dim], strict=True))
    critic = list(zip([dim] + [config.hidden] * config.depth,
                      [config.hidden] * config.depth + [1], strict=True))
    out = [("forward", S, n * m, i, o) for i, o in gen]  # frozen generator, all n batches
    for _ in range(n):
        out += [("forward", S, 2 * m, i, o) for i, o in critic]
        out += [("grad_weight", S, 2 * m, i, o) for i, o in critic]
        out += [("grad_input", S, 2 * m, i, o) for i, o in critic[1:]]
    out += [("forward", S, m, i, o) for i, o in gen + critic]
    out += [("grad_input", S, m, i, o) for i, o in critic]
    out += [("grad_weight", S, m, i, o) for i, o in gen]
    out += [("grad_input", S, m, i, o) for i, o in gen[1:]]
    return out


def step_flops(config) -> int:
    """Floating-point operations of the matrix products of one generator iteration
    (:func:`step_matmuls`), 2 S B i o each."""
    return sum(2 * s * b * i * o for _, s, b, i, o in step_matmuls(config))


__all__ = ["METHODS", "DIAGNOSTIC_METHODS", "ALL_METHODS", "TARGETS", "BASELINES", "QUICK",
           "DIAGNOSTICS", "QUICK_DIAGNOSTICS", "Method", "StudyConfig", "rankdata", "spearman",
           "mean_se", "convergence", "run_convergence", "CONVERGENCE_TOLERANCE", "CONVERGENCE_Z",
           "support_only_points", "choose_spread", "baselines", "SPREADS", "SPREAD_SEEDS",
           "baseline_points", "sample_metrics", "update_cosine", "retrained_estimate", "run_one",
           "PairInterrupted", "pair_folder", "run_study", "load_results", "default_work",
           "progress_report", "command_line", "summary_table", "captures_modes", "loss_tracking",
           "comparison_lines", "convergence_lines", "format_cell", "TABLE_FIELDS", "grid_points",
           "PUBLISHED", "step_matmuls", "step_flops", "FORMAT", "seed_curves",
           "baseline_levels", "baseline_samples", "collapse_kind", "collapse_lines"]
