"""``python -m labkit study``: run (or continue) the mode-collapse study of notebook 03 into one
results file (:mod:`labkit.study`)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from labkit.cli.base import EXIT_INTERRUPTED, _add_fields_as_options, _at_least_one, _fields_given

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
