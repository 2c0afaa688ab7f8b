"""The training loop: :class:`Trainer` runs Algorithm 1 on one step object, and records, evaluates,
saves and stops around it.

The maths of a generator iteration is the step's (:mod:`labkit.train.step`, or the fast path's
:mod:`labkit.train.fast`); what the run trains on is chosen once from the config
(:mod:`labkit.train.data`); when to record, evaluate and save is :mod:`labkit.train.callbacks`'.
Runs never lose work: checkpoints are atomic and resume bit-exactly, Ctrl-C saves one, and a
divergence stops the run naming the iteration while keeping the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from labkit import checkpoint, distributed
from labkit.train.callbacks import (
    Callback,
    Event,
    ProgressBar,
    Schedule,
    ctrl_c,
    load_states,
    stateful,
)
from labkit.train.config import (
    RESUMABLE_FIELDS,
    TrainConfig,
    check_runtime,
    critic_steps,
    set_threads,
    use_fast,
)
from labkit.train.data import build_data
from labkit.train.fast import FastStep
from labkit.train.history import History
from labkit.train.step import ReferenceStep, Step

#: The state a checkpoint holds of the step (``state_dict`` of each).
_STATEFUL = ("generator", "critic", "opt_generator", "opt_critic")


class DivergenceError(RuntimeError):
    """A loss or parameter became NaN or infinite. The message says whether a checkpoint exists;
    ``iteration`` is the first bad one and ``saved_iteration`` that of the last good checkpoint
    (None if none was written)."""

    def __init__(self, iteration: int, what: str, checkpoint: str | None,
                 saved_iteration: int | None) -> None:
        self.iteration, self.saved_iteration = iteration, saved_iteration
        kept = ("no checkpoint was written before it" if saved_iteration is None else
                f"the last good checkpoint, iteration {saved_iteration}, is kept at "
                f"{checkpoint!r}")
        super().__init__(f"diverged at iteration {iteration}: {what}; {kept}")


def _on_step(name: str) -> property:
    """A read-only Trainer attribute that is the reference step's."""
    return property(lambda self: getattr(self.step.reference, name),
                    doc=f"The step's ``{name}`` (:class:`~labkit.train.step.ReferenceStep`).")


class Trainer:
    """Trains a generator against a critic by Algorithm 1, on a toy target or on images.

    Parameters
    ----------
    config : TrainConfig
    callbacks : iterable of callables ``fn(event)``
        Told of every step, record, evaluation, checkpoint and the end, by an
        :class:`~labkit.train.callbacks.Event` that carries what happened (the evaluation's
        measures and sample grid, the checkpoint's path) and the trainer. A callback with
        ``state_dict()`` / ``load_state_dict(state)`` has that state saved in every checkpoint
        and restored on resume, so what it records survives a stop.
    progress : bool
        Show the run's :class:`~labkit.train.callbacks.ProgressBar`: the running W estimate and
        the evaluator's headline number (exact W1 for toys, SWD for images).

    Attributes
    ----------
    step : Step
        One generator iteration (:class:`~labkit.train.step.ReferenceStep`, or the fast path's
        :class:`~labkit.train.fast.FastStep` around it); ``generator``, ``critic``, their
        optimizers and the draw streams ``rngs`` are its reference step's.
    evaluator
        What an evaluation measures (:mod:`labkit.train.evaluators`; None off rank 0).
    history : History
        The step values and evaluations so far.
    target
        The real data P_r (``sample(n, generator)``): a toy target or an image dataset.
    ensemble : bool
        Whether several seeds train together (stacked models).

    Examples
    --------
    >>> trainer = Trainer(TrainConfig(iters=3, eval_every=3, eval_samples=50, hidden=8),
    ...                   progress=False)
    >>> history = trainer.run()
    >>> trainer.iteration, len(history.rows)
    (3, 3)
    """

    generator, critic, opt_generator, opt_critic, rngs = map(
        _on_step, ("generator", "critic", "opt_generator", "opt_critic", "rngs"))

    def __init__(self, config: TrainConfig, callbacks: Iterable[Callback] = (),
                 progress: bool = True) -> None:
        self.config, self.callbacks, self.progress = config, list(callbacks), progress
        self.device = torch.device(config.device)
        set_threads(config)
        self.seeds = config.seeds
        self.rank, self.world = distributed.rank(), distributed.world_size()
        check_runtime(config, self.world)
        self.data = build_data(config, self.rank, self.world)
        fast = use_fast(config, self.world)
        graphs = fast and self.device.type == "cuda"
        reference = ReferenceStep(config, self.data, self.device, self.rank, self.world,
                                  fast_optimizers=fast, capturable=graphs)
        self.step: Step = FastStep(reference, graphs=graphs) if fast else reference
        self.target, self.ensemble = self.data.target, reference.ensemble
        self.iteration, self.elapsed = 0, 0.0
        self.saved_iteration: int | None = None  # iteration of the last checkpoint on disk
        self.history = History()
        self.last_eval: list[dict[str, Any]] = []
        self.evaluator = self.data.evaluator(self.device) if self.rank == 0 else None
        self._bar: ProgressBar | None = None  # told of events first while run() runs

    # ----------------------------------------------------------------- the loop
    def run(self) -> History:
        """Train up to ``config.iters`` generator iterations (continuing a resumed run).

        Ctrl-C (SIGINT), also during the first evaluation, finishes the current step, saves a
        checkpoint and returns with ``self.interrupted = True``; a second Ctrl-C raises
        ``KeyboardInterrupt`` at once (an unfinished checkpoint write is then discarded). A run
        with nothing to do (``iters`` reached) still saves, so that it can be resumed. A NaN or
        inf raises :class:`DivergenceError` naming the first bad iteration; the last checkpoint
        written stays the last good one.
        """
        cfg, self.interrupted = self.config, False
        schedule = Schedule(cfg.iters, cfg.eval_every, cfg.checkpoint_every, self.rank == 0)
        start, pending, times, saved = time.perf_counter() - self.elapsed, [], [], False
        bar = ProgressBar(cfg.iters, self.iteration, self.progress,
                          self.evaluator and self.evaluator.headline)
        with ctrl_c(self.world, self.device) as interrupt, self._showing(bar):
            if self.iteration == 0 and not self.history.evals and schedule.evaluating:
                self._evaluate()
            stop = False  # Ctrl-C is looked at before each step and after it
            while self.iteration < cfg.iters and not (stop := interrupt.requested()):
                pending.append(self.train_step())  # (1) critic x n_critic, (2) generator
                self.iteration += 1
                times.append(time.perf_counter() - start)
                self._emit("step")
                evaluate, save = schedule.evaluate(self.iteration), schedule.save(self.iteration)
                end = self.iteration == cfg.iters or interrupt.requested()
                if evaluate or save or end or schedule.record(len(pending)):  # record
                    self._record(pending, times)
                    if evaluate:
                        self._evaluate()
                    self.elapsed = time.perf_counter() - start
                    if save or end:
                        self.save()
                        saved = True
            if not saved or self.saved_iteration != self.iteration:  # e.g. Ctrl-C in an eval
                self.save()
            self.interrupted = stop or interrupt.pressed.is_set()
        self._emit("end")
        return self.history

    @contextlib.contextmanager
    def _showing(self, bar: ProgressBar):
        """The bar is told of events inside the block, and closed after it (also on an error)."""
        self._bar = bar
        try:
            yield
        finally:
            bar.close()
            self._bar = None

    def train_step(self) -> torch.Tensor:
        """One generator iteration at the current iteration's critic schedule (benchmarks time
        it); the values (4, S). :attr:`iteration` is the caller's to advance."""
        return self.step(critic_steps(self.config, self.iteration))

    def _record(self, pending: list[torch.Tensor], times: list[float]) -> None:
        """Move buffered step values into the history (one device sync), stopping at the first
        non-finite value."""
        values = torch.stack(pending)
        if self.world > 1:  # the ranks' estimates on their local batches -> the global batch's
            values = distributed.mean_over_ranks(values)
        values = values.cpu()
        first = self.iteration - len(pending) + 1
        bad = (~torch.isfinite(values)).flatten(1).any(1).nonzero()
        if len(bad):
            raise self._diverged(first + int(bad[0]), "a loss or gradient norm is NaN or inf")
        self.history.add_steps(first, self.seeds, values, times)
        pending.clear()
        times.clear()
        self._emit("record")

    # ----------------------------------------------------------------- evaluation
    def evaluate(self) -> list[dict[str, Any]]:
        """The evaluator's measures of the current models, one dict per seed."""
        return self.evaluator.evaluate(self.generator, self.critic)

    def samples(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The evaluator's fixed real samples and one generated set per seed, on the CPU."""
        return self.evaluator.samples(self.generator)

    def _evaluate(self) -> None:
        """Evaluate and record, telling the callbacks before and after."""
        self._emit("evaluating", what=self.evaluator.busy)
        self.last_eval = self.evaluate()
        for seed, row in zip(self.seeds, self.last_eval, strict=True):
            self.history.add_eval(self.iteration, seed, row)
        self._emit("eval", evals=self.last_eval, grid=self.evaluator.grid)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: models, optimizers, RNG states, counters,
        config, history, and the state of the callbacks that have one (``state_dict()``)."""
        return {"config": self.config.to_dict(), "iteration": self.iteration,
                "elapsed": self.elapsed, **{k: getattr(self, k).state_dict() for k in _STATEFUL},
                "rng": checkpoint.rng_state(self.rngs), "history": self.history.state_dict(),
                "callbacks": [c.state_dict() for c in stateful(self.callbacks)]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a differing config (``iters`` and checkpoint fields
        aside) raises ``ValueError`` naming the fields. A field the checkpoint lacks (one added
        to :class:`TrainConfig` after it was saved) counts as its default."""
        saved = {**TrainConfig().to_dict(), **state["config"]}
        diffs = checkpoint.config_differences(saved, self.config.to_dict(),
                                              ignore=RESUMABLE_FIELDS)
        if diffs:
            raise ValueError("checkpoint was made with a different config: " + "; ".join(diffs))
        for key in _STATEFUL:
            getattr(self, key).load_state_dict(state[key])
        checkpoint.set_rng_state(state["rng"], self.rngs)
        self.iteration, self.elapsed = state["iteration"], state["elapsed"]
        self.step.reset()
        self.history.load_state_dict(state["history"])
        load_states(self.callbacks, state.get("callbacks", []))

    @classmethod
    def resume(cls, path: str | Path, config: TrainConfig, **kwargs: Any) -> Trainer:
        """A trainer for ``config`` restored from the checkpoint at ``path``."""
        trainer = cls(config, **kwargs)
        trainer.load_state_dict(checkpoint.load(path))
        trainer.saved_iteration = trainer.iteration
        return trainer

    def save(self) -> Path | None:
        """Write the checkpoint to ``config.checkpoint`` (atomically); refuse non-finite weights."""
        if self.config.checkpoint is None:
            return None
        for module in (self.generator, self.critic):
            for name, p in module.named_parameters():
                if not torch.isfinite(p).all():
                    raise self._diverged(self.iteration, f"parameter {name!r} is not finite")
        if self.rank != 0:
            return None
        path = checkpoint.save_atomic(self.state_dict(), self.config.checkpoint)
        self.saved_iteration = self.iteration
        self._emit("checkpoint", path=path)
        return path

    def _diverged(self, iteration: int, what: str) -> DivergenceError:
        return DivergenceError(iteration, what, self.config.checkpoint, self.saved_iteration)

    def _emit(self, name: str, **carried: Any) -> None:
        """Tell every callback (the progress bar first, during :meth:`run`)."""
        event = Event(name, self.iteration, self, **carried)
        for callback in (self._bar, *self.callbacks) if self._bar else self.callbacks:
            callback(event)


__all__ = ["Trainer", "DivergenceError"]
