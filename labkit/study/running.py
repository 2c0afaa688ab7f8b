"""Running a study: the baselines and every (method, target) not yet in the results file, in
this process or in workers, resumable; what a stopped study kept; the command line to rerun it."""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from labkit import _checks, rundir
from labkit.study.baseline import baselines
from labkit.study.config import ALL_METHODS, StudyConfig
from labkit.study.pairs import PairInterrupted, pair_folder, run_one
from labkit.study.processes import _run_in_processes
from labkit.study.results import FORMAT, _write_atomic, default_work, load_results
from labkit.study.stats import mean_se
from labkit.study.tables import _measured


def run_study(study: StudyConfig, path: str | os.PathLike, progress: bool = True,
              log: Callable[[str], None] = print, jobs: int = 1,
              work: str | os.PathLike | None = None) -> dict:
    """Run the baselines and every (method, target) of ``study`` not yet in ``path``.

    The results file is locked for the whole call (:func:`labkit.rundir.claim_file`: a
    second study on the same file is refused). An existing file is continued only when it was
    made with the same config, ``threads`` included (else ValueError naming the differing
    fields); its finished runs are kept. The file is replaced atomically after the baselines
    and after each finished run; a run in progress checkpoints into ``work`` (default
    :func:`default_work`), so an interrupted study loses at most ``checkpoint_every``
    iterations of each run in progress. A finished run's folder is deleted once the file
    holds it.

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
        Runs trained at once, each in its own process (``spawn``), which dies with this one
        (Linux). On two cores, two jobs of one thread each keep both cores busy and, unlike
        two threads in one process, do not stall when another program takes a core.
    work : str or PathLike, optional
        The folder of the runs' checkpoints.

    Returns
    -------
    dict
        The results, as :func:`load_results` reads them; ``wall_seconds`` is the wall time of
        all calls together, ``runs[key]["seconds"]`` each run's own.

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C: the runs in progress were stopped and checkpointed (those of other
        processes too); :func:`progress_report` says what is on disk.
    """
    jobs = _checks.integer("jobs", jobs, minimum=1)
    path = Path(path)
    work = default_work(path) if work is None else Path(work)
    with rundir.claim_file(path, "--out", "study"):
        data = _open_results(study, path)
        started, wall_before = time.perf_counter(), data["wall_seconds"]

        def save() -> None:
            data["wall_seconds"] = round(wall_before + time.perf_counter() - started, 1)
            data["load_average"] = [round(x, 2) for x in os.getloadavg()]
            data["jobs"] = jobs
            _write_atomic(data, path)

        if "baselines" not in data:
            data["baselines"] = baselines(study)
            save()
            log("baselines: " + "; ".join(f"{k} {_one_line(b)}"
                                          for k, b in data["baselines"].items()))
        order = [f"{m}/{t}" for t in study.targets for m in study.methods]
        for key in order:
            if key in data["runs"]:
                log(f"{key}: done before, kept")

        def finished(key: str, run: dict) -> None:
            runs = {**data["runs"], key: run}
            data["runs"] = {k: runs[k] for k in order if k in runs}
            save()
            shutil.rmtree(pair_folder(work, key), ignore_errors=True)
            log(f"{key}: {run['seconds']:.0f} s; {_one_line(run)}; "
                f"{run['convergence']['verdict']}")

        todo = [key for key in order if key not in data["runs"]]
        if jobs == 1:
            try:
                for key in todo:
                    finished(key, run_one(study, *key.split("/"), work=work,
                                          progress=progress))
            except PairInterrupted as err:  # the trainer saw Ctrl-C and saved a checkpoint
                raise KeyboardInterrupt(str(err)) from None
        else:  # longest runs first (gradient penalty, many critic steps, ...) so jobs end together
            todo.sort(key=lambda key: -_relative_cost(key.split("/")[0]))
            _run_in_processes(study, todo, jobs, work, finished,
                              started=lambda key: log(f"{key}: started"))
        for key in order:  # folders of runs that finished but were not cleaned up (a crash)
            shutil.rmtree(pair_folder(work, key), ignore_errors=True)
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
    return data


def _open_results(study: StudyConfig, path: Path) -> dict:
    """The results in ``path`` if it continues ``study``; a new, empty study if none."""
    import labkit

    config = study.to_dict()
    if path.exists():
        data = load_results(path)
        diffs = [f"{k}: file {data['config'].get(k)!r}, asked {v!r}"
                 for k, v in config.items() if data["config"].get(k) != v]
        if diffs:
            raise ValueError(f"path={str(path)!r} holds a study with another config ("
                             + "; ".join(diffs) + "); choose another path or delete it")
        return data
    return {"format": FORMAT, "labkit": labkit.__version__, "torch": torch.__version__,
            "config": config, "runs": {}, "wall_seconds": 0.0,
            "methods": {k: dataclasses.asdict(ALL_METHODS[k]) for k in study.methods}}


def _relative_cost(method: str) -> float:
    """Rough cost of a method's generator iteration, in units of one forward-backward pass."""
    settings = ALL_METHODS[method].settings
    return settings["n_critic"] * (2.0 if settings["constraint"] == "gp" else 1.0) + 1.0


def _one_line(run: dict) -> str:
    cells = []
    for field in ("modes", "hq_percent", "w1_exact"):
        mean, se, _ = mean_se(_measured(run, field))
        cells.append(f"{field} {mean:.3g} +- {se:.2g}")
    return ", ".join(cells)


def progress_report(study: StudyConfig, path: str | os.PathLike,
                    work: str | os.PathLike | None = None) -> str:
    """What a (stopped) study has on disk, in one line: the finished runs in the results
    file and the checkpoints of unfinished ones in the work folder (read back, so it is
    true however the study stopped)."""
    from labkit import checkpoint

    path = Path(path)
    work = default_work(path) if work is None else Path(work)
    order = [f"{m}/{t}" for t in study.targets for m in study.methods]
    try:
        done = set(load_results(path)["runs"]) if path.exists() else set()
    except ValueError:
        done = set()
    parts = [f"{str(path)!r} holds {len(done)} of {len(order)} finished (method, target) runs"
             + ("" if path.exists() else " (it was not written yet)")]
    kept = []
    for key in order:
        ckpt = pair_folder(work, key) / "checkpoint.pt"
        if key not in done and ckpt.is_file():
            try:
                kept.append(f"{key} at iteration {checkpoint.load(ckpt)['iteration']}")
            except (ValueError, KeyError):
                kept.append(f"{key} (unreadable checkpoint, will restart)")
    if kept:
        parts.append(f"checkpoints in {str(work)!r}: " + ", ".join(kept))
    return "; ".join(parts)


def command_line(argv: Sequence[str]) -> str:
    """``argv`` (the study command's arguments) as a line to paste into a shell."""
    return "python -m labkit " + shlex.join(argv)
