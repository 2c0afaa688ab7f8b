"""What the loop does around Algorithm 1's maths: when to record, evaluate and save
(:class:`Schedule`), what it tells its callbacks (:class:`Event`), the progress bar (a callback
every run has, :class:`ProgressBar`) and Ctrl-C (:func:`ctrl_c`).

A callback is a callable ``fn(event)`` taking an :class:`Event`; one with ``state_dict()`` /
``load_state_dict(state)`` has that state kept in every checkpoint (see
:class:`~labkit.train.Trainer`).
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from labkit import distributed

if TYPE_CHECKING:
    from labkit.train.history import History
    from labkit.train.loop import Trainer


@dataclass(frozen=True)
class Event:
    """What the loop tells its callbacks, after generator iteration :attr:`iteration`.

    :attr:`name` is one of

    - ``"step"``: after every generator iteration;
    - ``"record"``: the buffered step values are now in ``trainer.history`` (at least every 100
      iterations, and before every evaluation and save);
    - ``"evaluating"``: an evaluation starts; :attr:`what` says what it computes;
    - ``"eval"``: an evaluation ended; :attr:`evals` holds its measures and, for image runs,
      :attr:`grid` the fixed-noise samples;
    - ``"checkpoint"``: a checkpoint was written to :attr:`path`;
    - ``"end"``: :meth:`~labkit.train.Trainer.run` returns.

    Under data parallelism only rank 0 evaluates and saves, so only it sees ``"evaluating"``,
    ``"eval"`` and ``"checkpoint"``.

    Attributes
    ----------
    name : str
    iteration : int
    trainer : Trainer
        The run: its models, optimizers and history, for callbacks that act on it.
    evals : list of dict
        ``"eval"``: one dict per seed (exact W1, the critic's estimate, ... for toys; SWD and the
        critic's estimate for images); empty otherwise.
    grid : Tensor (64, 3, S, S) or None
        ``"eval"`` of an image run: the samples from the run's fixed noise, on the CPU, in
        [-1, 1] for a DCGAN generator; None otherwise.
    path : Path or None
        ``"checkpoint"``: the file written.
    what : str
        ``"evaluating"``: what the evaluation computes, in words.
    """

    name: str
    iteration: int
    trainer: Trainer
    evals: list[dict[str, Any]] = field(default_factory=list)
    grid: torch.Tensor | None = None
    path: Path | None = None
    what: str = ""


#: A callback: ``fn(event)``.
Callback = Callable[[Event], None]


@dataclass(frozen=True)
class Schedule:
    """When the loop records, evaluates and saves, after generator iteration ``iteration``.

    Step values are buffered on the device and moved into the history (one host sync) at least
    every :attr:`record_every` iterations and at every evaluation, save and at the end;
    evaluations come every ``eval_every`` iterations (on the evaluating rank only), saves every
    ``checkpoint_every`` and at the end.
    """

    iters: int
    eval_every: int
    checkpoint_every: int
    evaluating: bool
    record_every: int = 100

    def evaluate(self, iteration: int) -> bool:
        return self.evaluating and iteration % self.eval_every == 0

    def save(self, iteration: int) -> bool:
        return iteration % self.checkpoint_every == 0

    def record(self, buffered: int) -> bool:
        return buffered == self.record_every


class ProgressBar:
    """The callback every run has: a ``tqdm.auto`` bar over generator iterations.

    It shows the first seed's ``W_est``, the median of its step estimates over the last (up to)
    100 generator iterations (the paper's median filter, narrower; updated at each ``"record"``),
    and the evaluator's ``headline`` number at the last evaluation (exact W1 for toys, SWD for
    images); either is left out until it exists. While an evaluation runs, its title says what
    is being computed.
    """

    TITLE = "generator iterations"

    def __init__(self, total: int, initial: int, enabled: bool, headline: str | None) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="it",
                        dynamic_ncols=True, desc=self.TITLE)
        self.headline, self.evals = headline, []

    def __call__(self, event: Event) -> None:
        if event.name == "step":
            self.bar.update(1)
        elif event.name == "evaluating":
            self.bar.set_description_str(event.what)
        elif event.name == "eval":
            self.bar.set_description_str(self.TITLE)
            self.evals = event.evals
            self.show(event.trainer.history, event.trainer.seeds[0])
        elif event.name == "record":
            self.show(event.trainer.history, event.trainer.seeds[0], refresh=False)

    def show(self, history: History, seed: int, refresh: bool = True) -> None:
        """Show the numbers of ``seed`` (the first seed's evaluation)."""
        shown = {}
        _, recent = history.series("w_estimate", seed, last=100)
        if recent:
            shown["W_est"] = f"{statistics.median(recent):.4g}"
        if self.evals:
            shown[self.headline] = f"{self.evals[0][self.headline]:.4g}"
        self.bar.set_postfix(shown, refresh=refresh)

    def close(self) -> None:
        self.bar.close()


@dataclass(frozen=True)
class StopFlag:
    """Whether Ctrl-C was pressed: :attr:`pressed` here, :meth:`requested` on any rank."""

    pressed: threading.Event
    world: int = 1
    device: torch.device | None = None

    def requested(self) -> bool:
        """Whether Ctrl-C was pressed, on any rank under data parallelism (all ranks must call
        it together, and then stop together)."""
        if self.world > 1:
            return distributed.any_rank(self.pressed.is_set(), self.device)
        return self.pressed.is_set()


@contextlib.contextmanager
def ctrl_c(world: int = 1, device: torch.device | None = None):
    """While active, Ctrl-C sets the :class:`StopFlag` yielded instead of raising; a second
    Ctrl-C raises ``KeyboardInterrupt`` at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield StopFlag(flag, world, device)
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield StopFlag(flag, world, device)
    finally:
        signal.signal(signal.SIGINT, previous)


def stateful(callbacks: list[Callback]) -> list:
    """The callbacks whose state a checkpoint keeps: those with ``state_dict`` and
    ``load_state_dict`` (e.g. :mod:`labkit.study`'s snapshots), in the order given."""
    return [c for c in callbacks if hasattr(c, "state_dict")]


def load_states(callbacks: list[Callback], states: list[Any]) -> None:
    """Give each of the :func:`stateful` ``callbacks`` its saved state, in order; a checkpoint
    holding another number of states than there are such callbacks is refused (``ValueError``).
    A checkpoint with no states (saved without such callbacks) leaves them as they are."""
    with_state = stateful(callbacks)
    if states and len(states) != len(with_state):
        raise ValueError(f"checkpoint holds the state of {len(states)} callback(s), this "
                         f"trainer has {len(with_state)} with a state_dict")
    for callback, state in zip(with_state, states, strict=False):
        callback.load_state_dict(state)


__all__ = ["Callback", "Event", "Schedule", "ProgressBar", "StopFlag", "ctrl_c", "stateful",
           "load_states"]
