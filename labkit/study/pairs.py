"""One (method, target) run: an ensemble of seeds trained, checkpointed into its work folder
(resumable), then scored."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from labkit import rundir
from labkit.study.config import StudyConfig
from labkit.study.criterion import run_convergence
from labkit.study.evaluation import _estimate, _final_points, _Recorder, sample_metrics
from labkit.study.results import _rounded


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
