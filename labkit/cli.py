"""Command line of the lab: ``python -m labkit info``, ``toy ...``, ``lsun ...``, ``study`` and
``notebook ...``.

``toy`` trains a generator on a 2-D toy target by Algorithm 1 and writes into ``--out``:
``config.json``, ``history.csv``, ``metrics.json``, ``samples.png`` and ``checkpoint.pt``, every
file atomically, in a folder claimed through :mod:`labkit.rundir` (one run at a time, marked
``INCOMPLETE`` until it finishes). Every failure is one line on stderr, never a traceback, with
an exit status: 2 bad arguments or a folder that cannot be used, 3 divergence, 1 a write that
failed (a full disk), 130 Ctrl-C.
``lsun download`` fetches an LSUN LMDB; ``lsun prepare`` decodes it once into a uint8 cache;
``lsun train`` trains the paper's DCGAN critic against a chosen generator on that cache through
the same loop, data-parallel under ``torchrun``, and writes ``config.json``, ``history.csv``,
``metrics.json``, ``w_estimate.png``, ``samples/*.png`` and ``checkpoint.pt``.
``digits export`` writes scikit-learn's real handwritten digits as a folder of PNGs for
``lsun prepare``; ``digits experiment`` runs notebook 04's experiment on them (Figures 3 to 7).
``study`` runs (or continues) the mode-collapse study of notebook 03 into one results file
(:mod:`labkit.study`); Ctrl-C prints what is kept and the command that continues (exit 130).
``notebook run|static|check`` executes notebooks and commits them with static views of their
widgets (:mod:`labkit.publish`); a cell that raises is exit status 1, the notebook unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_WRITE_FAILED = 1
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


def info() -> dict[str, str]:
    """Versions of labkit and its numerical stack, and the device the lab would use.

    The lab runs on the CPU unless asked (``device="cuda"``); ``gpu`` says whether one is visible.
    """
    import numpy
    import ot
    import torch

    import labkit

    gpu = torch.cuda.is_available()
    return {
        "labkit": labkit.__version__,
        "torch": torch.__version__,
        "POT": ot.__version__,
        "numpy": numpy.__version__,
        "device": ("cpu (default; pass device='cuda' or --device cuda to use the GPU)" if gpu
                   else "cpu (this torch sees no GPU, so cpu is the only device)"),
        "gpu": f"yes: {torch.cuda.get_device_name(0)}" if gpu else "no",
    }


def _cmd_info(args: argparse.Namespace) -> int:
    for key, value in info().items():
        print(f"{key:>7}: {value}")
    return 0


# ------------------------------------------------------------------------------------- toy
def _seed_range(text: str) -> tuple[int, int]:
    """``"0-7"`` -> (0, 8) as (first seed, number of seeds); ``"3"`` -> (3, 1)."""
    first, _, last = text.partition("-")
    try:
        a, b = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds {text!r}: expected a range like 0-7 or a single seed") from None
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: need 0 <= first <= last")
    return a, b - a + 1


def _add_config_options(parser: argparse.ArgumentParser, skip: set[str],
                        defaults: dict[str, Any] | None = None) -> None:
    """One option per :class:`labkit.train.TrainConfig` field but ``skip``, defaulting to "not
    given"; the help shows ``defaults`` (the toy defaults unless given)."""
    from labkit.train import TrainConfig

    defaults = {**dataclasses.asdict(TrainConfig()), **(defaults or {})}
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        default = defaults[f.name]
        flag = "--" + f.name.replace("_", "-")
        help_ = f"default {default!r}"
        if isinstance(default, bool) or str(f.type).startswith("bool"):  # bool | None too
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help_)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=float, nargs=len(default), default=None, help=help_)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=help_)


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`labkit.train.TrainConfig` fields given on the command line."""
    from labkit.train import TrainConfig

    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, None) is not None}


def _flag(field: str) -> str:
    """The command-line option that sets a :class:`~labkit.train.TrainConfig` field."""
    return "--seeds" if field == "n_seeds" else "--" + field.replace("_", "-")


def _config_from_args(args: argparse.Namespace, base: dict[str, Any]):
    """``base`` (defaults, or the saved config on resume) updated with the options given."""
    from labkit.train import TrainConfig

    values = {**base, **_given_options(args)}
    if args.seeds is not None:
        values["seed"], values["n_seeds"] = args.seeds
    values["checkpoint"] = str(Path(args.out) / "checkpoint.pt")
    return TrainConfig.from_dict(values)


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _write_history_and_metrics(trainer, out: Path) -> dict[str, Any]:
    """Write ``history.csv`` and ``metrics.json`` (final metrics per seed; non-finite values as
    null) into ``out``, each atomically; return the metrics."""
    from labkit.rundir import atomic_path

    with atomic_path(out / "history.csv") as tmp:
        trainer.history.to_csv(tmp)
    per_seed = [{k: _finite_or_none(v) for k, v in row.items()}
                for row in trainer.final_metrics()]
    metrics = {"iteration": trainer.iteration, "seeds": per_seed}
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def write_outputs(trainer, out: Path) -> dict[str, Any]:
    """Write ``history.csv``, ``metrics.json`` and ``samples.png`` for a trainer into ``out``, each
    atomically (an interruption leaves the previous version, never half a file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labkit import plots
    from labkit.rundir import atomic_path

    metrics = _write_history_and_metrics(trainer, out)
    real, fakes = trainer.samples()
    fig = plots.toy_samples(
        real, {f"seed {s}": f for s, f in zip(trainer.seeds, fakes, strict=True)},
        getattr(trainer.target, "centers", None),
        title=f"{trainer.config.target}, {trainer.config.loss}, iteration {trainer.iteration}")
    with atomic_path(out / "samples.png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return metrics


def _cmd_toy(args: argparse.Namespace) -> int:
    """Train, or with ``--resume`` continue, a toy run in ``--out`` (see the module docstring)."""
    from labkit import rundir
    from labkit.train import TrainConfig, Trainer

    out = rundir.check(args.out, "--out")
    _check_owner(out, "toy")
    if args.resume:
        saved, iteration = _saved_run(out, "toy")
        config = _check_continues(_config_from_args(args, saved), saved, iteration, out)
        trainer = Trainer.resume(out / "checkpoint.pt", config, progress=not args.quiet)
    else:
        config = _config_from_args(args, dataclasses.asdict(TrainConfig()))
        trainer = Trainer(config, progress=not args.quiet)
    with rundir.claim(out, "--out", fresh=not args.resume) as run:
        return _guarded(trainer, out, "toy", lambda: _train(trainer, run, out))


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


def _os_error(err: OSError, out: Path) -> str:
    """The start of the line a data command prints for an ``OSError``, up to what was kept: a
    full disk is a write that failed in ``--out``; anything else (an unreadable source file)
    is said as it is."""
    if _disk_full(err):
        return f"could not write in --out {str(out)!r}: {err.strerror}; make room, then: "
    return f"{err.strerror or err}" + (f": {err.filename!r}; " if err.filename else "; ")


def _diverged(err) -> str:
    """The one line a divergence prints, with advice that can be followed."""
    return (f"error: {err}; --resume keeps the run's settings, so start a new run (another "
            "--out) with a smaller --lr or a tighter constraint (--clip, --constraint gp)")


def _train(trainer, run, out: Path) -> int:
    """The run proper, inside its claimed folder: config, training, outputs, status."""
    from labkit.train import DivergenceError

    run.write_text("config.json", json.dumps(trainer.config.to_dict(), indent=2) + "\n")
    started = time.perf_counter()
    try:
        trainer.run()
    except DivergenceError as err:
        print(_diverged(err), file=sys.stderr)
        return EXIT_DIVERGED
    seconds = time.perf_counter() - started
    if trainer.progress and not any(e["iteration"] == trainer.iteration
                                    for e in trainer.history.evals):
        print(f"evaluating iteration {trainer.iteration} for metrics.json (exact W1 on "
              f"{trainer.config.eval_samples} points, {len(trainer.seeds)} seed(s))", flush=True)
    metrics = write_outputs(trainer, out)
    if trainer.interrupted:
        print(_interrupted(trainer, out, "toy"), file=sys.stderr)
        return EXIT_INTERRUPTED
    run.finish()
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


# ------------------------------------------------------------------------------ lsun train
def _grid_writer(out: Path):
    """A trainer callback writing each evaluation's fixed-noise grid to out/samples/."""
    from labkit import plots

    def write(event: str, trainer) -> None:
        if event == "eval":
            plots.save_image_grid(trainer.evaluator.grid,
                                  out / "samples" / f"iter_{trainer.iteration:06d}.png")

    return write


def write_image_outputs(trainer, out: Path) -> dict[str, Any]:
    """Write ``history.csv``, ``metrics.json`` and ``w_estimate.png`` of an image run into
    ``out``, each atomically; the figure's title names the data and the device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labkit import plots
    from labkit.rundir import atomic_path

    metrics = _write_history_and_metrics(trainer, out)
    cfg, cols = trainer.config, trainer.history.as_dict()
    steps = [(i, w) for i, w in zip(cols["iteration"], cols["w_estimate"], strict=True)
             if w is not None]
    evals = [(e["iteration"], e["swd"]) for e in trainer.history.evals]
    source = trainer.target.cache.manifest.get("source", cfg.data)
    fig = plots.w_estimate_curves(
        {cfg.generator: tuple(zip(*steps, strict=True)) if steps else ((), ())},
        swd={cfg.generator: tuple(zip(*evals, strict=True))},
        title=f"data: {source} ({cfg.image_size}x{cfg.image_size}); device: {cfg.device} x "
              f"{trainer.world}")
    with atomic_path(out / "w_estimate.png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return metrics


#: What ``lsun train`` writes into ``--out`` (a run folder of :mod:`labkit.rundir`).
IMAGE_OUTPUTS = ("config.json", "history.csv", "metrics.json", "w_estimate.png", "samples",
                 "checkpoint.pt")


#: Passes over the training images of an ``lsun train`` run without --epochs or --iters.
DEFAULT_EPOCHS = 25.0


def _cmd_lsun_train(args: argparse.Namespace) -> int:
    from labkit import _checks, distributed, rundir
    from labkit.train import TrainConfig, epoch_iters, image_config

    if args.epochs is not None and args.iters is not None:
        raise ValueError("give either --epochs or --iters, not both (--epochs sets --iters)")

    out = rundir.check(args.out, "--out")
    _check_owner(out, "lsun train")
    given = {**_given_options(args), "checkpoint": str(out / "checkpoint.pt")}
    if args.data is not None:
        given["data"] = _checks.path("data", args.data)
    if args.resume:
        saved, iteration = _saved_run(out, "lsun train")
        if args.epochs is not None:  # counted over the whole run, from iteration 0
            given["iters"] = epoch_iters({**saved, **given}, args.epochs)
        config = _check_continues(TrainConfig.from_dict({**saved, **given}), saved, iteration,
                                  out, args.epochs)
    elif args.data is None:
        raise ValueError("--data is required: the folder of an image cache made by "
                         "`python -m labkit lsun prepare`")
    else:
        config = image_config(given.pop("data"), epochs=args.epochs or DEFAULT_EPOCHS, **given)
    rank, _ = distributed.init_from_env(config.device)
    try:
        return _train_images(args, config, rank, out)
    finally:
        distributed.shutdown()


def _train_images(args: argparse.Namespace, config, rank: int, out: Path) -> int:
    """Train ``config`` as rank ``rank``; rank 0 claims ``out`` and writes the outputs."""
    import contextlib

    from labkit import rundir
    from labkit.train import Trainer

    kwargs = {"callbacks": [_grid_writer(out)] if rank == 0 else [],
              "progress": not args.quiet and rank == 0}
    ckpt = out / "checkpoint.pt"
    trainer = Trainer.resume(ckpt, config, **kwargs) if args.resume else Trainer(config, **kwargs)
    claim = (rundir.claim(out, "--out", fresh=not args.resume, outputs=IMAGE_OUTPUTS)
             if rank == 0 else contextlib.nullcontext())
    with claim as run:
        return _guarded(trainer, out, "lsun train",
                        lambda: _train_images_in(trainer, run, rank, out))


def _train_images_in(trainer, run, rank: int, out: Path) -> int:
    """The image run proper, inside its claimed folder (rank 0) or beside it (other ranks)."""
    from labkit import plots
    from labkit.train import DivergenceError

    if rank == 0:
        run.write_text("config.json", json.dumps(trainer.config.to_dict(), indent=2) + "\n")
        plots.save_image_grid(trainer.samples()[0], out / "samples" / "real.png")
    started = time.perf_counter()
    try:
        trainer.run()
    except DivergenceError as err:
        print(_diverged(err), file=sys.stderr)
        return EXIT_DIVERGED
    if rank != 0:
        return EXIT_INTERRUPTED if trainer.interrupted else 0
    metrics = write_image_outputs(trainer, out)
    if trainer.interrupted:
        print(_interrupted(trainer, out, "lsun train"), file=sys.stderr)
        return EXIT_INTERRUPTED
    run.finish()
    row = metrics["seeds"][0]
    print(f"iteration {trainer.iteration}: W estimate {row['w_estimate']:.4g}, "
          f"SWD x 1e3 {row['swd']:.4g}; wrote {out}/ in {time.perf_counter() - started:.1f} s")
    return 0


def _add_lsun_train(lsun: argparse._SubParsersAction) -> None:
    """Add ``train`` to the ``lsun`` group (the subparsers :func:`_add_lsun_commands` returns)."""
    from labkit.train import IMAGE_DEFAULTS

    p = lsun.add_parser(
        "train", help="train the paper's DCGAN WGAN on an image cache",
        description="Train a WGAN on an image cache (python -m labkit lsun prepare). Options "
                    "default to the authors' LSUN configuration (or, with --resume, to the "
                    "saved run). Under torchrun --nproc_per_node=K it runs data-parallel: "
                    "--batch-size is the global batch, split over the K processes.")
    p.add_argument("--data", help="folder of the image cache (required for a new run)")
    p.add_argument("--out", required=True, help="folder for config, history, metrics, the W "
                                                "plot, sample grids and the checkpoint")
    p.add_argument("--epochs", type=_positive_real, default=None,
                   help="passes over the training images, converted to --iters (default "
                        f"{DEFAULT_EPOCHS:g}; one epoch = N / (batch_size * n_critic) generator "
                        "iterations; with --resume, counted from the run's start)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out up to --iters (or --epochs) in total")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(p, skip={"checkpoint", "n_seeds", "target", "data"},
                        defaults=IMAGE_DEFAULTS)
    p.set_defaults(func=_cmd_lsun_train)


# ------------------------------------------------------------------------------------ lsun
def _cmd_lsun_download(args: argparse.Namespace) -> int:
    from labkit import _checks, lsun, rundir

    out = rundir.check(args.out, "--out")
    lsun.check_url(args.url)
    part = out / f"{args.category}_{args.set}_lmdb.zip.part"
    try:
        with rundir.locked(out, "--out"):
            path = lsun.download(args.category, out, url=args.url, set_name=args.set,
                                 progress=not args.quiet)
    except lsun.DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; {_part_kept(part)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:
        print(f"error: {_os_error(err, out)}{_part_kept(part)}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    cache = path.with_name(path.name.removesuffix("_lmdb") + "64")
    print(f"LMDB ready: {path}; next: python -m labkit lsun prepare --src {path} --out {cache} "
          f"--size 64 --workers {_checks.usable_cpus()}")
    return 0


def _part_kept(part: Path) -> str:
    """What a stopped download leaves, and how to go on."""
    if part.is_file() and part.stat().st_size:
        return (f"the {part.stat().st_size} bytes received are kept in {part}; run the same "
                "command again to resume the download")
    if part.with_suffix("").is_file():
        return (f"the whole archive is kept in {part.with_suffix('')}; run the same command "
                "again to unpack it")
    return "nothing was received; run the same command again to start the download"


def _cmd_lsun_prepare(args: argparse.Namespace) -> int:
    from labkit import images, rundir

    out = rundir.check(args.out, "--out")
    started = time.perf_counter()
    try:
        cache = images.prepare(args.src, out, size=args.size, workers=args.workers,
                               limit=args.limit, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"interrupted; {_prepare_kept(out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:
        if isinstance(err, FileNotFoundError):  # a --src that is not there: one line in main()
            raise
        print(f"error: {_os_error(err, out)}{_prepare_kept(out)}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    seconds = time.perf_counter() - started
    skipped = cache.manifest["skipped"]
    print(f"cache {cache.path}: {cache.count} images of 3 x {cache.size} x {cache.size} "
          f"(uint8) from {cache.manifest['source']} in {seconds:.1f} s; "
          f"{len(skipped)} undecodable record(s) skipped")
    for key, reason in skipped:
        print(f"  skipped {key}: {reason}")
    return 0


def _prepare_kept(out: Path) -> str:
    """What a stopped ``lsun prepare`` leaves in ``out``, and how to go on."""
    from labkit import images

    try:
        state = json.loads((out / images.STATE_FILE).read_text())
        done, total = state["records_done"], state["total"]
    except (OSError, ValueError, KeyError, TypeError):
        done = total = 0
    if done:
        return (f"{done} of {total} records are done and kept in {out}; run the same command "
                "again to continue")
    return "no chunk was finished, so nothing was kept; run the same command again to start"


def _positive_real(text: str) -> float:
    """An option's value as a finite number > 0 (``--epochs``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; it must be a finite number "
                                         "> 0")
    return value


def _image_size(text: str) -> int:
    from labkit._checks import image_size

    try:
        return image_size("--size", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; it must be a power of two >= 16") from None


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; it must be an integer >= 1")
    return value


def _category(text: str) -> str:
    from labkit.lsun import CATEGORIES

    if text not in CATEGORIES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an LSUN scene category; choose one of {', '.join(CATEGORIES)}")
    return text


def _add_lsun_commands(sub) -> argparse._SubParsersAction:
    """The ``lsun`` command group (``download``, ``prepare``); returns its subparsers so that
    further commands (``lsun train``) join the same group."""
    from labkit.lsun import SET_NAMES

    p_lsun = sub.add_parser("lsun", help="LSUN: download, prepare the cache, ...",
                            description="The paper's image experiments on LSUN scenes.")
    group = p_lsun.add_subparsers(required=True, parser_class=_Parser)

    p_get = group.add_parser("download", help="fetch and unpack an official LSUN LMDB zip",
                             description="Download, verify and unpack "
                                         "{category}_{set}_lmdb.zip into OUT (resumable).")
    p_get.add_argument("--category", required=True, type=_category,
                       help="scene category, e.g. bedroom (the paper's)")
    p_get.add_argument("--out", required=True, help="folder receiving {category}_{set}_lmdb/")
    p_get.add_argument("--set", default="train", choices=SET_NAMES, help="default train")
    p_get.add_argument("--url", default=None, help="source of the zip (a mirror); default "
                                                   "http://dl.yf.io/lsun/scenes/...")
    p_get.add_argument("--quiet", action="store_true", help="no progress bar")
    p_get.set_defaults(func=_cmd_lsun_download)

    p_prep = group.add_parser("prepare", help="decode an LMDB or image folder once into a "
                                              "uint8 cache",
                              description="Decode every image once (shorter side resized to "
                                          "--size, centre crop) into CACHE/images.npy with a "
                                          "manifest. Rerun the same command to resume.")
    p_prep.add_argument("--src", required=True, help="an LSUN LMDB folder (with data.mdb) or "
                                                     "a folder of images")
    p_prep.add_argument("--out", required=True, help="cache folder")
    p_prep.add_argument("--size", type=_image_size, default=64,
                        help="image side, a power of two >= 16 (default 64)")
    p_prep.add_argument("--workers", type=_at_least_one, default=1,
                        help="decoding processes (default 1)")
    p_prep.add_argument("--limit", type=_at_least_one, default=None,
                        help="take only the first K records")
    p_prep.add_argument("--quiet", action="store_true", help="no progress bar")
    p_prep.set_defaults(func=_cmd_lsun_prepare)
    return group


# ------------------------------------------------------------------------------------- study
#: Default results files of ``study`` and ``study --diagnostics``.
STUDY_OUT = "data/mode_collapse_study.json"
DIAGNOSTICS_OUT = "data/mode_collapse_diagnostics.json"


def _cmd_study(args: argparse.Namespace) -> int:
    """Run (or continue) the study; Ctrl-C stops it, saying what is kept and how to go on."""
    import labkit
    from labkit import rundir, study
    from labkit._checks import BadValue

    quick = args.quick or labkit.quick_mode()
    base = dict(study.DIAGNOSTICS) if args.diagnostics else {}
    if quick:
        base.update(study.QUICK_DIAGNOSTICS if args.diagnostics else study.QUICK)
    try:
        config = study.StudyConfig(**_fields_given(args, study.StudyConfig, base))
    except BadValue as err:  # name the option, not the field
        raise ValueError(err.render("--" + err.name.replace("_", "-"))) from None
    out = rundir.check_file(args.out or (DIAGNOSTICS_OUT if args.diagnostics else STUDY_OUT),
                            "--out")
    work = rundir.check(args.work or study.default_work(out), "--work")
    again = study.command_line(args.argv + (["--quick"] if quick and not args.quick else []))
    started = time.perf_counter()
    try:
        data = study.run_study(config, out, progress=not args.quiet and args.jobs == 1,
                               jobs=args.jobs, work=work)
    except KeyboardInterrupt:
        print(f"interrupted: {study.progress_report(config, out, work)}; continue with: "
              f"{again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    seconds = time.perf_counter() - started
    print(f"wrote {out} ({len(data['runs'])} runs; this call {seconds:.0f} s, "
          f"training and evaluation in all calls {data['wall_seconds']:.0f} s)")
    return 0


def _add_study_parser(sub) -> None:
    from labkit import study

    p = sub.add_parser("study", help="the mode-collapse study of notebook 03 (all methods, "
                                     "ring and grid, seeds as ensembles)",
                       description="Train every method on each target with one ensemble of "
                                   "seeds per (method, target), score it beside the baselines "
                                   "and write the results JSON. Rerunning the same command "
                                   "resumes: finished runs are kept, a run in progress "
                                   "continues from its last checkpoint in --work.")
    p.add_argument("--out", default=None,
                   help=f"results file (default {STUDY_OUT}, with --diagnostics "
                        f"{DIAGNOSTICS_OUT})")
    p.add_argument("--work", default=None,
                   help="folder of the runs' checkpoints (default runs/<name of --out>)")
    p.add_argument("--diagnostics", action="store_true",
                   help="the diagnostics behind notebook 03's conclusions instead: clipping "
                        "with n_critic 1, 5, 25, Adam, and high learning rates, on the ring")
    p.add_argument("--quick", action="store_true",
                   help="smoke-run sizes (also set by LABKIT_QUICK=1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--jobs", type=_at_least_one, default=min(2, os.cpu_count() or 1),
                   help="runs trained at once, one process each (default: 2, or 1 on one "
                        "core; each uses --threads threads)")
    _add_fields_as_options(p, study.StudyConfig)
    p.set_defaults(func=_cmd_study)


def _add_fields_as_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One option per field of the dataclass ``cls`` (a study's or an experiment's config),
    defaulting to "not given"; tuples take several values, bools --x / --no-x."""
    defaults = cls()
    for field in dataclasses.fields(cls):
        default = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"default {default}")
        elif isinstance(default, tuple):
            parser.add_argument(flag, nargs="+", default=None, metavar=field.name[:-1].upper(),
                                type=type(default[0]) if default else str,
                                help=f"default: {' '.join(map(str, default))}")
        else:
            parser.add_argument(flag, type=type(default), default=None,
                                help=f"default {default}")


def _fields_given(args: argparse.Namespace, cls: type, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with the fields of the dataclass ``cls`` given on the command line."""
    values = dict(base)
    for field in dataclasses.fields(cls):
        given = getattr(args, field.name, None)
        if given is not None:
            values[field.name] = tuple(given) if isinstance(given, list) else given
    return values


# ------------------------------------------------------------------------------------ digits
def _cmd_digits_export(args: argparse.Namespace) -> int:
    from labkit import digits, rundir

    out = rundir.check(args.out, "--out")
    digits.export(out, progress=not args.quiet)
    print(f"wrote {len(digits.export_labels())} digits as PNG into {out} (the last "
          f"{digits.HOLDOUT} are held out; labels in {out / digits.LABELS_FILE}); next: "
          f"python -m labkit lsun prepare --src {out} --out CACHE --size 16")
    return 0


def _cmd_digits_experiment(args: argparse.Namespace) -> int:
    import labkit
    from labkit import digits_experiment as dx
    from labkit import rundir

    rundir.check_file(args.out, "--out")
    rundir.check(args.work, "--work")
    rundir.check(args.grids, "--grids")
    quick = args.quick or labkit.quick_mode()
    config = dx.ExperimentConfig(**_fields_given(args, dx.ExperimentConfig,
                                                 dx.QUICK if quick else {}))
    started = time.perf_counter()
    try:
        data = dx.run_experiment(config, args.out, args.work, args.grids, jobs=args.jobs,
                                 progress=not args.quiet and args.jobs == 1)
    except KeyboardInterrupt:
        print(f"interrupted; finished runs are kept in {args.out}, the runs in progress saved "
              f"checkpoints under {args.work}; run the same command again to continue",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print("\n".join(dx.table_lines(data)))
    print(f"wrote {args.out} ({len(data['runs'])} runs; this call "
          f"{time.perf_counter() - started:.0f} s, all calls {data['wall_seconds']:.0f} s); "
          f"grids in {args.grids}; checkpoints in {args.work} (delete it when done)")
    return 0


def _add_digits_parser(sub) -> None:
    from labkit import digits_experiment as dx

    p = sub.add_parser("digits", help="real handwritten digits: export them for lsun prepare, "
                                      "run notebook 04's experiment",
                       description="scikit-learn's 1,797 real digits through the LSUN data "
                                   "path, and the paper's Figures 3 to 7 on them.")
    group = p.add_subparsers(required=True, parser_class=_Parser)
    p_export = group.add_parser("export", help="write the digits as PNG files for lsun prepare",
                                description="Write the 1,797 digits as 8 x 8 greyscale PNGs "
                                            "(grey = round(v * 255 / 16)) and labels.csv into "
                                            "OUT, the 300 held-out digits last.")
    p_export.add_argument("--out", required=True, help="folder to create")
    p_export.add_argument("--quiet", action="store_true", help="no progress bar")
    p_export.set_defaults(func=_cmd_digits_export)

    p_exp = group.add_parser(
        "experiment", help="WGAN against GAN with four generators on the digits (notebook 04)",
        description="Train every arm (WGAN, GAN) x (dcgan, dcgan-nobn, dcgan-const, mlp) and "
                    "the MLP pair at a high learning rate, for several seeds, on the digits "
                    "cache, and write the results file and sample grids. Rerunning with the "
                    "same --out resumes: finished runs are kept, an unfinished one continues "
                    "from its checkpoint in --work.")
    p_exp.add_argument("--out", default="data/digits_experiment.json",
                       help="results file (default data/digits_experiment.json)")
    p_exp.add_argument("--grids", default="data/digits",
                       help="folder of the sample grids (default data/digits)")
    p_exp.add_argument("--work", default="runs/digits",
                       help="folder of the digits cache and of the runs' checkpoints (default "
                            "runs/digits)")
    p_exp.add_argument("--jobs", type=_at_least_one, default=1,
                       help="runs trained at once, one process each (default 1; on two cores: "
                            "--jobs 2)")
    p_exp.add_argument("--quick", action="store_true",
                       help="smoke-run sizes (also set by LABKIT_QUICK=1)")
    p_exp.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_fields_as_options(p_exp, dx.ExperimentConfig)
    p_exp.set_defaults(func=_cmd_digits_experiment)


# ------------------------------------------------------------------------------------- notebook
def _cmd_notebook(args: argparse.Namespace) -> int:
    """``run`` (execute, then static views), ``static`` (static views only) or ``check``."""
    from tqdm.auto import tqdm

    from labkit import publish

    for path in args.paths:
        if not Path(path).is_file() or Path(path).suffix != ".ipynb":
            raise ValueError(f"notebook {path!r} is not an .ipynb file")
    found = []
    for path in map(Path, args.paths):
        if args.action == "check":
            found += publish.problems(path)
            continue
        bar = tqdm(desc=path.name, unit="cell", disable=args.action != "run")
        with contextlib.closing(bar):
            def step(done: int, total: int, bar=bar) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                problems = publish.publish(path, run=args.action == "run", quick=args.quick,
                                           timeout=args.timeout, on_cell=step)
            except publish.CellFailed as err:
                print(f"error: {err}; the notebook was left unchanged", file=sys.stderr)
                return 1
            except KeyboardInterrupt:
                print(f"interrupted; {path} was left unchanged", file=sys.stderr)
                return EXIT_INTERRUPTED
        found += problems
        print(f"wrote {path}" + (" (quick mode)" if args.quick else ""))
    for line in found:
        print(line)
    if args.action == "check":
        print(f"{len(args.paths)} notebooks checked, {len(found)} problems")
    return 1 if found else 0


def _add_notebook_parser(sub) -> None:
    p = sub.add_parser("notebook", help="execute and commit notebooks with static views of "
                                        "their widgets (labkit.publish)",
                       description="run: execute each notebook top to bottom in a fresh kernel "
                                   "(full mode unless --quick) in its own folder, then write it "
                                   "back with static views of its widgets, in the form "
                                   "JupyterLab saves; static: only rewrite the static views; "
                                   "check: list what would not read well in a fresh clone "
                                   "(exit status 1 if anything).")
    p.add_argument("action", choices=("run", "static", "check"))
    p.add_argument("paths", nargs="+", metavar="NOTEBOOK", help=".ipynb files")
    p.add_argument("--quick", action="store_true", help="run with LABKIT_QUICK=1 (for trials; "
                                                        "commit full runs)")
    p.add_argument("--timeout", type=_at_least_one, default=None,
                   help="seconds one cell may take (default: no limit)")
    p.set_defaults(func=_cmd_notebook)


# ------------------------------------------------------------------------------------- main
class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from labkit.train import IMAGE_FIELDS

    parser = _Parser(prog="python -m labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    p_info = sub.add_parser("info", help="print versions and the device in use")
    p_info.set_defaults(func=_cmd_info)

    p_toy = sub.add_parser("toy", help="train on a 2-D toy target (Algorithm 1)",
                           description="Train a GAN/WGAN on a 2-D toy target. Options default "
                                       "to Algorithm 1 (or, with --resume, to the saved run).")
    p_toy.add_argument("--out", required=True, help="folder for config, history, metrics, "
                                                   "samples plot and checkpoint")
    p_toy.add_argument("--resume", action="store_true",
                       help="continue the run in --out up to --iters in total")
    p_toy.add_argument("--seeds", type=_seed_range, default=None,
                       help="train seeds A..B together as an ensemble, e.g. 0-7")
    p_toy.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(p_toy, skip={"checkpoint", "n_seeds", *IMAGE_FIELDS})
    p_toy.set_defaults(func=_cmd_toy)
    _add_lsun_train(_add_lsun_commands(sub))
    _add_study_parser(sub)
    _add_digits_parser(sub)
    _add_notebook_parser(sub)
    parser.set_defaults(commands=", ".join(sub.choices))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (errors are one line on stderr)."""
    from labkit._checks import BadValue
    from labkit.rundir import RunDirError
    from labkit.train import TrainConfig

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.error(f"choose a command: {args.commands} "
                     "(python -m labkit COMMAND -h for its options)")
    if getattr(args, "seeds", None) is not None and args.seed is not None:
        parser.error("give either --seed or --seeds, not both")
    try:
        return args.func(args)
    except (BadValue, RunDirError) as err:  # named as this command's option where it has one
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        ours = err.name in fields or hasattr(args, err.name)
        print(f"error: {err.render(_flag(err.name)) if ours else err}", file=sys.stderr)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:  # e.g. a full disk while the run folder was being set up
        print(f"error: {err}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    except KeyboardInterrupt:
        print("interrupted before the run started; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE
