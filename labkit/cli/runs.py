"""The training pipeline of ``toy`` and ``lsun train``: claim the run folder, train (or continue
from its checkpoint), write the outputs atomically, and say in one line what a stop, a
divergence or a failed write kept on disk and how to go on."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from labkit.cli.base import EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_WRITE_FAILED, _flag

#: What ``lsun train`` writes into ``--out`` (a run folder of :mod:`labkit.rundir`).
IMAGE_OUTPUTS = ("config.json", "history.csv", "metrics.json", "w_estimate.png", "samples",
                 "checkpoint.pt")


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def final_metrics(trainer) -> list[dict[str, Any]]:
    """Evaluation at the trainer's current iteration plus the last step's values, one dict per
    seed (what ``metrics.json`` holds).

    Depends only on the state reached, not on the evaluation schedule or on resumes; an
    evaluation the run already made at this iteration is reused, not recomputed.
    """
    it, seeds = trainer.iteration, trainer.seeds
    last = {r["seed"]: r for r in trainer.history.rows if r["iteration"] == it}
    done = {e["seed"]: e for e in trainer.history.evals if e["iteration"] == it}
    evals = ([{k: v for k, v in done[s].items() if k not in ("iteration", "seed")}
              for s in seeds] if len(done) == len(seeds) else trainer.evaluate())
    return [{"seed": seed, "iteration": it,
             "w_estimate": last.get(seed, {}).get("w_estimate", math.nan), **row}
            for seed, row in zip(seeds, evals, strict=True)]


def write_outputs(trainer, out: Path) -> dict[str, Any]:
    """Write ``history.csv``, ``metrics.json`` (final metrics per seed; non-finite values as
    null) and the run's figure into ``out``, each atomically (an interruption leaves the previous
    version, never half a file); return the metrics.

    The figure of a toy run is ``samples.png`` (every seed's samples over the real ones); of an
    image run ``w_estimate.png`` (the W estimate and the SWD), titled with the data and the
    device.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labkit.rundir import atomic_path

    with atomic_path(out / "history.csv") as tmp:
        trainer.history.to_csv(tmp)
    per_seed = [{k: _finite_or_none(v) for k, v in row.items()}
                for row in final_metrics(trainer)]
    metrics = {"iteration": trainer.iteration, "seeds": per_seed}
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    if trainer.config.on_images:
        name, fig = "w_estimate.png", _w_estimate_figure(trainer)
    else:
        name, fig = "samples.png", _samples_figure(trainer)
    with atomic_path(out / name) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return metrics


def _samples_figure(trainer):
    """A toy run's figure: every seed's samples over the real ones and the target's centres."""
    from labkit import plots

    real, fakes = trainer.samples()
    return plots.toy_samples(
        real, {f"seed {s}": f for s, f in zip(trainer.seeds, fakes, strict=True)},
        getattr(trainer.target, "centers", None),
        title=f"{trainer.config.target}, {trainer.config.loss}, iteration {trainer.iteration}")


def _w_estimate_figure(trainer):
    """An image run's figure: the W estimate of every step and the SWD of every evaluation."""
    from labkit import plots

    cfg, history = trainer.config, trainer.history
    source = trainer.target.cache.manifest.get("source", cfg.data)
    return plots.w_estimate_curves(
        {cfg.generator: history.series("w_estimate")}, swd={cfg.generator: history.series("swd")},
        title=f"data: {source} ({cfg.image_size}x{cfg.image_size}); device: {cfg.device} x "
              f"{trainer.world}")


def _command_of(config: dict[str, Any]) -> str:
    """The command that trains a run of this (saved) config: ``lsun train`` for images."""
    return "lsun train" if config.get("target") == "images" else "toy"


def _check_owner(out: Path, command: str) -> None:
    """Refuse, before anything is touched, an ``out`` holding a run that another command made
    (its ``config.json`` says which), naming that command and how to continue the run."""
    try:
        config = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return  # no run there, or not one whose maker can be told: claim() decides
    if isinstance(config, dict) and (owner := _command_of(config)) != command:
        raise ValueError(f"--out {str(out)!r} holds a run of `python -m labkit {owner}` (target "
                         f"{config.get('target')!r}), not of `{command}`; continue it with: "
                         f"{_continue_command(owner, out, config)}, or choose another --out")


def _resume_line(command: str, out: Path, iters: int | None = None) -> str:
    """``python -m labkit COMMAND --out OUT --resume``, with ``--iters`` if given."""
    return (f"python -m labkit {command} --out {out} --resume"
            + (f" --iters {iters}" if iters is not None else ""))


def _continue_command(command: str, out: Path, config: dict[str, Any]) -> str:
    """The command that continues the run in ``out``: ``--resume`` if it is unfinished, else
    ``--resume --iters`` twice its length (any number above it would do)."""
    from labkit import rundir

    iters = config.get("iters")
    if (out / rundir.MARKER).exists() or not isinstance(iters, int):
        return _resume_line(command, out)
    return _resume_line(command, out, 2 * max(iters, 1))


def _saved_run(out: Path, command: str) -> tuple[dict[str, Any], int]:
    """The config and iteration of the run whose checkpoint is in ``out`` (for ``--resume``);
    a run that another command made is refused, naming that command."""
    from labkit import checkpoint

    ckpt = out / "checkpoint.pt"
    if not ckpt.is_file():
        raise ValueError(f"--resume: {str(out)!r} holds no checkpoint.pt to continue; "
                         "leave out --resume to start a run there")
    saved = checkpoint.load(ckpt)
    if not {"config", "iteration"} <= saved.keys() or not isinstance(saved["config"], dict):
        raise checkpoint.CheckpointError(f"checkpoint {str(ckpt)!r} is not a labkit run's "
                                         "checkpoint (no config or iteration)")
    if (owner := _command_of(saved["config"])) != command:
        raise ValueError(f"--resume: {str(out)!r} holds a run of `python -m labkit {owner}`, "
                         f"not of `{command}`; continue it with: "
                         f"{_continue_command(owner, out, saved['config'])}")
    return saved["config"], saved["iteration"]


def _check_continues(config, saved: dict[str, Any], iteration: int, out: Path,
                     epochs: float | None = None):
    """``config`` if it keeps the ``saved`` run's settings (but for
    :data:`~labkit.train.RESUMABLE_FIELDS`) and its ``iters`` go beyond the saved ``iteration``,
    or reach it in a run that did not finish writing its outputs (Ctrl-C in its last evaluation:
    ``--resume`` then completes them); else a one-line error naming the options.
    ``epochs``: the ``--epochs`` that set ``iters``."""
    from labkit import rundir
    from labkit.checkpoint import config_differences
    from labkit.train import RESUMABLE_FIELDS

    changed = [d.split(": ", 1) for d in
               config_differences(saved, config.to_dict(), RESUMABLE_FIELDS)]
    if changed:
        shown = "; ".join(f"{_flag(name)} {values}" for name, values in changed)
        may = ", ".join(_flag(f) for f in RESUMABLE_FIELDS if f != "checkpoint")
        raise ValueError(f"--resume keeps the run's settings, but these differ: {shown}; only "
                         f"{may} may change (start a new run, another --out, to change others)")

    unfinished = (out / rundir.MARKER).exists()
    if config.iters < iteration or (config.iters == iteration and not unfinished):
        given = (f"--epochs {epochs:g} (--iters {config.iters})" if epochs is not None
                 else f"--iters {config.iters}")
        raise ValueError(f"{given} is not beyond the run in {str(out)!r}, which is at "
                         f"iteration {iteration}; pass --iters above {iteration} to continue it")
    return config


def _guarded(trainer, out: Path, command: str, body) -> int:
    """``body()`` (training and outputs), with a second Ctrl-C or a failed write reported in one
    line saying what is kept on disk and how to go on."""
    try:
        return body()
    except KeyboardInterrupt:  # a second Ctrl-C, or one while the outputs were written
        print(_interrupted(trainer, out, command), file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:
        print(f"error: could not write in {str(out)!r}: {err.strerror or err}; "
              f"{'make room; ' if _disk_full(err) else ''}{_kept(trainer, out, command)}",
              file=sys.stderr)
        return EXIT_WRITE_FAILED


def _disk_full(err: OSError) -> bool:
    """Whether ``err`` says the disk (or the user's quota) is full."""
    return err.errno in (errno.ENOSPC, errno.EDQUOT)


def _diverged(err) -> str:
    """The one line a divergence prints, with advice that can be followed."""
    return (f"error: {err}; --resume keeps the run's settings, so start a new run (another "
            "--out) with a smaller --lr or a tighter constraint (--clip, --constraint gp)")


def _run(config, out: Path, *, resume: bool, quiet: bool, rank: int = 0) -> int:
    """Train ``config``, or with ``resume`` continue the run whose checkpoint is in ``out``, as
    rank ``rank`` of a data-parallel run (0 alone): rank 0 claims ``out`` as a run folder of
    :mod:`labkit.rundir` and writes the outputs (an image run's grids at every evaluation too)."""
    from labkit import rundir
    from labkit.train import Trainer

    command = _command_of(config.to_dict())
    images = command == "lsun train"
    kwargs = {"callbacks": [_grid_writer(out)] if images and rank == 0 else [],
              "progress": not quiet and rank == 0}
    ckpt = out / "checkpoint.pt"
    trainer = Trainer.resume(ckpt, config, **kwargs) if resume else Trainer(config, **kwargs)
    claim = (rundir.claim(out, "--out", fresh=not resume,
                          outputs=IMAGE_OUTPUTS if images else rundir.TOY_OUTPUTS)
             if rank == 0 else contextlib.nullcontext())
    with claim as run:
        return _guarded(trainer, out, command, lambda: _train(trainer, run, out, command, rank))


def _train(trainer, run, out: Path, command: str, rank: int = 0) -> int:
    """The run proper of ``python -m labkit <command>``, inside its claimed folder (rank 0) or
    beside it (other ranks): config, training, outputs, status."""
    from labkit.train import DivergenceError

    images = command == "lsun train"
    if rank == 0:
        run.write_text("config.json", json.dumps(trainer.config.to_dict(), indent=2) + "\n")
        if images:
            from labkit import plots

            plots.save_image_grid(trainer.samples()[0], out / "samples" / "real.png")
    started = time.perf_counter()
    try:
        trainer.run()
    except DivergenceError as err:
        print(_diverged(err), file=sys.stderr)
        return EXIT_DIVERGED
    if rank != 0:
        return EXIT_INTERRUPTED if trainer.interrupted else 0
    seconds = time.perf_counter() - started
    if not images and trainer.progress and not any(e["iteration"] == trainer.iteration
                                                   for e in trainer.history.evals):
        print(f"evaluating iteration {trainer.iteration} for metrics.json (exact W1 on "
              f"{trainer.config.eval_samples} points, {len(trainer.seeds)} seed(s))", flush=True)
    metrics = write_outputs(trainer, out)
    if trainer.interrupted:
        print(_interrupted(trainer, out, command), file=sys.stderr)
        return EXIT_INTERRUPTED
    run.finish()
    if images:  # one seed; the time includes the outputs
        row = metrics["seeds"][0]
        print(f"iteration {trainer.iteration}: W estimate {row['w_estimate']:.4g}, "
              f"SWD x 1e3 {row['swd']:.4g}; wrote {out}/ in "
              f"{time.perf_counter() - started:.1f} s")
        return 0
    for row in metrics["seeds"]:
        summary = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items() if k != "iteration")
        print(f"iteration {metrics['iteration']}: {summary}")
    print(f"wrote {out}/ in {seconds:.1f} s")
    return 0


def _kept(trainer, out: Path, command: str) -> str:
    """What a stopped run of ``python -m labkit <command>`` leaves on disk and how to go on."""
    if trainer.saved_iteration is None:
        return "no checkpoint was saved yet, so start again with the same command"
    return (f"checkpoint of iteration {trainer.saved_iteration} in {trainer.config.checkpoint}; "
            f"continue with: {_resume_command(trainer, out, command)}")


def _resume_command(trainer, out: Path, command: str) -> str:
    """The command that continues a stopped run to the iterations it was asked for: ``--resume``
    takes the settings of the checkpoint on disk, so ``--iters`` is added when that checkpoint
    was written before a resume asked for more."""
    from labkit import checkpoint

    try:
        saved = checkpoint.load(trainer.config.checkpoint)["config"]["iters"]
    except (OSError, ValueError, KeyError, TypeError):
        saved = trainer.config.iters
    return _resume_line(command, out, None if saved >= trainer.config.iters
                        else trainer.config.iters)


def _interrupted(trainer, out: Path, command: str) -> str:
    """The one line a Ctrl-C prints: where the run stopped, what was saved, how to go on."""
    return f"interrupted at iteration {trainer.iteration}; {_kept(trainer, out, command)}"


def _grid_writer(out: Path):
    """A trainer callback writing each evaluation's fixed-noise grid to out/samples/."""
    from labkit import plots

    def write(event) -> None:
        if event.name == "eval":
            plots.save_image_grid(event.grid, out / "samples" / f"iter_{event.iteration:06d}.png")

    return write
