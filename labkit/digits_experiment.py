"""The image experiment of notebook 04: the paper's Figures 3 to 7 on real digits, WGAN against a
standard GAN with four generators, several seeds each, scored by a digit classifier and the SWD.

Arms (:data:`ARMS`): {WGAN with weight clipping at the paper's settings, standard GAN as the
DCGAN paper trains it} x {DCGAN generator, the authors' no-BatchNorm generator, the paper's
no-BatchNorm constant-width generator, MLP generator}, all against the DCGAN critic, plus the
lower half of Figure 3: MLP generator and MLP critic at a high learning rate. Every run trains on
the digits cache (:mod:`labkit.digits`) through :class:`labkit.train.Trainer` in its own folder
under ``work`` with checkpoints, so a stopped experiment resumes inside the run it was in. At
each evaluation it records the critic's estimate on held-out digits, the SWD against them, and
the class count of ``n_count`` generated digits (:class:`DigitEvaluator`).

:func:`run_experiment` writes one JSON file, rewritten atomically after each finished run (the
config, the command, the labkit and torch versions, the classifier's held-out accuracy, the
baselines, and per run its final metrics, curves and whether its metrics levelled off), and
small PNG sample grids. :func:`summary_table` turns it into the notebook's table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit import _checks, checkpoint, digits, metrics, rundir
from labkit.study import format_cell, mean_se
from labkit.study.results import _rounded

FORMAT = 1

#: WGAN as Algorithm 1 and the authors' code: RMSprop 5e-5, clipping 0.01 after each critic
#: step, n_critic 5, 100 critic steps for the first 25 generator iterations and every 500th.
WGAN = {"loss": "wgan", "constraint": "clip", "clip": 0.01, "optimizer": "rmsprop", "lr": 5e-5,
        "n_critic": 5, "critic_warmup": True}
#: The standard GAN as the DCGAN paper trains it (Radford et al. 2016, Section 3): Adam 2e-4,
#: beta1 0.5, one discriminator step per generator step, the -log D generator loss.
GAN = {"loss": "gan-logd", "constraint": "none", "optimizer": "adam", "lr": 2e-4,
       "betas": (0.5, 0.999), "n_critic": 1, "critic_warmup": False}
#: Learning rate of Figure 3's failing pair, fixed before any run: 20 times the paper's, so that
#: one RMSprop step moves a weight by about a tenth of the clipping box [-0.01, 0.01].
HIGH_LR = 1e-3


@dataclass(frozen=True)
class Arm:
    """One configuration of the experiment: what it trains, its label and the paper's figure."""

    label: str
    settings: dict[str, Any]
    figure: str


GENERATOR_LABELS = {"dcgan": "DCGAN generator", "dcgan-nobn": "no BatchNorm (authors' code)",
                    "dcgan-const": "no BatchNorm, constant width (paper)", "mlp": "MLP generator"}
_FIGURES = {"dcgan": "3 (top right), 4, 5", "dcgan-nobn": "6 (the authors' generator)",
            "dcgan-const": "6 (the paper's generator)", "mlp": "3 (top left), 4, 7"}
#: The arms, in table order: key ``loss/generator`` (``wgan-mlp-critic/mlp`` for Figure 3's
#: lower half).
ARMS: dict[str, Arm] = {
    **{f"{loss}/{g}": Arm(f"{loss.upper()}, {label}", {**settings, "generator": g},
                          _FIGURES[g])
       for g, label in GENERATOR_LABELS.items() for loss, settings in (("wgan", WGAN),
                                                                        ("gan", GAN))},
    "wgan-mlp-critic/mlp": Arm(f"WGAN, MLP generator and MLP critic, lr {HIGH_LR:g}",
                               {**WGAN, "generator": "mlp", "mlp_critic": True, "lr": HIGH_LR},
                               "3 (bottom)"),
}


@dataclass
class ExperimentConfig:
    """Budget and scope of the experiment; every arm gets the same budget and widths.

    Parameters
    ----------
    arms : tuple of str
        Keys of :data:`ARMS`.
    n_seeds, first_seed : int
        Seeds ``first_seed, ..., first_seed + n_seeds - 1`` of every arm.
    iters : int
        Generator iterations per run.
    image_size : int
        Side of the digits cache (16: the 8 x 8 digits upsampled twice).
    width : int
        ``ngf = ndf`` of the DCGAN generators and critic (the authors' 64, shrunk for the CPU).
    hidden, depth : int
        The MLP generator (and Figure 3's MLP critic): ``depth`` ReLU layers of ``hidden``.
    batch_size : int
        Batch m (64, the paper's).
    eval_every : int
        Iterations between evaluations (SWD, critic estimate, class count): the curves.
    n_count : int
        Generated digits the classifier counts at each evaluation.
    w_every : int
        Keep every ``w_every``-th value of the per-iteration estimate (raw and median-filtered).
    snapshots : tuple of int
        Iterations of the extra sample grids of each arm's first seed (beside the final grids).
    checkpoint_every : int
        Iterations between checkpoints of a run.
    warmup : bool
        The WGAN arms' critic warm-up (the authors'); off only in smoke runs.
    threads : int
        Torch threads per run (1: on two cores, two one-thread jobs are fastest).
    """

    arms: tuple[str, ...] = tuple(ARMS)
    n_seeds: int = 3
    first_seed: int = 0
    iters: int = 10_000
    image_size: int = 16
    width: int = 16
    hidden: int = 512
    depth: int = 3
    batch_size: int = 64
    eval_every: int = 500
    n_count: int = 1000
    w_every: int = 10
    snapshots: tuple[int, ...] = (0, 500, 2000)
    checkpoint_every: int = 1000
    warmup: bool = True
    threads: int = 1

    def __post_init__(self) -> None:
        self.arms, self.snapshots = tuple(self.arms), tuple(self.snapshots)
        bad = [a for a in self.arms if a not in ARMS]
        if bad or not self.arms or len(set(self.arms)) != len(self.arms):
            raise _checks.BadValue("arms", list(self.arms),
                                   f"distinct keys among {', '.join(ARMS)}")
        for name in ("n_seeds", "iters", "width", "hidden", "depth", "batch_size", "eval_every",
                     "n_count", "w_every", "checkpoint_every", "threads"):
            setattr(self, name, _checks.integer(name, getattr(self, name), minimum=1))
        self.first_seed = _checks.integer("first_seed", self.first_seed, minimum=0)
        self.image_size = _checks.image_size("image_size", self.image_size)
        self.warmup = _checks.boolean("warmup", self.warmup)
        self.snapshots = tuple(_checks.integer("snapshots", s, minimum=0)
                               for s in self.snapshots)
        if self.iters % self.eval_every:
            raise _checks.BadValue("iters", self.iters, f"a multiple of eval_every "
                                   f"({self.eval_every}), so that the last evaluation is final")
        if any(s % self.eval_every or s > self.iters for s in self.snapshots):
            raise _checks.BadValue("snapshots", list(self.snapshots), "evaluation iterations "
                                   f"(multiples of eval_every={self.eval_every}, <= iters)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def train_config(self, arm: str, seed: int, data: str | os.PathLike,
                     checkpoint: str | os.PathLike | None = None):
        """The :class:`labkit.train.TrainConfig` of one run: the authors' image configuration
        (:func:`labkit.train.image_config`) with the arm's settings and this budget."""
        from labkit.train import image_config

        settings = dict(ARMS[arm].settings)
        settings["critic_warmup"] = settings["critic_warmup"] and self.warmup
        return image_config(
            data, **settings, seed=seed, iters=self.iters, image_size=self.image_size,
            ngf=self.width, ndf=self.width, hidden=self.hidden, depth=self.depth,
            batch_size=self.batch_size, eval_every=self.eval_every, eval_samples=digits.HOLDOUT,
            checkpoint=None if checkpoint is None else str(checkpoint),
            checkpoint_every=self.checkpoint_every, threads=self.threads)


#: Overrides of :class:`ExperimentConfig` for a smoke run (``LABKIT_QUICK=1``, tests).
QUICK = {"arms": ("wgan/dcgan", "gan/dcgan"), "n_seeds": 1, "iters": 12, "width": 4,
         "hidden": 16, "batch_size": 16, "eval_every": 6, "n_count": 100, "w_every": 2,
         "snapshots": (0, 6), "checkpoint_every": 6, "warmup": False}


# --------------------------------------------------------------------------- evaluation
class DigitEvaluator:
    """A run's image evaluator (:class:`labkit.evaluators.ImageEvaluator`: critic estimate and
    SWD on the held-out digits, a fixed-noise grid) plus the class count of ``n`` generated
    digits from fixed noise (:meth:`labkit.digits.DigitClassifier.count`).

    Each evaluation adds ``classes`` (classes with a confident sample), ``confident`` (their
    share of the n) and ``class_kl`` (KL of their class histogram to uniform, nats) to the
    base evaluator's row.
    """

    def __init__(self, base, classifier: digits.DigitClassifier, n: int, nz: int, seed: int,
                 device: torch.device) -> None:
        self.base, self.classifier, self.headline = base, classifier, base.headline
        self.busy = f"{base.busy}, classes of {n} digits"
        self.z = torch.randn(n, nz, generator=torch.Generator().manual_seed(seed)).to(device)

    @property
    def grid(self) -> torch.Tensor | None:
        return self.base.grid

    @torch.no_grad()
    def evaluate(self, generator, critic) -> list[dict[str, Any]]:
        row = self.base.evaluate(generator, critic)[0]
        coverage = self.classifier.count(self.base._generate(generator, self.z))
        return [{**row, "classes": coverage.modes, "confident": coverage.hq_fraction,
                 "class_kl": coverage.reverse_kl}]

    def samples(self, generator):
        return self.base.samples(generator)


def levelled_off(iterations, values, tolerance: float, relative: bool = True,
                 window: float = 1 / 3) -> tuple[float, bool]:
    """Has a metric levelled off? The change its least-squares trend makes over the last
    ``window`` of the run, and whether it is within ``tolerance``.

    Fit v = a + b t to the evaluations with t >= (1 - window) T (T the last iteration); the
    drift is b * window * T, divided by the mean |v| of those evaluations when ``relative``. A
    metric has levelled off when |drift| <= tolerance (the notebook uses 10% for the SWD and
    0.05 for the share of confident digits). Returns (drift, levelled); (nan, False) with fewer
    than three evaluations in the window.

    >>> drift, levelled = levelled_off([0, 10, 20, 30, 40], [5.0, 4.0, 3.0, 2.8, 2.6], 0.1,
    ...                                window=0.5)
    >>> round(drift, 4), levelled  # slope -0.02 over 20 iterations, -0.4 of the mean 2.8
    (-0.1429, False)
    """
    t, v = np.asarray(iterations, dtype=float), np.asarray(values, dtype=float)
    last = t.max()
    keep = (t >= (1 - window) * last * (1 - 1e-9)) & np.isfinite(v)  # 1e-9: rounding of 2/3
    if keep.sum() < 3:
        return math.nan, False
    slope = np.polyfit(t[keep], v[keep], 1)[0]
    drift = slope * window * last
    if relative:
        drift /= max(np.abs(v[keep]).mean(), 1e-12)
    drift = float(drift)
    return drift, abs(drift) <= tolerance


#: Tolerances of :func:`levelled_off`: metric -> (tolerance, relative).
LEVEL_RULES = {"swd": (0.10, True), "confident": (0.05, False)}


def _w_curves(trainer, every: int) -> dict[str, list]:
    """The per-iteration estimate (W for WGAN, the JS lower bound for GANs), raw and through
    the paper's median filter of width 101 over all iterations, kept every ``every``-th."""
    rows = trainer.history.rows
    its = np.array([r["iteration"] for r in rows])
    w = np.array([r["w_estimate"] for r in rows], dtype=float)
    smooth = metrics.median_filter(w, 101) if len(w) else w
    keep = slice(every - 1, None, every)
    return {"iteration": its[keep].tolist(), "raw": w[keep].tolist(),
            "median101": smooth[keep].tolist()}


def _eval_curves(trainer) -> dict[str, list]:
    fields = ("iteration", "swd", "w_estimate_eval", "classes", "confident", "class_kl")
    return {f: [e[f] for e in trainer.history.evals] for f in fields}


# --------------------------------------------------------------------------- one run
_CLASSIFIERS: dict[str, digits.DigitClassifier] = {}


def classifier_for(cache) -> digits.DigitClassifier:
    """The digit classifier trained on a cache's training digits (made once per process)."""
    key = str(Path(cache.path).resolve())
    if key not in _CLASSIFIERS:
        train, labels, _, _ = digits.split(cache)
        _CLASSIFIERS[key] = digits.DigitClassifier(train, labels)
    return _CLASSIFIERS[key]


def run_folder(work: str | os.PathLike, arm: str, seed: int) -> Path:
    """The folder of one run's checkpoint: ``work/<loss>_<generator>/seed<k>``."""
    return Path(work) / arm.replace("/", "_") / f"seed{seed}"


def grid_name(arm: str, seed: int, iteration: int | None = None) -> str:
    """File name of a sample grid in the grids folder (``None``: the final grid)."""
    stem = f"{arm.replace('/', '_')}_seed{seed}"
    return f"{stem}.png" if iteration is None else f"{stem}_iter{iteration:06d}.png"


def run_one(config: ExperimentConfig, arm: str, seed: int, cache_path: str | os.PathLike,
            work: str | os.PathLike, grids: str | os.PathLike, progress: bool = False,
            callbacks: tuple = ()) -> dict[str, Any] | None:
    """Train (or continue) one run and summarise it; None if it was interrupted (Ctrl-C).

    The run lives in :func:`run_folder` (claimed through :mod:`labkit.rundir`: one process at
    a time); its checkpoint is written every ``checkpoint_every`` iterations and on Ctrl-C, and
    a later call continues from it. The final grid, and for the first seed the grids at
    ``config.snapshots``, are written into ``grids``. ``callbacks`` are added to the
    trainer's (:class:`labkit.train.Trainer`).

    Returns
    -------
    dict or None
        ``arm``, ``seed``, ``seconds`` (training wall time, summed over resumes),
        ``diverged`` (None or the message), ``final`` (the last evaluation: ``swd``,
        ``w_estimate_eval``, ``classes``, ``confident``, ``class_kl``, and ``iteration``),
        ``evals`` (those at every evaluation), ``w`` (:func:`_w_curves`) and ``levelled``
        (metric -> [drift, levelled] by :data:`LEVEL_RULES`).
    """
    from labkit import plots
    from labkit.images import open_cache
    from labkit.train import DivergenceError, Trainer

    folder = run_folder(work, arm, seed)
    ckpt = folder / "checkpoint.pt"
    train_config = config.train_config(arm, seed, cache_path, ckpt)
    classifier = classifier_for(open_cache(cache_path))
    keep = set(config.snapshots) if seed == config.first_seed else set()

    def write_grids(event: str, trainer) -> None:
        if event == "eval" and trainer.iteration in keep | {config.iters}:
            last = trainer.iteration == config.iters
            name = grid_name(arm, seed, None if last else trainer.iteration)
            plots.save_image_grid(trainer.evaluator.grid, Path(grids) / name)

    with rundir.claim(folder, "--work", fresh=False, outputs=("checkpoint.pt",)) as run:
        trainer = (Trainer.resume(ckpt, train_config, progress=progress) if ckpt.is_file()
                   else Trainer(train_config, progress=progress))
        trainer.callbacks += [write_grids, *callbacks]
        trainer.evaluator = DigitEvaluator(
            trainer.evaluator, classifier, config.n_count, train_config.nz,
            seed=int(np.random.SeedSequence(seed).spawn(4)[3].generate_state(1)[0]),
            device=trainer.device)
        diverged = None
        try:
            trainer.run()
        except DivergenceError as err:
            diverged = str(err)
        if trainer.interrupted:
            return None
        run.finish()
    evals = _eval_curves(trainer)
    final = {k: v[-1] for k, v in evals.items()} if evals["iteration"] else {}
    levelled = {m: list(levelled_off(evals["iteration"], evals[m], tol, rel))
                for m, (tol, rel) in LEVEL_RULES.items()}
    return _rounded({"arm": arm, "seed": seed, "seconds": trainer.elapsed,
                     "iterations": trainer.iteration, "diverged": diverged, "final": final,
                     "evals": evals, "w": _w_curves(trainer, config.w_every),
                     "levelled": levelled})


# --------------------------------------------------------------------------- baselines
def baselines(cache, n: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The table's reference rows, scored like a run: SWD against the held-out digits and the
    class count of ``n`` images.

    - ``real``: real training digits (n drawn with replacement; the SWD uses 300 of them): the
      floor a perfect generator would reach.
    - ``mean+noise``: the mean training digit plus Gaussian noise with each pixel's standard
      deviation, clipped to [-1, 1]: a generator that knows two moments per pixel.
    - ``one class``: real training digits of class 0 only: perfect samples, total collapse.

    Also ``classifier``: the classifier's accuracy on the held-out digits and its share of
    confident held-out digits.
    """
    train, labels, heldout, heldout_labels = digits.split(cache)
    classifier = classifier_for(cache)
    rng = torch.Generator().manual_seed(seed)
    zeros = train[torch.from_numpy(labels == 0)]
    m = max(n, len(heldout))
    sets = {
        "real": train[torch.randint(len(train), (m,), generator=rng)],
        "mean+noise": (train.mean(0) + train.std(0) * torch.randn(m, *train.shape[1:],
                                                                  generator=rng)).clamp(-1, 1),
        "one class": zeros[torch.randint(len(zeros), (m,), generator=rng)],
    }
    rows = {}
    for name, images in sets.items():
        coverage = classifier.count(images[:n])
        rows[name] = {"swd": metrics.swd_images(heldout, images[:len(heldout)], seed=seed)["swd"],
                      "classes": coverage.modes, "confident": coverage.hq_fraction,
                      "class_kl": coverage.reverse_kl}
    held = classifier.count(heldout)
    rows["classifier"] = {"accuracy": classifier.accuracy(heldout, heldout_labels),
                          "confident": held.hq_fraction, "classes": held.modes,
                          "class_kl": held.reverse_kl, "n_train": len(train),
                          "n_heldout": len(heldout), "threshold": digits.CONFIDENCE}
    return _rounded(rows)


# --------------------------------------------------------------------------- the file
def _write_atomic(data: dict, path: Path) -> None:
    with rundir.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n")


def load_results(path: str | os.PathLike) -> dict:
    """Read a results file written by :func:`run_experiment`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no experiment results file there")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"path={str(path)!r}: not a results file (invalid JSON: {err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "runs" not in data:
        raise ValueError(f"path={str(path)!r}: not a digits experiment file of format {FORMAT}")
    return data


def run_key(arm: str, seed: int) -> str:
    return f"{arm}/{seed}"


def run_experiment(config: ExperimentConfig, path: str | os.PathLike,
                   work: str | os.PathLike, grids: str | os.PathLike, jobs: int = 1,
                   progress: bool = True, log: Callable[[str], None] = print,
                   command: str | None = None) -> dict:
    """Run every (arm, seed) of ``config`` not yet in the results file ``path``.

    The digits are exported and prepared into ``work`` (:func:`labkit.digits.prepare_cache`)
    unless already there; each run trains in its folder under ``work`` (:func:`run_one`) and
    its summary is added to ``path``, which is rewritten atomically after each run. An existing
    file is continued only when it was made with the same config (``threads`` aside); its
    finished runs are kept, and an unfinished run continues from its checkpoint.

    Parameters
    ----------
    config : ExperimentConfig
    path : results file (JSON)
    work : folder of the digits cache and the runs' checkpoints (kept; delete it when done)
    grids : folder of the PNG sample grids
    jobs : runs trained at once, each in its own process (``spawn``); 2 on two cores
    progress : progress bars (only with ``jobs=1``)
    log : receives one line per finished run
    command : the command line to record (default: this process's)

    Returns
    -------
    dict
        The results, as :func:`load_results` reads them.

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C, once the runs in progress have saved their checkpoints.
    """
    import labkit

    jobs = _checks.integer("jobs", jobs, minimum=1)
    path, work = Path(path), Path(work)
    cache = digits.prepare_cache(work, config.image_size)
    settings = config.to_dict()
    if path.exists():
        data = load_results(path)
        diffs = checkpoint.config_differences(data["config"], settings, ignore=("threads",))
        if diffs:
            raise ValueError(f"path={str(path)!r} holds an experiment with another config "
                             f"(file -> asked: {'; '.join(diffs)}); choose another path or "
                             "delete it")
    else:
        data = {"format": FORMAT, "labkit": labkit.__version__, "torch": torch.__version__,
                "command": command or " ".join(["python -m labkit", *sys.argv[1:]]),
                "config": settings, "pixel_rule": digits.PIXEL_RULE,
                "arms": {k: dataclasses.asdict(ARMS[k]) for k in config.arms},
                "baselines": baselines(cache, config.n_count), "runs": {},
                "wall_seconds": 0.0}
    order = [run_key(a, s) for a in config.arms
             for s in range(config.first_seed, config.first_seed + config.n_seeds)]
    todo = [k for k in order if k not in data["runs"]]
    if len(todo) < len(order):
        log(f"{len(order) - len(todo)} of {len(order)} runs done before, kept")
    started, wall_before = time.perf_counter(), data["wall_seconds"]

    def save(run: dict | None) -> None:
        if run is None:
            return
        runs = {**data["runs"], run_key(run["arm"], run["seed"]): run}
        data["runs"] = {k: runs[k] for k in order if k in runs}
        data["wall_seconds"] = round(wall_before + time.perf_counter() - started, 1)
        data["load_average"] = [round(x, 2) for x in os.getloadavg()]
        data["jobs"], data["threads"] = jobs, config.threads
        _write_atomic(data, path)
        log(f"{run_key(run['arm'], run['seed'])}: {run['seconds']:.0f} s; {_one_line(run)}")

    args = (cache.path, work, grids)
    if jobs == 1:
        for key in todo:
            arm, seed = key.rsplit("/", 1)
            run = run_one(config, arm, int(seed), *args, progress=progress)
            if run is None:
                raise KeyboardInterrupt
            save(run)
        return data
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no fork of torch's thread pools
    todo.sort(key=lambda key: -_relative_cost(key.rsplit("/", 1)[0]))  # longest first
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        in_parallel(todo, jobs, lambda key: pool.submit(run_one, config, *_arm_seed(key), *args),
                    save)
    return data


def in_parallel(keys: list[str], jobs: int, start: Callable, save: Callable) -> None:
    """Run ``keys`` with at most ``jobs`` at a time: ``start(key)`` returns a future, whose
    result goes to ``save``. A run is started only when a worker is free, so none waits in a
    pool's queue: after Ctrl-C (a result of None: the run saved its checkpoint and stopped, or
    KeyboardInterrupt here) no further run starts, the runs that finished are saved, and
    KeyboardInterrupt is raised."""
    from concurrent.futures import FIRST_COMPLETED, wait

    queue, running = list(keys), {}
    while queue or running:
        while queue and len(running) < jobs:
            key = queue.pop(0)
            running[start(key)] = key
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        stopped = False
        for future in [f for f in running if f in done]:  # in the order they started
            del running[future]
            run = future.result()
            stopped |= run is None
            if run is not None:
                save(run)
        if stopped:
            raise KeyboardInterrupt


def _arm_seed(key: str) -> tuple[str, int]:
    arm, seed = key.rsplit("/", 1)
    return arm, int(seed)


def _relative_cost(arm: str) -> float:
    """Rough cost of an arm's generator iteration: critic steps plus one generator step."""
    return ARMS[arm].settings["n_critic"] + 1.0


def _one_line(run: dict) -> str:
    f = {k: _nan(run["final"].get(k)) for k in TABLE_FIELDS}
    state = ", ".join(f"{m} {'levelled' if ok else 'still moving'}"
                      for m, (_, ok) in run["levelled"].items())
    return (f"SWD {f['swd']:.4g}, {f['classes']:.0f} classes, confident {f['confident']:.2f}, "
            f"KL {f['class_kl']:.3g}; {state}"
            + (f"; DIVERGED: {run['diverged']}" if run["diverged"] else ""))


# --------------------------------------------------------------------------- tables
TABLE_FIELDS = ("classes", "class_kl", "confident", "swd")


def summary_table(data: dict) -> list[dict[str, Any]]:
    """One row per arm: mean, standard error and n over seeds of each final metric
    (:data:`TABLE_FIELDS`), the number of seeds whose SWD and confident share levelled off,
    then one row per baseline (a single value each: n = 1).

    ``class_kl`` averages only seeds with a confident digit (n says how many).
    """
    rows = []
    for arm in data["config"]["arms"]:
        runs = [r for r in data["runs"].values() if r["arm"] == arm]
        if not runs:
            continue
        row = {"arm": arm, "label": data["arms"][arm]["label"], "n_seeds": len(runs),
               "levelled": sum(all(ok for _, ok in r["levelled"].values()) for r in runs),
               "diverged": sum(r["diverged"] is not None for r in runs)}
        for field in TABLE_FIELDS:
            row[field] = mean_se(_measured(r["final"].get(field) for r in runs))
        rows.append(row)
    for name in ("real", "mean+noise", "one class"):
        base = data["baselines"][name]
        rows.append({"arm": name, "label": f"baseline: {name}", "n_seeds": 1, "levelled": None,
                     "diverged": 0, **{f: (_nan(base[f]), math.nan, 1) for f in TABLE_FIELDS}})
    return rows


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _measured(values) -> list[float]:
    """The values that were measured: None (no samples) and nan left out, as mean_se asks."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def table_lines(data: dict) -> list[str]:
    """:func:`summary_table` as aligned text, mean +- s.e. over seeds."""
    head = (f"{'arm':<48} {'classes':>11} {'KL (nats)':>13} {'confident':>13} {'SWD x1e3':>13}"
            f" {'levelled':>8}")
    lines = [head, "-" * len(head)]
    for row in summary_table(data):
        cells = [format_cell(row[f], d) for f, d in zip(TABLE_FIELDS, (1, 2, 2, 1), strict=True)]
        level = "" if row["levelled"] is None else f"{row['levelled']}/{row['n_seeds']}"
        lines.append(f"{row['label']:<48} {cells[0]:>11} {cells[1]:>13} {cells[2]:>13} "
                     f"{cells[3]:>13} {level:>8}")
    return lines


# --------------------------------------------------------------------------- curves, verdicts
#: Short names of the losses in legends.
LOSS_NAMES = {"wgan": "WGAN", "gan": "GAN", "wgan-mlp-critic": "WGAN, MLP critic"}
_SEED_STYLES = ("-", "--", ":", "-.")


def line_label(arm: str, seed: int) -> str:
    """Legend label of one run: ``"WGAN seed 0"``."""
    return f"{LOSS_NAMES[arm.split('/')[0]]} seed {seed}"


def curve_cells(data: dict, columns: dict[str, tuple[str, ...]],
                rows: tuple[str, ...]) -> dict[str, dict[str, dict[str, tuple]]]:
    """The input of :func:`labkit.plots.curve_table`: column title -> row -> line -> curve,
    one line per run of the column's arms (:func:`seed_curves`; row ``"w"`` is the estimate,
    median of 101 over the raw values)."""
    return {title: {row: {line_label(arm, seed): curve
                          for arm in arms for seed, curve in seed_curves(data, arm, row).items()}
                    for row in rows}
            for title, arms in columns.items()}


def curve_styles(data: dict) -> dict[str, dict[str, str]]:
    """Line styles for :func:`labkit.plots.curve_table`: one colour per loss (WGAN blue, GAN
    orange, the MLP-critic WGAN green), one dash pattern per seed."""
    colours = {"wgan": "C0", "gan": "C1", "wgan-mlp-critic": "C2"}
    return {line_label(r["arm"], r["seed"]): {
        "color": colours[r["arm"].split("/")[0]],
        "ls": _SEED_STYLES[(r["seed"] - data["config"]["first_seed"]) % len(_SEED_STYLES)]}
        for r in data["runs"].values()}


def load_grid(grids: str | os.PathLike, arm: str, seed: int, iteration: int | None = None,
              rows: int | None = None) -> np.ndarray | None:
    """A sample grid written by :func:`run_one` as a (H, W, 3) uint8 picture, or None if the
    file is not there (an arm or a snapshot that was not run). ``rows`` keeps only the first
    rows of images (:func:`labkit.plots.image_grid`'s layout: 2-pixel gaps)."""
    from PIL import Image

    path = Path(grids) / grid_name(arm, seed, iteration)
    if not path.is_file():
        return None
    with Image.open(path) as image:
        picture = np.asarray(image.convert("RGB"))
    if rows is not None:
        side = (picture.shape[1] - 2) // 8  # image side + gap, eight images a row
        picture = picture[:2 + rows * side]
    return picture


def seed_curves(data: dict, arm: str, field: str) -> dict[int, tuple[list, ...]]:
    """Curves of one arm, seed -> (iterations, values): ``field`` ``"w"`` gives the estimate
    (W for WGAN, the JS lower bound for GAN) as (iterations, median of 101, raw); any
    evaluation field (``"swd"``, ``"confident"``, ``"classes"``, ``"class_kl"``,
    ``"w_estimate_eval"``) its values at the evaluations."""
    curves = {}
    for run in data["runs"].values():
        if run["arm"] != arm:
            continue
        if field == "w":
            curves[run["seed"]] = (run["w"]["iteration"], run["w"]["median101"], run["w"]["raw"])
        else:
            curves[run["seed"]] = (run["evals"]["iteration"], run["evals"][field])
    return dict(sorted(curves.items()))


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


__all__ = ["ARMS", "WGAN", "GAN", "HIGH_LR", "Arm", "ExperimentConfig", "QUICK",
           "DigitEvaluator", "levelled_off", "LEVEL_RULES", "run_one", "baselines",
           "run_experiment", "load_results", "summary_table", "table_lines", "TABLE_FIELDS",
           "run_folder", "grid_name", "classifier_for", "GENERATOR_LABELS", "seed_curves",
           "RULES", "run_state", "tracking", "in_parallel", "flatness", "verdicts", "curve_cells",
           "curve_styles", "line_label", "load_grid", "LOSS_NAMES"]
