"""Checkpoints that survive crashes: atomic writes, safe loading, and a config check on resume.

A checkpoint is a plain dict of tensors and Python values. It is written to a temporary file in the
same folder, flushed to disk and moved over the old one with ``os.replace`` (atomic on POSIX,
:func:`labkit.rundir.atomic_path`), so a process killed mid-write leaves the previous checkpoint
intact. It is read back with ``torch.load(weights_only=True)``, which executes no pickled code; a
file that does not load that way is reported as damaged, never loaded another way.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit.rundir import atomic_path

FORMAT = 1


def save_atomic(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    The checkpoint is serialised in memory first and then written as plain bytes: ``torch.save``
    writing to a full disk raises an opaque ``RuntimeError`` ("unexpected pos ..."), a plain
    write the ``OSError`` (``ENOSPC``) it is, which the command line reports in one line.

    Parameters
    ----------
    state : dict
        Tensors, dicts, lists, tuples, numbers, strings and None only (what
        ``torch.load(weights_only=True)`` accepts).
    path : str or PathLike
        Destination; its folder is created if missing.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        buffer = io.BytesIO()
        torch.save({"format": FORMAT, **state}, buffer)
        tmp.write_bytes(buffer.getbuffer())
    return path


class CheckpointError(ValueError):
    """A checkpoint file that is damaged or not a labkit checkpoint (one line, naming it)."""


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic` (``weights_only=True``, on the CPU).

    The file is only read, never moved or deleted, whatever its state.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        (a ``ValueError``) if the file is empty, truncated, corrupt, holds anything but plain
        tensors and containers, or is not a labkit checkpoint of a known format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many types here; none of their text helps
        state = None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged or not a labkit checkpoint (format {FORMAT}); "
            "it was left as it is")
    return state


def config_differences(saved: dict[str, Any], current: dict[str, Any],
                       ignore: tuple[str, ...] = ()) -> list[str]:
    """Names of the fields whose values differ between two config dicts, ``ignore`` excepted.

    Each entry reads ``"name: saved -> current"``, ready for an error message.

    >>> config_differences({"lr": 5e-05, "iters": 10}, {"lr": 0.0001, "iters": 20}, ("iters",))
    ['lr: 5e-05 -> 0.0001']
    """
    names = sorted((saved.keys() | current.keys()) - set(ignore))
    return [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}"
            for k in names if saved.get(k) != current.get(k)]


def rng_state(generators: list[torch.Generator]) -> dict[str, Any]:
    """The states of ``generators`` and of torch's, numpy's and Python's global RNGs, as
    checkpoint-safe values (tensors, lists, numbers)."""
    np_state = np.random.get_state()
    return {"members": [g.get_state() for g in generators],
            "torch": torch.get_rng_state(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any], generators: list[torch.Generator]) -> None:
    """Restore what :func:`rng_state` captured, ``generators`` in place."""
    for g, s in zip(generators, state["members"], strict=True):
        g.set_state(s)
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])
