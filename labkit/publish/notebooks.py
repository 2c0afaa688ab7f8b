"""Notebooks: their widget outputs rewritten from the saved state, written exactly as JupyterLab
writes them, checked for what would not read well, executed in a fresh kernel, and published."""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat

from labkit import rundir
from labkit.publish.picture import widget_picture
from labkit.publish.state import VIEW_MIME, _state_of
from labkit.publish.text import widget_text


class CellFailed(RuntimeError):
    """A cell of a notebook being executed raised; the message is one line."""


def _widget_outputs(nb) -> Iterator[tuple[Any, int, dict]]:
    """(cell, index, output) for every output that shows a widget view."""
    for cell in nb.cells:
        for k, out in enumerate(cell.get("outputs", [])):
            if VIEW_MIME in out.get("data", {}):
                yield cell, k, out


def add_static_views(nb) -> Any:
    """Rewrite the fallbacks of every widget output from the saved state (module docstring).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook whose metadata holds the widget state (nbclient stores it).
        Changed in place.

    Returns
    -------
    nbformat.NotebookNode
        ``nb``: each widget output's ``text/plain`` is :func:`widget_text`; widgets with
        controls or an image also get ``image/png`` (:func:`widget_picture`); outputs of widgets
        missing from the saved state (closed before the end) are removed.
    """
    tree = _state_of(nb)
    gone = []
    for cell, k, out in _widget_outputs(nb):
        model_id = out["data"][VIEW_MIME].get("model_id", "")
        if model_id not in tree:
            gone.append((cell, k))
            continue
        out["data"]["text/plain"] = widget_text(tree, model_id)
        if tree.needs_picture(model_id):
            out["data"]["image/png"] = base64.b64encode(widget_picture(tree, model_id)).decode()
        else:
            out["data"].pop("image/png", None)
    for cell, k in reversed(gone):
        del cell.outputs[k]
    return nb


def _as_javascript(value: Any) -> Any:
    """``value`` with its numbers as a JSON round trip through JavaScript leaves them: a float
    with an integral value becomes an int (``4.0`` -> ``4``, ``-0.0`` -> ``0``), NaN and
    infinities become None; everything else is unchanged.

    >>> _as_javascript({"max": 4.0, "min": -0.0, "value": 0.25, "n": [1e21, float("nan")]})
    {'max': 4, 'min': 0, 'value': 0.25, 'n': [1e+21, None]}
    """
    if isinstance(value, dict):
        return {key: _as_javascript(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_javascript(item) for item in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 1e21 else value
    return value


def notebook_text(nb) -> str:
    """The notebook exactly as JupyterLab saves it, so that opening and saving it changes
    nothing: numbers as JavaScript writes them (the browser holds the notebook as JSON; see
    :func:`_as_javascript`), then jupyter_server's ``nbformat.write`` (sorted keys, indent 1,
    a final newline)."""
    text = nbformat.writes(nbformat.from_dict(_as_javascript(nb)))
    return text if text.endswith("\n") else text + "\n"


def _installed_kernelspec(nb) -> None:
    """Name the notebook's kernel as the installed kernel spec does (JupyterLab rewrites it
    when it starts the kernel); left alone if that kernel is not installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name = nb.metadata.get("kernelspec", {}).get("name", "python3")
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return
    nb.metadata["kernelspec"] = {"display_name": spec.display_name, "language": spec.language,
                                 "name": name}


def problems(path: str | os.PathLike) -> list[str]:
    """What keeps a committed notebook from reading well in a fresh clone; empty if nothing.

    Checks that the file is in JupyterLab's form (:func:`notebook_text`), that every widget
    output has its saved state, that its ``text/plain`` is :func:`widget_text` of that state,
    and that it carries a picture where one is due.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    found = []
    if notebook_text(nb) != text:
        found.append(f"{path.name}: not in the form JupyterLab writes (opening and saving it "
                     "would change it)")
    tree = _state_of(nb)
    for cell, _, out in _widget_outputs(nb):
        where = f"{path.name}, cell {nb.cells.index(cell)}"
        model_id = out["data"][VIEW_MIME].get("model_id", "")
        if model_id not in tree:
            found.append(f"{where}: widget {model_id} has no saved state")
            continue
        if out["data"].get("text/plain") != widget_text(tree, model_id):
            shown = out["data"].get("text/plain", "")
            found.append(f"{where}: text/plain is not the saved state: {shown[:60]!r}")
        if tree.needs_picture(model_id) and "image/png" not in out["data"]:
            found.append(f"{where}: widget has no picture (image/png)")
    return found


def execute(path: str | os.PathLike, quick: bool = False, timeout: int | None = None,
            on_cell: Callable[[int, int], None] | None = None):
    """Run a notebook top to bottom in a fresh kernel, in its own folder; return it.

    Parameters
    ----------
    path : path of the ``.ipynb``
    quick : bool, default False
        Sets ``LABKIT_QUICK=1`` for the kernel (``0`` otherwise: a full run).
    timeout : int, optional
        Seconds one cell may take (default: no limit).
    on_cell : callable ``(done, total)``, optional
        Called after each code cell (for a progress bar).

    Returns
    -------
    nbformat.NotebookNode
        With outputs and the widget state (nbclient's ``store_widget_state``), without
        per-cell timing metadata.

    Raises
    ------
    CellFailed
        A cell raised: one line naming the notebook, the code cell (counted from 0) and the
        error.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    total = sum(cell.cell_type == "code" for cell in nb.cells)
    started = [0]  # code cells started so far
    if on_cell is not None:
        on_cell(0, total)

    def start(cell, **_kwargs):  # nbclient calls it for markdown cells too
        started[0] += cell.cell_type == "code"

    def executed(**_kwargs):
        if on_cell is not None:
            on_cell(started[0], total)

    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}},
                            store_widget_state=True, on_cell_start=start,
                            on_cell_executed=executed)
    try:
        client.execute(env={**os.environ, "LABKIT_QUICK": "1" if quick else "0"})
    except CellExecutionError as err:
        raise CellFailed(f"{path}: code cell {started[0] - 1} of {total} raised {err.ename}: "
                         f"{' '.join(str(err.evalue).split())[:200]}") from None
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def publish(path: str | os.PathLike, *, run: bool = True, quick: bool = False,
            timeout: int | None = None,
            on_cell: Callable[[int, int], None] | None = None) -> list[str]:
    """Execute a notebook (``run``), add its static views and write it back atomically in
    JupyterLab's form; return :func:`problems` of the result (empty when all is well).

    Nothing is written if a cell fails. ``run=False`` only rewrites the static views of a
    notebook executed before (its widget state must be saved in it).
    """
    path = Path(path)
    nb = (execute(path, quick=quick, timeout=timeout, on_cell=on_cell) if run
          else nbformat.read(path, as_version=nbformat.NO_CONVERT))
    _installed_kernelspec(nb)
    text = notebook_text(add_static_views(nb))
    with rundir.atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return problems(path)
