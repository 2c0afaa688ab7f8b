"""What the explorers share: the width and style of their controls, the HTML table of their
readouts, and the size check of the exact W1 solver they call."""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets

from labkit import _checks, ot

#: Width of every explorer control. The theta slider's track (the width less the description
#: and the readout) is about 460 px for its 201 steps of 0.01, so that dragging reaches every
#: value, 0 included (``tests/test_browser.py``); 124 px, ipywidgets' default, skipped some.
CONTROL_WIDTH = "640px"


def _control_options() -> dict:
    """Layout and style shared by the controls of an explorer: descriptions in one 80 px column,
    tracks of one length, so that the controls line up."""
    return {"layout": ipywidgets.Layout(width=CONTROL_WIDTH),
            "style": {"description_width": "80px"}}


def _table(values: Mapping[str, float], keys, labels, fmt, css_class: str) -> str:
    """``<table class=css_class>`` with one ``<td data-key="KEY">`` row per key."""
    if not isinstance(values, Mapping):
        raise _checks.BadValue("values", values, f"a mapping of {', '.join(keys)} to numbers")
    missing = [key for key in keys if key not in values]
    if missing:
        raise ValueError(f"values must hold the keys {list(keys)}; missing {missing}")
    for key in keys:
        _checks.real(f"values[{key!r}]", values[key])
    rows = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{labels[key]}</th>'
        f'<td data-key="{key}">'
        f"{fmt(float(values[key]))}</td></tr>"
        for key in keys
    )
    return f'<table class="{css_class}">{rows}</table>'


def _check_solver_size(name: str, n) -> None:
    """Refuse (naming ``name``) a count ``n`` of points per set whose exact W1 would not fit
    the solver's default budget (:data:`labkit.ot.DEFAULT_MAX_BYTES`), before sampling them."""
    n = _checks.integer(name, n, minimum=1)
    need = ot.exact_solver_bytes(n, n)
    if need > ot.DEFAULT_MAX_BYTES:
        raise _checks.BadValue(name, n, "small enough for the exact W1 solver",
                               f": {n} x {n} points need about {need / 2**30:.1f} GiB, more "
                               f"than its budget of {ot.DEFAULT_MAX_BYTES / 2**30:g} GiB")
