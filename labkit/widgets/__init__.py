"""Interactive apps for the notebooks: the theta explorer of the paper's Example 1, the clipping
explorer of notebook 02 and the checkpoint slider of notebook 03.

The update logic is pure and tested without a browser (:func:`example1_readout`,
:func:`readout_html`, :class:`ClipExplorerModel`); :func:`theta_explorer` and
:func:`clip_explorer` wire it to ipywidgets. Their figures (:mod:`labkit.widgets.views`) and
:mod:`labkit.plots` are imported lazily, so that ``import labkit.widgets`` does not load
matplotlib.

* :mod:`labkit.widgets.example1`: the theta explorer.
* :mod:`labkit.widgets.clipping`: the clipping explorer.
* :mod:`labkit.widgets.snapshots`: the checkpoint slider.
* :mod:`labkit.widgets.views`: the explorers' figures, updated in place, and their PNG encoder.
"""

from labkit.widgets._controls import CONTROL_WIDTH
from labkit.widgets.clipping import (
    CLIP_KEYS,
    CLIP_RANGE,
    DEPTH_RANGE,
    EXPLORER_CONSTRAINTS,
    N_CRITIC_RANGE,
    ClipExplorerModel,
    ClipExplorerState,
    clip_explorer,
    clip_readout_html,
)
from labkit.widgets.example1 import (
    KEYS,
    N_RANGE,
    THETA_RANGE,
    example1_readout,
    example1_samples,
    readout_html,
    theta_explorer,
)
from labkit.widgets.snapshots import snapshot_slider

__all__ = [
    "CLIP_KEYS",
    "CLIP_RANGE",
    "CONTROL_WIDTH",
    "ClipExplorerModel",
    "ClipExplorerState",
    "DEPTH_RANGE",
    "EXPLORER_CONSTRAINTS",
    "KEYS",
    "N_CRITIC_RANGE",
    "N_RANGE",
    "THETA_RANGE",
    "clip_explorer",
    "clip_readout_html",
    "example1_readout",
    "example1_samples",
    "readout_html",
    "snapshot_slider",
    "theta_explorer",
]
