"""Committed notebooks that read well however they are opened: static views of saved widgets.

An executed notebook keeps each ipywidget as a *view* (mime type
``application/vnd.jupyter.widget-view+json``) and the widgets' final state in its metadata.
JupyterLab draws the view only in a *trusted* notebook (one you ran or saved yourself); a fresh
clone is untrusted, and GitHub or nbconvert have no widget manager. They all fall back on the
output's other mime types, which ipywidgets fills once, at display time: ``text/plain`` reads
``VBox(children=(FloatSlider(...`` for an explorer and ``0%| 0/3`` for a progress bar that then
ran to the end. :func:`add_static_views` rewrites those fallbacks from the *saved* state:

* ``text/plain``: the widget as text; a finished tqdm bar reads
  ``settings: 100%|██████████| 4/4 [00:21<00:00, 5.58s/it]``;
* ``image/png``, for widgets with controls or an image (the explorers, the snapshot slider): a
  picture of the saved state, captioned as a picture. JupyterLab shows it in an untrusted
  notebook; a trusted one still shows the live widget, which JupyterLab ranks above any picture.

A widget that was closed before the end (``tqdm(leave=False)``) shows nothing in a live notebook;
its output is dropped. Notebooks are written exactly as JupyterLab writes them
(:func:`notebook_text`), so opening and saving a committed notebook leaves git clean.

Execute and commit a notebook through :func:`publish`::

    python -m labkit notebook run notebooks/01_example1.ipynb     # full mode, then static views
    python -m labkit notebook static notebooks/04_lsun.ipynb      # static views only, no rerun
    python -m labkit notebook check notebooks/*.ipynb             # what the tests check

Imports PIL and nbformat (and nbclient to execute); never matplotlib or ipywidgets.

The package, one concept a module: :mod:`labkit.publish.state` (the saved state),
:mod:`labkit.publish.text` and :mod:`labkit.publish.picture` (a widget as text and as a
picture) and :mod:`labkit.publish.notebooks` (rewriting, writing, checking, executing).
"""

from labkit.publish.notebooks import (
    CellFailed,
    add_static_views,
    execute,
    notebook_text,
    problems,
    publish,
)
from labkit.publish.picture import widget_picture
from labkit.publish.state import CAPTION, STATE_MIME, VIEW_MIME
from labkit.publish.text import widget_text

__all__ = ["VIEW_MIME", "STATE_MIME", "CAPTION", "CellFailed", "add_static_views", "execute",
           "notebook_text", "problems", "publish", "widget_picture", "widget_text"]
