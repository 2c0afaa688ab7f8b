"""``python -m labkit notebook run|static|check``: execute notebooks and commit them with static
views of their widgets (:mod:`labkit.publish`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from labkit.cli.base import EXIT_INTERRUPTED, _at_least_one


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
