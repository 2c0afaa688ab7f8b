"""The image experiment of notebook 04: the paper's Figures 3 to 7 on real digits, WGAN against a
standard GAN with four generators, several seeds each, scored by a digit classifier and the SWD.

Arms (:data:`ARMS`): {WGAN with weight clipping at the paper's settings, standard GAN as the
DCGAN paper trains it} x {DCGAN generator, the authors' no-BatchNorm generator, the paper's
no-BatchNorm constant-width generator, MLP generator}, all against the DCGAN critic, plus the
lower half of Figure 3: MLP generator and MLP critic at a high learning rate. Every run trains on
the digits cache (:mod:`labkit.digits`) through :class:`labkit.train.Trainer` in its own folder
under ``work`` with checkpoints, so a stopped experiment resumes inside the run it was in. At
each evaluation it records the critic's estimate on held-out digits, the SWD against them, and
the class count of ``n_count`` generated digits (:class:`DigitEvaluator`).

:func:`run_experiment` writes one JSON file, rewritten atomically after each finished run (the
config, the command, the labkit and torch versions, the classifier's held-out accuracy, the
baselines, and per run its final metrics, curves and whether its metrics levelled off), and
small PNG sample grids. :func:`summary_table` turns it into the notebook's table.

The package, one concept a module: :mod:`labkit.digits_experiment.config` (arms and budget),
:mod:`labkit.digits_experiment.evaluation` (what a run measures, the baselines),
:mod:`labkit.digits_experiment.runs` (one run, all runs, the results file and the grids),
:mod:`labkit.digits_experiment.tables` (the table and the curves) and
:mod:`labkit.digits_experiment.claims` (the verdicts on the paper's claims).
"""

from labkit.digits_experiment.claims import RULES, flatness, run_state, tracking, verdicts
from labkit.digits_experiment.config import (
    ARMS,
    GAN,
    GENERATOR_LABELS,
    HIGH_LR,
    QUICK,
    WGAN,
    Arm,
    ExperimentConfig,
)
from labkit.digits_experiment.evaluation import (
    LEVEL_RULES,
    DigitEvaluator,
    baselines,
    classifier_for,
    levelled_off,
)
from labkit.digits_experiment.runs import (
    grid_name,
    in_parallel,
    load_grid,
    load_results,
    run_experiment,
    run_folder,
    run_one,
)
from labkit.digits_experiment.tables import (
    LOSS_NAMES,
    TABLE_FIELDS,
    curve_cells,
    curve_styles,
    line_label,
    seed_curves,
    summary_table,
    table_lines,
)

__all__ = [
    "ARMS",
    "WGAN",
    "GAN",
    "HIGH_LR",
    "Arm",
    "ExperimentConfig",
    "QUICK",
    "DigitEvaluator",
    "levelled_off",
    "LEVEL_RULES",
    "run_one",
    "baselines",
    "run_experiment",
    "load_results",
    "summary_table",
    "table_lines",
    "TABLE_FIELDS",
    "run_folder",
    "grid_name",
    "classifier_for",
    "GENERATOR_LABELS",
    "seed_curves",
    "RULES",
    "run_state",
    "tracking",
    "in_parallel",
    "flatness",
    "verdicts",
    "curve_cells",
    "curve_styles",
    "line_label",
    "load_grid",
    "LOSS_NAMES",
]
