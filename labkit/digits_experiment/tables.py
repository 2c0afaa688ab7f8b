"""The results file as the notebook's table and figures' input: mean +- standard error over
seeds per arm beside the baselines, each run's curves, their legend labels and styles."""

from __future__ import annotations

import math
from typing import Any

from labkit.study import format_cell, mean_se

TABLE_FIELDS = ("classes", "class_kl", "confident", "swd")


def summary_table(data: dict) -> list[dict[str, Any]]:
    """One row per arm: mean, standard error and n over seeds of each final metric
    (:data:`TABLE_FIELDS`), the number of seeds whose SWD and confident share levelled off,
    then one row per baseline (a single value each: n = 1).

    ``class_kl`` averages only seeds with a confident digit (n says how many).
    """
    rows = []
    for arm in data["config"]["arms"]:
        runs = [r for r in data["runs"].values() if r["arm"] == arm]
        if not runs:
            continue
        row = {"arm": arm, "label": data["arms"][arm]["label"], "n_seeds": len(runs),
               "levelled": sum(all(ok for _, ok in r["levelled"].values()) for r in runs),
               "diverged": sum(r["diverged"] is not None for r in runs)}
        for field in TABLE_FIELDS:
            row[field] = mean_se(_measured(r["final"].get(field) for r in runs))
        rows.append(row)
    for name in ("real", "mean+noise", "one class"):
        base = data["baselines"][name]
        rows.append({"arm": name, "label": f"baseline: {name}", "n_seeds": 1, "levelled": None,
                     "diverged": 0, **{f: (_nan(base[f]), math.nan, 1) for f in TABLE_FIELDS}})
    return rows


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _measured(values) -> list[float]:
    """The values that were measured: None (no samples) and nan left out, as mean_se asks."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def table_lines(data: dict) -> list[str]:
    """:func:`summary_table` as aligned text, mean +- s.e. over seeds."""
    head = (f"{'arm':<48} {'classes':>11} {'KL (nats)':>13} {'confident':>13} {'SWD x1e3':>13}"
            f" {'levelled':>8}")
    lines = [head, "-" * len(head)]
    for row in summary_table(data):
        cells = [format_cell(row[f], d) for f, d in zip(TABLE_FIELDS, (1, 2, 2, 1), strict=True)]
        level = "" if row["levelled"] is None else f"{row['levelled']}/{row['n_seeds']}"
        lines.append(f"{row['label']:<48} {cells[0]:>11} {cells[1]:>13} {cells[2]:>13} "
                     f"{cells[3]:>13} {level:>8}")
    return lines


#: Short names of the losses in legends.
LOSS_NAMES = {"wgan": "WGAN", "gan": "GAN", "wgan-mlp-critic": "WGAN, MLP critic"}


_SEED_STYLES = ("-", "--", ":", "-.")


def line_label(arm: str, seed: int) -> str:
    """Legend label of one run: ``"WGAN seed 0"``."""
    return f"{LOSS_NAMES[arm.split('/')[0]]} seed {seed}"


def curve_cells(data: dict, columns: dict[str, tuple[str, ...]],
                rows: tuple[str, ...]) -> dict[str, dict[str, dict[str, tuple]]]:
    """The input of :func:`labkit.plots.curve_table`: column title -> row -> line -> curve,
    one line per run of the column's arms (:func:`seed_curves`; row ``"w"`` is the estimate,
    median of 101 over the raw values)."""
    return {title: {row: {line_label(arm, seed): curve
                          for arm in arms for seed, curve in seed_curves(data, arm, row).items()}
                    for row in rows}
            for title, arms in columns.items()}


def curve_styles(data: dict) -> dict[str, dict[str, str]]:
    """Line styles for :func:`labkit.plots.curve_table`: one colour per loss (WGAN blue, GAN
    orange, the MLP-critic WGAN green), one dash pattern per seed."""
    colours = {"wgan": "C0", "gan": "C1", "wgan-mlp-critic": "C2"}
    return {line_label(r["arm"], r["seed"]): {
        "color": colours[r["arm"].split("/")[0]],
        "ls": _SEED_STYLES[(r["seed"] - data["config"]["first_seed"]) % len(_SEED_STYLES)]}
        for r in data["runs"].values()}


def seed_curves(data: dict, arm: str, field: str) -> dict[int, tuple[list, ...]]:
    """Curves of one arm, seed -> (iterations, values): ``field`` ``"w"`` gives the estimate
    (W for WGAN, the JS lower bound for GAN) as (iterations, median of 101, raw); any
    evaluation field (``"swd"``, ``"confident"``, ``"classes"``, ``"class_kl"``,
    ``"w_estimate_eval"``) its values at the evaluations."""
    curves = {}
    for run in data["runs"].values():
        if run["arm"] != arm:
            continue
        if field == "w":
            curves[run["seed"]] = (run["w"]["iteration"], run["w"]["median101"], run["w"]["raw"])
        else:
            curves[run["seed"]] = (run["evals"]["iteration"], run["evals"][field])
    return dict(sorted(curves.items()))
