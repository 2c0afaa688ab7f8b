"""The record of a run: :class:`History`, one row per (generator iteration, seed) of the step
values and one per (evaluation, seed) of the evaluator's measures, readable as series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


class History:
    """Per-iteration records of a run, one row per (iteration, seed).

    Columns: ``iteration`` (generator iterations done), ``seed``, ``w_estimate`` (critic's
    estimate: W for WGAN, the JS lower bound for GANs, from the last critic step's batch),
    ``loss_g``, ``grad_norm_critic``, ``grad_norm_generator``, ``time`` (wall seconds since the
    run started, summed over resumes). Rows at evaluation iterations also carry ``w1_exact``,
    ``w_estimate_eval`` and, for mixtures, ``modes``, ``hq_fraction``, ``reverse_kl``.
    Everything except ``time`` is reproducible bit for bit.
    """

    STEP_FIELDS = ("w_estimate", "loss_g", "grad_norm_critic", "grad_norm_generator")

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.evals: list[dict[str, Any]] = []

    def add_steps(self, first_iteration: int, seeds: list[int], values: torch.Tensor,
                  times: list[float]) -> None:
        """Append rows for consecutive iterations from a (T, 4, S) tensor of step values."""
        for t, (per_field, elapsed) in enumerate(zip(values.tolist(), times, strict=True)):
            for s, seed in enumerate(seeds):
                row = {"iteration": first_iteration + t, "seed": seed}
                row.update({k: v[s] for k, v in zip(self.STEP_FIELDS, per_field, strict=True)})
                row["time"] = elapsed
                self.rows.append(row)

    def add_eval(self, iteration: int, seed: int, values: dict[str, Any]) -> None:
        """Record evaluation results of one seed at ``iteration``."""
        self.evals.append({"iteration": iteration, "seed": seed, **values})

    @property
    def seeds(self) -> list[int]:
        """The seeds recorded, in the order they first appear."""
        return list(dict.fromkeys(r["seed"] for r in (*self.evals, *self.rows)))

    def series(self, name: str, seed: int | None = None,
               last: int | None = None) -> tuple[list[int], list[Any]]:
        """Column ``name`` of one seed as ``(iterations, values)``, in the order recorded.

        A step value (:data:`STEP_FIELDS`, ``time``) comes from the step rows, anything else
        from the evaluations (rows that lack it are left out). ``seed`` defaults to the first
        seed; ``last`` keeps only the last ``last`` points.

        >>> h = History()
        >>> h.add_steps(1, [0], torch.tensor([[[0.5], [1.0], [2.0], [3.0]]]), [0.1])
        >>> h.series("w_estimate")
        ([1], [0.5])
        """
        rows = self.rows if name in (*self.STEP_FIELDS, "time") else self.evals
        if seed is None:
            seed = rows[0]["seed"] if rows else None
        picked = []
        for row in reversed(rows):  # from the end, so that a few last points cost a few rows
            if row["seed"] == seed and name in row:
                picked.append((row["iteration"], row[name]))
                if len(picked) == last:
                    break
        return [i for i, _ in reversed(picked)], [v for _, v in reversed(picked)]

    def as_dict(self) -> dict[str, list]:
        """Columns as plain lists, evaluation results merged into the rows of their iteration.

        Iteration 0 (before training) has an evaluation but no step values; it gets a row too.
        """
        evals = {(e["iteration"], e["seed"]): e for e in self.evals}
        rows = [{"iteration": e["iteration"], "seed": e["seed"]}
                for e in self.evals if e["iteration"] == 0] + self.rows
        columns = ["iteration", "seed", *self.STEP_FIELDS, "time",
                   *sorted({k for e in self.evals for k in e} - {"iteration", "seed"})]
        merged = [{**row, **evals.get((row["iteration"], row["seed"]), {})} for row in rows]
        return {c: [row.get(c) for row in merged] for c in columns}

    def to_csv(self, path: str | Path) -> None:
        """Write :meth:`as_dict` as CSV (empty cells where a value was not measured)."""
        cols = self.as_dict()
        with open(path, "w") as f:
            f.write(",".join(cols) + "\n")
            for values in zip(*cols.values(), strict=True):
                f.write(",".join("" if v is None else repr(v) for v in values) + "\n")

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`as_dict` as JSON."""
        Path(path).write_text(json.dumps(self.as_dict()))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "evals": self.evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows, self.evals = list(state["rows"]), list(state["evals"])


__all__ = ["History"]
