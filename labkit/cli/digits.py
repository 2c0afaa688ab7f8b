"""``python -m labkit digits export|experiment``: scikit-learn's real digits as an image folder,
and notebook 04's experiment on them."""

from __future__ import annotations

import argparse
import sys
import time

from labkit.cli.base import (
    EXIT_INTERRUPTED,
    _add_fields_as_options,
    _at_least_one,
    _fields_given,
    _Parser,
)


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
