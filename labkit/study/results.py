"""The study file: its format, JSON-ready rounding, atomic writes, reading it back, and the work
folder of its runs' checkpoints."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from labkit import rundir

FORMAT = 2


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
