"""Running the experiment: one (arm, seed) run, resumable from its checkpoint, its sample grids
(written, and read back), and every run not yet in the results file, in this process or in
worker processes; the results file itself."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit import _checks, checkpoint, digits, rundir
from labkit.digits_experiment.config import ARMS, ExperimentConfig
from labkit.digits_experiment.evaluation import (
    LEVEL_RULES,
    DigitEvaluator,
    _eval_curves,
    _w_curves,
    baselines,
    classifier_for,
    levelled_off,
)
from labkit.digits_experiment.tables import TABLE_FIELDS, _nan
from labkit.study.results import _rounded, _write_atomic

FORMAT = 1


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

    def write_grids(event) -> None:
        if event.name == "eval" and event.iteration in keep | {config.iters}:
            last = event.iteration == config.iters
            name = grid_name(arm, seed, None if last else event.iteration)
            plots.save_image_grid(event.grid, Path(grids) / name)

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
