"""The mode-collapse study of notebook 03: every method on the 8-Gaussian ring and the 25-Gaussian
grid, several seeds trained together as one ensemble per (method, target), scored as in VEEGAN /
PacGAN (modes captured, % high quality, reverse KL) and by exact W1.

:func:`run_study` trains, evaluates and writes one JSON file holding the config, the labkit
version, per-seed final metrics, the critic-estimate-versus-exact-W1 curves and a few snapshots
for figures. The file is rewritten atomically after each finished (method, target), and a run that
finds it again skips what is done, so an interrupted study resumes. :func:`summary_table` and
:func:`loss_tracking` turn the file into the notebook's tables (mean +- standard error over seeds).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit import rundir

FORMAT = 1
TARGETS = ("ring", "grid")


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

#: The methods, in table order. GANs take one discriminator step per generator step (Goodfellow
#: et al. 2014; as in VEEGAN's and PacGAN's baselines); the WGANs take n_critic = 5.
METHODS: dict[str, Method] = {
    "gan": Method("GAN (minimax)", {"loss": "gan", "constraint": "none", "n_critic": 1,
                                    **_ADAM_GP},
                  "Goodfellow et al. 2014, log(1 - D) generator loss; Adam 1e-4, betas (0.5, 0.9) "
                  "as WGAN-GP's gan_toy.py"),
    "gan-logd": Method("GAN (-log D)", {"loss": "gan-logd", "constraint": "none", "n_critic": 1,
                                        **_ADAM_GP},
                       "Goodfellow et al. 2014, non-saturating -log D loss; Adam as above"),
    "wgan-clip": Method("WGAN, clipping (RMSprop 5e-4)",
                        {**_CLIP, "optimizer": "rmsprop", "lr": 5e-4},
                        "Algorithm 1 with the learning rate raised tenfold (toy calibration, "
                        "PAPER.md: 5e-5 is slow at this budget); c = 0.01, n_critic = 5"),
    "wgan-clip-paper": Method("WGAN, clipping (paper: RMSprop 5e-5)",
                              {**_CLIP, "optimizer": "rmsprop", "lr": 5e-5},
                              "Algorithm 1 exactly: RMSprop 5e-5, c = 0.01, n_critic = 5"),
    "wgan-clip-adam": Method("WGAN, clipping (Adam 5e-4)",
                             {**_CLIP, "optimizer": "adam", "lr": 5e-4, "betas": (0.5, 0.999)},
                             "as wgan-clip with the authors' --adam option (betas (0.5, 0.999)) "
                             "instead of RMSprop: the paper's Section 4 momentum warning"),
    "wgan-gp": Method("WGAN-GP (lambda 10)", {"loss": "wgan", "constraint": "gp",
                                              "gp_lambda": 10.0, "n_critic": 5, **_ADAM_GP},
                      "Gulrajani et al. 2017: lambda = 10, n_critic = 5, Adam 1e-4, betas "
                      "(0.5, 0.9) as in its gan_toy.py"),
    "wgan-sn": Method("WGAN, spectral norm", {"loss": "wgan", "constraint": "sn", "n_critic": 5,
                                              **_ADAM_GP},
                      "Miyato et al. 2018 spectral normalisation of every critic layer (one "
                      "power iteration per step), WGAN loss, n_critic = 5, Adam as WGAN-GP"),
}


@dataclass
class StudyConfig:
    """The budget and scope of a study; every method and target gets the same budget.

    Parameters
    ----------
    methods, targets : tuple of str
        Keys of :data:`METHODS` and of :data:`TARGETS`.
    n_seeds : int, default 8
        Seeds ``first_seed, ..., first_seed + n_seeds - 1``, trained together as one ensemble.
    iters : int, default 1500
        Generator iterations per run.
    batch_size : int, default 64
        Batch m (Algorithm 1's).
    hidden, depth, nz
        The MLPs: ``depth`` hidden ReLU layers of ``hidden``; latent dimension ``nz``.
    curve_every, curve_samples : int
        Evaluate every ``curve_every`` iterations on ``curve_samples`` fixed points per seed
        (exact W1, critic estimate, modes): the curves.
    eval_samples : int, default 2500
        Fresh samples per seed for the final table (VEEGAN / PacGAN use 2,500).
    snapshot_every : int
        Iterations between the snapshots (seed ``first_seed``'s samples and critic on a grid).
    threads : int, default 0
        Torch threads (0: labkit's choice by model size, see ``TrainConfig.threads``).
    """

    methods: tuple[str, ...] = tuple(METHODS)
    targets: tuple[str, ...] = TARGETS
    n_seeds: int = 8
    first_seed: int = 0
    iters: int = 1500
    batch_size: int = 64
    hidden: int = 128
    depth: int = 3
    nz: int = 2
    curve_every: int = 100
    curve_samples: int = 500
    eval_samples: int = 2500
    snapshot_every: int = 500
    threads: int = 0

    def __post_init__(self) -> None:
        self.methods, self.targets = tuple(self.methods), tuple(self.targets)
        for name, values, allowed in (("methods", self.methods, tuple(METHODS)),
                                      ("targets", self.targets, TARGETS)):
            bad = [v for v in values if v not in allowed]
            if bad or not values or len(set(values)) != len(values):
                raise ValueError(f"{name}={list(values)!r} is not allowed; choose distinct "
                                 f"values among {', '.join(allowed)}")
        for name in ("n_seeds", "iters", "batch_size", "hidden", "depth", "nz", "curve_every",
                     "curve_samples", "eval_samples", "snapshot_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= 1")
        for name in ("first_seed", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def train_config(self, method: str, target: str):
        """The :class:`labkit.train.TrainConfig` of one (method, target) ensemble."""
        from labkit.train import TrainConfig

        return TrainConfig(target=target, iters=self.iters, batch_size=self.batch_size,
                           hidden=self.hidden, depth=self.depth, nz=self.nz,
                           seed=self.first_seed, n_seeds=self.n_seeds,
                           eval_every=self.curve_every, eval_samples=self.curve_samples,
                           checkpoint_every=self.iters + 1, threads=self.threads,
                           **METHODS[method].settings)


QUICK = {"n_seeds": 2, "iters": 60, "curve_every": 20, "curve_samples": 200,
         "eval_samples": 500, "snapshot_every": 30}
"""Overrides of :class:`StudyConfig` for a smoke run (``LABKIT_QUICK=1``)."""


# --------------------------------------------------------------------------- statistics


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``x``, ties getting the mean of the ranks they span (``scipy``'s default).

    >>> rankdata([10.0, 30.0, 20.0, 20.0]).tolist()
    [1.0, 4.0, 2.5, 2.5]
    """
    x = np.asarray(x, dtype=np.float64)
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

    rho = cov(R(x), R(y)) / (std R(x) std R(y)); ``nan`` when either side is constant or when
    fewer than two pairs are finite (pairs with a non-finite value are dropped).

    Parameters
    ----------
    x, y : sequence of float, same length n

    Returns
    -------
    float in [-1, 1], or nan

    Examples
    --------
    >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
    0.8
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of one length; got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2:
        return math.nan
    rx, ry = rankdata(x[keep]), rankdata(y[keep])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denominator if denominator > 0 else math.nan


def mean_se(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean and standard error s / sqrt(n) (s with ddof 1) of the finite ``values``, and n.

    >>> mean_se([1.0, 2.0, 3.0, float("nan")])
    (2.0, 0.5773502691896258, 3)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, 0
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se, len(v)


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
    each seed's own fourth SeedSequence child (training used the first three)."""
    gens = [torch.Generator().manual_seed(int(
        np.random.SeedSequence(s).spawn(4)[3].generate_state(1, dtype=np.uint64)[0] >> 1))
        for s in trainer.seeds]
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


class _Snapshots:
    """Trainer callback: at every ``every``-th iteration, the first seed's evaluation samples
    (first 128) and its critic's values on a 20 x 20 grid (critic in eval mode, so spectral
    norm's power iteration is not advanced), to 4 significant digits."""

    def __init__(self, every: int, target) -> None:
        self.every, self.grid = every, grid_points(target)
        self.records: list[dict[str, Any]] = []

    def __call__(self, event: str, trainer) -> None:
        if event != "eval" or trainer.iteration % self.every:
            return
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
        self.records.append({"iteration": trainer.iteration,
                             "samples": _rounded(samples.tolist(), 4),
                             "critic": _rounded(values.cpu().tolist(), 4)})


def _rounded(value: Any, digits: int = 5) -> Any:
    """Floats rounded to ``digits`` significant digits (non-finite ones become None), in
    nested lists and dicts: keeps the results file small and valid JSON."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else None
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value


def run_one(study: StudyConfig, method: str, target: str, progress: bool = False) -> dict:
    """Train one (method, target) ensemble and evaluate it.

    Returns
    -------
    dict
        ``seconds`` (training and evaluation wall time), ``diverged`` (None or the message),
        ``final``: one dict per seed (:func:`sample_metrics` on ``eval_samples`` fresh points,
        plus ``w_estimate``, the critic's estimate on them: W for WGANs, the JS lower bound for
        GANs), ``curves``: ``{"iteration": [...], "seed": [...], "w1_exact": [...],
        "w_estimate": [...], "modes": [...], "hq_percent": [...]}`` at every ``curve_every``
        iterations on the fixed ``curve_samples`` points, and ``snapshots``.
    """
    from labkit import objectives, toys
    from labkit.train import DivergenceError, Trainer

    started = time.perf_counter()
    config = study.train_config(method, target)
    snapshots = _Snapshots(study.snapshot_every, toys.make_target(target))
    trainer = Trainer(config, callbacks=[snapshots], progress=progress)
    diverged = None
    try:
        trainer.run()
    except DivergenceError as err:
        diverged = str(err)
    real, z = _final_points(trainer, study.eval_samples)
    with torch.no_grad():
        fake = trainer.generator(z if trainer.ensemble else z[0])
        fake = fake if trainer.ensemble else fake[None]
        critic_real = trainer.critic(real if trainer.ensemble else real[0])
        critic_fake = trainer.critic(fake if trainer.ensemble else fake[0])
        estimate = objectives.distance_estimate(
            config.loss, objectives.critic_loss(config.loss, critic_real, critic_fake))
    estimate = estimate.reshape(-1)
    final = [{"seed": seed, **sample_metrics(fake[s], real[s], trainer.target),
              "w_estimate": float(estimate[s])} for s, seed in enumerate(trainer.seeds)]
    evals = trainer.history.evals
    curves = {"iteration": [e["iteration"] for e in evals], "seed": [e["seed"] for e in evals],
              "w1_exact": [e["w1_exact"] for e in evals],
              "w_estimate": [e["w_estimate_eval"] for e in evals],
              "modes": [e["modes"] for e in evals],
              "hq_percent": [100.0 * e["hq_fraction"] for e in evals]}
    return _rounded({"seconds": time.perf_counter() - started, "diverged": diverged,
                     "iterations": trainer.iteration, "final": final, "curves": curves,
                     "snapshots": snapshots.records})


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
        ``methods`` (label, settings and source of each method), ``runs``
        (``{"method/target": run_one's dict}``) and ``wall_seconds``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no study results file there")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"path={str(path)!r}: not a study file (invalid JSON: {err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"path={str(path)!r}: not a study file of format {FORMAT}")
    return data


def run_study(study: StudyConfig, path: str | os.PathLike, progress: bool = True,
              log: Callable[[str], None] = print, jobs: int = 1) -> dict:
    """Run every (method, target) of ``study`` not yet in the file at ``path``, saving after each.

    An existing file is continued only when it was made with the same config, ``threads``
    aside (else ValueError naming the differing fields); its finished runs are kept, not
    redone. The file is replaced atomically after each run, so an interrupted study loses at
    most the runs in progress.

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
        Runs trained at once, each in its own process (``spawn``). On two cores, two jobs of one
        thread each keep both cores busy and, unlike two threads in one process, do not stall
        when another program takes a core.

    Returns
    -------
    dict
        The results, as :func:`load_results` reads them; ``wall_seconds`` is the wall time of
        all calls together, ``runs[key]["seconds"]`` each run's own.
    """
    import labkit

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} is not allowed; it must be an integer >= 1")
    path = Path(path)
    config = study.to_dict()
    if path.exists():
        data = load_results(path)
        diffs = [f"{k}: file {data['config'].get(k)!r}, asked {v!r}"
                 for k, v in config.items() if k != "threads" and data["config"].get(k) != v]
        if diffs:
            raise ValueError(f"path={str(path)!r} holds a study with another config ("
                             + "; ".join(diffs) + "); choose another path or delete it")
    else:
        data = {"format": FORMAT, "labkit": labkit.__version__, "torch": torch.__version__,
                "config": config, "runs": {}, "wall_seconds": 0.0,
                "methods": {k: dataclasses.asdict(m) for k, m in METHODS.items()
                            if k in study.methods}}
    order = [f"{m}/{t}" for t in study.targets for m in study.methods]
    for key in order:
        if key in data["runs"]:
            log(f"{key}: done before, kept")
    todo = [key for key in order if key not in data["runs"]]
    started, wall_before = time.perf_counter(), data["wall_seconds"]

    def save(key: str, run: dict) -> None:
        runs = {**data["runs"], key: run}
        data["runs"] = {k: runs[k] for k in order if k in runs}
        data["wall_seconds"] = round(wall_before + time.perf_counter() - started, 1)
        data["load_average"] = [round(x, 2) for x in os.getloadavg()]
        data["jobs"], data["threads"] = jobs, study.threads
        _write_atomic(data, path)
        log(f"{key}: {run['seconds']:.0f} s; " + _one_line(run))

    if jobs == 1:
        for key in todo:
            save(key, run_one(study, *key.split("/"), progress=progress))
        return data
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # no fork of torch's OpenMP pool
    # Longest runs first (gradient penalty, then n_critic = 5, then GANs) so the jobs end together.
    todo.sort(key=lambda key: -_relative_cost(key.split("/")[0]))
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = {pool.submit(run_one, study, *key.split("/")): key for key in todo}
        for future in as_completed(futures):
            save(futures[future], future.result())
    return data


def _relative_cost(method: str) -> float:
    """Rough cost of a method's generator iteration, in units of one forward-backward pass."""
    settings = METHODS[method].settings
    return settings["n_critic"] * (2.0 if settings["constraint"] == "gp" else 1.0) + 1.0


def _one_line(run: dict) -> str:
    cells = []
    for field in ("modes", "hq_percent", "w1_exact"):
        mean, se, _ = mean_se([r[field] for r in run["final"]])
        cells.append(f"{field} {mean:.3g} +- {se:.2g}")
    return ", ".join(cells)


# --------------------------------------------------------------------------- tables


TABLE_FIELDS = ("modes", "hq_percent", "reverse_kl", "w1_exact")


def summary_table(data: dict) -> list[dict[str, Any]]:
    """One row per (method, target): mean, standard error and n of each final metric.

    Returns
    -------
    list of dict
        ``{"method", "label", "target", "n_seeds", "<field>": (mean, se, n), ...}`` for each
        field of :data:`TABLE_FIELDS`; ``reverse_kl`` averages only seeds with high-quality
        samples (n says how many).
    """
    rows = []
    for key, run in data["runs"].items():
        method, target = key.split("/")
        row = {"method": method, "label": data["methods"][method]["label"], "target": target,
               "n_seeds": len(run["final"])}
        for field in TABLE_FIELDS:
            row[field] = mean_se([np.nan if r[field] is None else r[field]
                                  for r in run["final"]])
        rows.append(row)
    return rows


def loss_tracking(data: dict) -> list[dict[str, Any]]:
    """Does the critic's estimate track the exact W1 over training? Spearman per seed.

    For each run and seed, rho = spearman(estimate_t, W1_t) over the evaluation iterations
    t > 0 (at t = 0 the critic is untrained and, for clipping, not yet clipped, so its value
    estimates nothing); then mean +- standard error over seeds.

    Returns
    -------
    list of dict
        ``{"method", "target", "rho": [per seed], "mean", "se"}``.
    """
    rows = []
    for key, run in data["runs"].items():
        method, target = key.split("/")
        c = run["curves"]
        seeds = sorted(set(c["seed"]))
        rho = []
        for seed in seeds:
            idx = [i for i, (s, t) in enumerate(zip(c["seed"], c["iteration"], strict=True))
                   if s == seed and t > 0]
            rho.append(spearman([_nan(c["w_estimate"][i]) for i in idx],
                                [_nan(c["w1_exact"][i]) for i in idx]))
        mean, se, _ = mean_se(rho)
        rows.append({"method": method, "target": target, "rho": rho, "mean": mean, "se": se})
    return rows


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


#: Published rows on 2,500 samples (``shared/PAPER.md``): (modes, %HQ) on the ring of 8 and the
#: grid of 25, and the source. PacGAN's carry standard errors.
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
    %HQ, reverse KL, exact W1), then the published rows of :data:`PUBLISHED` (modes, %HQ).
    """
    if target not in TARGETS:
        raise ValueError(f"target={target!r} is not known; choose one of {', '.join(TARGETS)}")
    rows = {r["method"]: r for r in summary_table(data) if r["target"] == target}
    head = (f"{'method':<37} {'modes':>12} {'%HQ':>12} {'reverse KL':>13} {'exact W1':>15}")
    lines = [head, "-" * len(head)]
    for method in data["config"]["methods"]:
        row = rows.get(method)
        cells = [format_cell(row[f], d) if row else "-"
                 for f, d in zip(TABLE_FIELDS, (1, 1, 2, 3), strict=True)]
        lines.append(f"{data['methods'][method]['label']:<37} {cells[0]:>12} {cells[1]:>12} "
                     f"{cells[2]:>13} {cells[3]:>15}")
    lines.append("published (source, runs)")
    column = 0 if target == "ring" else 2
    for name, values in PUBLISHED.items():
        label = f"{name} ({values[4]})"
        lines.append(f"{label:<37} {values[column]:>12} {values[column + 1]:>12}")
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


__all__ = ["METHODS", "TARGETS", "QUICK", "Method", "StudyConfig", "rankdata", "spearman",
           "mean_se", "sample_metrics", "run_one", "run_study", "load_results", "summary_table",
           "loss_tracking", "format_cell", "TABLE_FIELDS", "grid_points",
           "PUBLISHED", "comparison_lines"]
