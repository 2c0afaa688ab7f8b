"""Matplotlib figures for the notebooks of WGAN Lab, by topic.

Every public function returns a :class:`matplotlib.figure.Figure` built with the object API
(``fig, ax = plt.subplots(...)``), so it works under Agg, inline and interactive backends alike.
Infinite values (KL between disjoint supports) are drawn as a line above every finite value and
say so in the legend.

* :mod:`labkit.plots.distances`: distances against theta and n (Example 1, the paper's Figure 1).
* :mod:`labkit.plots.critics`: trained critics, their gradients and their estimate of W1.
* :mod:`labkit.plots.samples`: 2-D samples and snapshots of training.
* :mod:`labkit.plots.curves`: curves over generator iterations.
* :mod:`labkit.plots.grids`: image batches as grids, PNG files and tables.

The explorers' figures, updated in place, live with the widgets (:mod:`labkit.widgets.views`).
"""

from labkit.plots._style import BASELINE_STYLES
from labkit.plots.critics import (
    estimate_vs_exact,
    figure2,
    gradient_agreement,
    layer_study,
    loss_tracks,
    rank_tracking,
)
from labkit.plots.curves import convergence_panels, curve_table, mean_curves, w_estimate_curves
from labkit.plots.distances import (
    distance_curves,
    example1_setup,
    sample_convergence,
    trained_distances,
    trajectories,
)
from labkit.plots.grids import grid_table, image_grid, sample_grids, save_image_grid
from labkit.plots.samples import checkpoint_panels, toy_samples, training_snapshots

__all__ = [
    "BASELINE_STYLES",
    "checkpoint_panels",
    "convergence_panels",
    "curve_table",
    "distance_curves",
    "estimate_vs_exact",
    "example1_setup",
    "figure2",
    "gradient_agreement",
    "grid_table",
    "image_grid",
    "layer_study",
    "loss_tracks",
    "mean_curves",
    "rank_tracking",
    "sample_convergence",
    "sample_grids",
    "save_image_grid",
    "toy_samples",
    "trained_distances",
    "training_snapshots",
    "trajectories",
    "w_estimate_curves",
]
