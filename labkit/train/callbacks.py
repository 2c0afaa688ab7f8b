"""What the loop does around Algorithm 1's maths: when to record, evaluate and save
(:class:`Schedule`), the progress bar (:class:`ProgressBar`) and Ctrl-C (:func:`ctrl_c`).

User callbacks are callables ``fn(event, trainer)`` with ``event`` in ``"eval"``,
``"checkpoint"`` and ``"end"``; one with ``state_dict()`` / ``load_state_dict(state)`` has that
state kept in every checkpoint (see :class:`~labkit.train.Trainer`).
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from labkit import distributed

if TYPE_CHECKING:
    from labkit.train.history import History
    from labkit.train.loop import Trainer

#: A user callback: ``fn(event, trainer)``.
Callback = Callable[[str, "Trainer"], None]


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
    """A ``tqdm.auto`` bar over generator iterations, showing the numbers it is given; while an
    evaluation runs its title says what is being computed."""

    TITLE = "generator iterations"

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="it",
                        dynamic_ncols=True, desc=self.TITLE)

    def advance(self) -> None:
        self.bar.update(1)

    def show(self, history: History, seed: int, last_eval: list[dict[str, Any]],
             headline: str | None, refresh: bool = True) -> None:
        """Show the numbers of ``seed``: ``W_est``, the median of its step estimates over the
        last (up to) 100 generator iterations (the paper's median filter, narrower), and the
        evaluator's ``headline`` number at the last evaluation (``last_eval``, one dict per
        seed, the first one's); either is left out until it exists."""
        shown = {}
        _, recent = history.series("w_estimate", seed, last=100)
        if recent:
            shown["W_est"] = f"{statistics.median(recent):.4g}"
        if last_eval:
            shown[headline] = f"{last_eval[0][headline]:.4g}"
        self.bar.set_postfix(shown, refresh=refresh)

    @contextlib.contextmanager
    def busy(self, what: str):
        """Title ``what`` inside the block, the usual title after it."""
        self.bar.set_description_str(what)
        yield
        self.bar.set_description_str(self.TITLE)

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


__all__ = ["Callback", "Schedule", "ProgressBar", "StopFlag", "ctrl_c", "stateful"]
