"""Runs in worker processes (``spawn``), each dying with the study's process; Ctrl-C stops every
worker once, cleanly (its trainer saves a checkpoint)."""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit._workers import die_with_parent
from labkit.study.config import StudyConfig
from labkit.study.pairs import PairInterrupted, run_one


def _pair_worker(study: StudyConfig, key: str, work: str, results, parent: int) -> None:
    """Body of a worker process: one run, its outcome (the run, or the exception) queued.

    The worker leaves the parent's process group, so that a Ctrl-C at the terminal reaches the
    parent only (which then stops this process once, cleanly), and dies with the parent."""
    os.setpgrp()
    die_with_parent(parent)
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
