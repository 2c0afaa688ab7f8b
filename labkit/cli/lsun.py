"""``python -m labkit lsun download|prepare|train``: fetch an LSUN LMDB, decode it once into a
uint8 cache, and train the paper's DCGAN WGAN on that cache (data-parallel under torchrun)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from labkit.cli.base import (
    EXIT_INTERRUPTED,
    EXIT_WRITE_FAILED,
    _add_config_options,
    _at_least_one,
    _category,
    _given_options,
    _image_size,
    _Parser,
    _positive_real,
)
from labkit.cli.runs import _check_continues, _check_owner, _disk_full, _run, _saved_run

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
        return _run(config, out, resume=args.resume, quiet=args.quiet, rank=rank)
    finally:
        distributed.shutdown()


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


def _os_error(err: OSError, out: Path) -> str:
    """The start of the line a data command prints for an ``OSError``, up to what was kept: a
    full disk is a write that failed in ``--out``; anything else (an unreadable source file)
    is said as it is."""
    if _disk_full(err):
        return f"could not write in --out {str(out)!r}: {err.strerror}; make room, then: "
    return f"{err.strerror or err}" + (f": {err.filename!r}; " if err.filename else "; ")


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
