"""The mode-collapse study of notebook 03: every method on the 8-Gaussian ring and the 25-Gaussian
grid, several seeds trained together as one ensemble per (method, target), scored as in VEEGAN /
PacGAN (modes captured, % high quality, reverse KL) and by exact W1, beside two baselines that any
claim of "capturing the modes" must beat.

:func:`run_study` writes one JSON file: the config, the labkit and torch versions, per-seed final
metrics, the curves over training (exact W1, the critic's estimate, modes, %HQ, and the cosine
between the critic's optimiser step and its gradient), a few snapshots for figures, the
:func:`convergence` verdict of every run, and the baselines (:func:`baselines`). The file is
locked while a study writes it and rewritten atomically after each finished (method, target);
inside a pair the trainer checkpoints into a work folder (``runs/<file name>/``), so an
interrupted study resumes where it stopped, losing at most ``checkpoint_every`` iterations.
:func:`summary_table`, :func:`comparison_lines`, :func:`loss_tracking` and
:func:`convergence_lines` turn the file into the notebook's tables (mean +- standard error over
seeds). :data:`DIAGNOSTICS` configures the second, smaller study behind the notebook's
conclusions (critic steps, learning rates, the Adam cosine).

The package, one concept a module:

* :mod:`labkit.study.config`: the methods, targets and budget (:class:`StudyConfig`).
* :mod:`labkit.study.evaluation`: the seeds' streams, final metrics, optimiser-step cosine,
  critic lag and snapshots.
* :mod:`labkit.study.baseline`: ``floor`` and ``support only``.
* :mod:`labkit.study.pairs`: one (method, target) run, resumable;
  :mod:`labkit.study.processes`: runs in worker processes.
* :mod:`labkit.study.running`: the whole study into its file (:mod:`labkit.study.results`).
* :mod:`labkit.study.criterion`: the convergence criterion.
* :mod:`labkit.study.stats`: Spearman, mean and standard error over seeds.
* :mod:`labkit.study.tables`: the notebook's tables and verdicts.
* :mod:`labkit.study.cost`: the matrix products and FLOPs of one iteration.
"""

from labkit.study.baseline import (
    SPREAD_SEEDS,
    SPREADS,
    baseline_points,
    baselines,
    choose_spread,
    support_only_points,
)
from labkit.study.config import (
    ALL_METHODS,
    BASELINES,
    DIAGNOSTIC_METHODS,
    DIAGNOSTICS,
    METHODS,
    QUICK,
    QUICK_DIAGNOSTICS,
    TARGETS,
    Method,
    StudyConfig,
)
from labkit.study.cost import step_flops, step_matmuls
from labkit.study.criterion import (
    CONVERGENCE_TOLERANCE,
    CONVERGENCE_Z,
    convergence,
    run_convergence,
    seed_curves,
)
from labkit.study.evaluation import grid_points, retrained_estimate, sample_metrics, update_cosine
from labkit.study.pairs import PairInterrupted, pair_folder, run_one
from labkit.study.results import FORMAT, default_work, load_results
from labkit.study.running import command_line, progress_report, run_study
from labkit.study.stats import mean_se, spearman
from labkit.study.tables import (
    PUBLISHED,
    TABLE_FIELDS,
    baseline_levels,
    baseline_samples,
    captures_modes,
    collapse_kind,
    collapse_lines,
    comparison_lines,
    convergence_lines,
    format_cell,
    loss_tracking,
    summary_table,
)

__all__ = [
    "METHODS",
    "DIAGNOSTIC_METHODS",
    "ALL_METHODS",
    "TARGETS",
    "BASELINES",
    "QUICK",
    "DIAGNOSTICS",
    "QUICK_DIAGNOSTICS",
    "Method",
    "StudyConfig",
    "spearman",
    "mean_se",
    "convergence",
    "run_convergence",
    "CONVERGENCE_TOLERANCE",
    "CONVERGENCE_Z",
    "support_only_points",
    "choose_spread",
    "baselines",
    "SPREADS",
    "SPREAD_SEEDS",
    "baseline_points",
    "sample_metrics",
    "update_cosine",
    "retrained_estimate",
    "run_one",
    "PairInterrupted",
    "pair_folder",
    "run_study",
    "load_results",
    "default_work",
    "progress_report",
    "command_line",
    "summary_table",
    "captures_modes",
    "loss_tracking",
    "comparison_lines",
    "convergence_lines",
    "format_cell",
    "TABLE_FIELDS",
    "grid_points",
    "PUBLISHED",
    "step_matmuls",
    "step_flops",
    "FORMAT",
    "seed_curves",
    "baseline_levels",
    "baseline_samples",
    "collapse_kind",
    "collapse_lines",
]
