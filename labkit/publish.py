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
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from labkit import rundir

__all__ = ["VIEW_MIME", "STATE_MIME", "CAPTION", "CellFailed", "add_static_views", "execute",
           "notebook_text", "problems", "publish", "widget_picture", "widget_text"]

VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
#: Printed under every picture: a reader must not mistake it for the widget.
CAPTION = "Picture of the widget as saved. Run the notebook to use it."

_BOXES = {"VBoxModel", "BoxModel", "GridBoxModel", "AccordionModel", "TabModel", "StackModel"}
_SLIDERS = {"FloatSliderModel", "IntSliderModel", "FloatLogSliderModel"}
_PICKERS = {"ToggleButtonsModel", "DropdownModel", "RadioButtonsModel", "SelectModel"}
_CONTROLS = _SLIDERS | _PICKERS | {"ButtonModel", "CheckboxModel", "ToggleButtonModel",
                                   "TextModel", "IntTextModel", "FloatTextModel",
                                   "BoundedIntTextModel", "BoundedFloatTextModel"}
_PROGRESS = {"FloatProgressModel", "IntProgressModel"}
_TEXTS = {"HTMLModel", "HTMLMathModel", "LabelModel"}
_BAR_COLOURS = {"success": "#4caf50", "danger": "#f44336", "warning": "#ff9800",
                "info": "#00bcd4", "": "#2196f3"}


# --------------------------------------------------------------------------- the saved state
class _Tree:
    """The saved widget state of a notebook: ``model_id -> {"model_name", "state", "buffers"}``."""

    def __init__(self, state: Mapping[str, Any]):
        self.models = state

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.models

    def name(self, model_id: str) -> str:
        return self.models[model_id]["model_name"]

    def state(self, model_id: str) -> dict:
        return self.models[model_id]["state"]

    def children(self, model_id: str) -> list[str]:
        """The child model ids a box holds, in order (missing ones skipped)."""
        refs = self.state(model_id).get("children", [])
        ids = [ref.removeprefix("IPY_MODEL_") for ref in refs]
        return [i for i in ids if i in self.models]

    def hidden(self, model_id: str) -> bool:
        """Whether the widget's layout hides it (``display: none`` or ``visibility: hidden``)."""
        ref = self.state(model_id).get("layout") or ""
        layout = self.models.get(ref.removeprefix("IPY_MODEL_"), {}).get("state", {})
        return layout.get("display") == "none" or layout.get("visibility") == "hidden"

    def image(self, model_id: str) -> PIL.Image.Image | None:
        """The picture an ``Image`` widget holds (its ``value`` buffer), or None."""
        for buf in self.models[model_id].get("buffers", []):
            if buf.get("path") == ["value"]:
                try:
                    return PIL.Image.open(io.BytesIO(base64.b64decode(buf["data"]))).convert("RGB")
                except (OSError, ValueError):  # not a picture PIL reads (e.g. an SVG)
                    return None
        return None

    def walk(self, model_id: str) -> Iterator[str]:
        """``model_id`` and every visible model below it."""
        if self.hidden(model_id):
            return
        yield model_id
        for child in self.children(model_id):
            yield from self.walk(child)

    def needs_picture(self, model_id: str) -> bool:
        """Widgets with controls or an image get a picture; text and progress bars do not."""
        return any(self.name(m) in _CONTROLS or self.name(m) == "ImageModel"
                   for m in self.walk(model_id))


def _state_of(nb) -> _Tree:
    return _Tree(nb.metadata.get("widgets", {}).get(STATE_MIME, {}).get("state", {}))


# --------------------------------------------------------------------------- values as text
def _number(value: Any, fmt: str) -> str:
    """A slider readout: Python's format for the d3 formats ipywidgets uses ('.2f', 'd', '.4g');
    -0 is written 0."""
    try:
        return format(value + 0 if isinstance(value, int | float) else value, fmt)
    except (TypeError, ValueError):
        return str(value)


def _fraction(name: str, s: Mapping[str, Any]) -> float:
    """Where a slider's or progress bar's value lies between its ends, in [0, 1] (a log slider
    on the exponent).

    >>> round(_fraction("FloatLogSliderModel", {"value": 0.01, "min": -3, "max": 0}), 6)
    0.333333
    """
    low, high, value = float(s.get("min", 0)), float(s.get("max", 1)), float(s.get("value", 0))
    if name == "FloatLogSliderModel":
        value = math.log(value, float(s.get("base", 10))) if value > 0 else low
    return 0.0 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))


def _readout(name: str, s: Mapping[str, Any]) -> str:
    if name in _SLIDERS:
        return _number(s.get("value"), s.get("readout_format") or ".2f")
    if name in _PICKERS:
        labels, index = s.get("_options_labels", []), s.get("index")
        return labels[index] if isinstance(index, int) and 0 <= index < len(labels) else ""
    if name == "CheckboxModel":
        return "yes" if s.get("value") else "no"
    return str(s.get("value", ""))


class _HTMLRows(HTMLParser):
    """HTML -> rows of cells: one row per table row or line of text; tags dropped, digits in
    ``<sub>`` written as subscripts."""

    BREAKS = {"br", "p", "div", "li", "tr", "table", "h1", "h2", "h3", "h4"}

    SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = [[""]]
        self.in_row = False
        self.in_sub = False

    def _new_row(self):
        if self.rows[-1] != [""]:
            self.rows.append([""])

    def handle_starttag(self, tag, attrs):
        if tag in self.BREAKS:
            self._new_row()
        self.in_sub = self.in_sub or tag == "sub"
        if tag == "tr":
            self.in_row = True
        elif tag in ("td", "th") and self.in_row and self.rows[-1] != [""]:
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        self.in_sub = self.in_sub and tag != "sub"
        if tag in self.BREAKS:
            self.in_row = False if tag == "tr" else self.in_row
            self._new_row()

    def handle_data(self, data):
        self.rows[-1][-1] += data.translate(self.SUBSCRIPT) if self.in_sub else data


def _html_rows(text: str) -> list[list[str]]:
    """The rows of an HTML widget's value, its whitespace collapsed as a browser does; tqdm's
    figure spaces (U+2007), which a browser keeps, become spaces.

    >>> _html_rows('<table><tr><th>W</th><td>0.5000</td></tr></table>x &lt; 1')
    [['W', '0.5000'], ['x < 1']]
    """
    parser = _HTMLRows()
    parser.feed(text)
    parser.close()
    rows = [[re.sub(r"[ \t\n\r\f]+", " ", cell).replace("\u2007", " ").strip() for cell in row]
            for row in parser.rows]
    return [row for row in rows if any(row)]


def _text_rows(name: str, s: Mapping[str, Any]) -> list[list[str]]:
    """The rows of an HTML or Label widget's value."""
    value = s.get("value") or ""
    return _html_rows(value) if name != "LabelModel" else [[value]] if value else []


def _align(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines, the columns of multi-cell rows aligned."""
    widths: dict[int, int] = {}
    for row in rows:
        if len(row) > 1:
            for k, cell in enumerate(row[:-1]):
                widths[k] = max(widths.get(k, 0), len(cell))
    return ["  ".join(cell.ljust(widths.get(k, 0)) if len(row) > 1 and k < len(row) - 1
                      else cell for k, cell in enumerate(row)).rstrip() for row in rows]


def _bar(fraction: float) -> str:
    """A progress bar as tqdm writes it in a terminal: ``|█████▏    |``."""
    from tqdm.std import Bar

    return f"|{Bar(fraction):10u}|"


def _lines(tree: _Tree, model_id: str) -> list[str]:
    """The widget ``model_id`` as lines of text."""
    if tree.hidden(model_id):
        return []
    name, s = tree.name(model_id), tree.state(model_id)
    described = f"{s['description']}: " if s.get("description") else ""
    if name == "HBoxModel":  # one line; a progress bar is glued to its left, as tqdm writes it
        line = ""
        for child in tree.children(model_id):
            part = " ".join(_lines(tree, child))
            glue = "" if not line or not part or tree.name(child) in _PROGRESS else " "
            line += glue + part
        return [line]
    if name in _BOXES:
        return [line for child in tree.children(model_id) for line in _lines(tree, child)]
    if name in _TEXTS:
        rows = _text_rows(name, s)
        if described and rows:
            rows[0] = [described.strip(), *rows[0]]
        return _align(rows)
    if name in _PROGRESS:
        return [described + _bar(_fraction(name, s))]
    if name == "ImageModel":
        picture = tree.image(model_id)
        size = f" {picture.width} x {picture.height} px" if picture else ""
        return [f"[image{size}]"]
    if name == "ButtonModel":
        return [f"[{s.get('description', '')}]"]
    if name in _CONTROLS:
        return [described + _readout(name, s)]
    if name == "OutputModel":
        return [text.rstrip("\n") for out in s.get("outputs", [])
                for text in [out.get("text") or out.get("data", {}).get("text/plain", "")] if text]
    return [f"[{name.removesuffix('Model')}]"]


def widget_text(tree: _Tree | Mapping[str, Any], model_id: str) -> str:
    """The saved state of widget ``model_id`` as text (the ``text/plain`` fallback).

    Parameters
    ----------
    tree : mapping of model id -> saved model, or the internal tree
        The ``state`` of the notebook's widget metadata.
    model_id : str

    Returns
    -------
    str
        Boxes line by line (an HBox on one line), sliders as ``description: value`` in their
        readout format, HTML as its text with table columns aligned, progress bars as
        ``|██████████|``; a picture-worthy widget ends with a line saying it is one.
    """
    tree = tree if isinstance(tree, _Tree) else _Tree(tree)
    lines = _lines(tree, model_id)
    if tree.needs_picture(model_id):
        lines.append(f"({CAPTION})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- values as a picture
_FONT_SIZE = 13
_GAP = 6
_LABEL_WIDTH = 110
_TRACK_WIDTH = 360


def _font() -> PIL.ImageFont.FreeTypeFont | PIL.ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib, which the lab requires), else PIL's default."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return PIL.ImageFont.truetype(str(path), _FONT_SIZE)
    return PIL.ImageFont.load_default(_FONT_SIZE)


def _text_size(font, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text or " ")
    return int(right) + 1, int(max(bottom, _FONT_SIZE * 1.25)) + 1


def _canvas(width: int, height: int) -> tuple[PIL.Image.Image, PIL.ImageDraw.ImageDraw]:
    image = PIL.Image.new("RGB", (max(1, width), max(1, height)), "white")
    return image, PIL.ImageDraw.Draw(image)


def _stack(blocks: list[PIL.Image.Image], across: bool = False) -> PIL.Image.Image:
    """Blocks one under the other (left-aligned), or side by side (centred vertically)."""
    blocks = [b for b in blocks if b is not None]
    if not blocks:
        return _canvas(1, 1)[0]
    if across:
        width = sum(b.width for b in blocks) + _GAP * (len(blocks) - 1)
        height = max(b.height for b in blocks)
    else:
        width = max(b.width for b in blocks)
        height = sum(b.height for b in blocks) + _GAP * (len(blocks) - 1)
    image, _ = _canvas(width, height)
    at = 0
    for b in blocks:
        image.paste(b, (at, (height - b.height) // 2) if across else (0, at))
        at += (b.width if across else b.height) + _GAP
    return image


def _text_block(font, rows: list[list[str]], colour: str = "black") -> PIL.Image.Image:
    """Rows of cells, the columns of multi-cell rows aligned."""
    widths: dict[int, int] = {}
    for row in rows:
        if len(row) > 1:
            for k, cell in enumerate(row):
                widths[k] = max(widths.get(k, 0), _text_size(font, cell)[0] + 16)
    line = _text_size(font, "Ag")[1]
    total = max([sum(widths.get(k, _text_size(font, c)[0]) for k, c in enumerate(row))
                 for row in rows] + [1])
    image, draw = _canvas(total, line * max(1, len(rows)))
    for r, row in enumerate(rows):
        x = 0
        for k, cell in enumerate(row):
            draw.text((x, r * line), cell, fill=colour, font=font)
            x += widths.get(k, _text_size(font, cell)[0]) if len(row) > 1 else 0
    return image


def _control(font, label: str, body: PIL.Image.Image | None, readout: str) -> PIL.Image.Image:
    """``label`` right-aligned in a fixed column (as ipywidgets aligns descriptions), then the
    control's drawing and its readout."""
    label_img, draw = _canvas(_LABEL_WIDTH, _text_size(font, "Ag")[1])
    draw.text((_LABEL_WIDTH - 8 - _text_size(font, label)[0], 0), label, fill="black", font=font)
    parts = [label_img, body, _text_block(font, [[readout]]) if readout else None]
    return _stack([p for p in parts if p is not None], across=True)


def _slider(name: str, s: Mapping[str, Any]) -> PIL.Image.Image:
    """A slider track with its handle at the saved value (greyed out when disabled)."""
    image, draw = _canvas(_TRACK_WIDTH, 18)
    grey = "#bdbdbd" if s.get("disabled") else "#9e9e9e"
    x = 8 + _fraction(name, s) * (_TRACK_WIDTH - 16)
    draw.rounded_rectangle((8, 7, _TRACK_WIDTH - 8, 11), radius=2, fill="#e0e0e0")
    draw.rounded_rectangle((8, 7, x, 11), radius=2, fill=grey)
    draw.ellipse((x - 7, 2, x + 7, 16), fill="white", outline=grey, width=2)
    return image


def _buttons(font, s: Mapping[str, Any]) -> PIL.Image.Image:
    """Toggle buttons with the selected one shaded."""
    blocks = []
    for k, label in enumerate(s.get("_options_labels", [])):
        w, h = _text_size(font, label)
        image, draw = _canvas(w + 24, h + 8)
        selected = k == s.get("index")
        draw.rectangle((0, 0, w + 23, h + 7), fill="#bdbdbd" if selected else "#eeeeee",
                       outline="#9e9e9e")
        draw.text((12, 4), label, fill="black", font=font)
        blocks.append(image)
    return _stack(blocks, across=True)


def _progress(name: str, s: Mapping[str, Any]) -> PIL.Image.Image:
    image, draw = _canvas(_TRACK_WIDTH, 18)
    draw.rectangle((0, 2, _TRACK_WIDTH - 1, 15), fill="#eeeeee")
    draw.rectangle((0, 2, int(_fraction(name, s) * (_TRACK_WIDTH - 1)), 15),
                   fill=_BAR_COLOURS.get(s.get("bar_style") or "", "#2196f3"))
    return image


def _block(font, tree: _Tree, model_id: str) -> PIL.Image.Image | None:
    """The widget ``model_id`` drawn as in JupyterLab, roughly: a picture of its saved state."""
    if tree.hidden(model_id):
        return None
    name, s = tree.name(model_id), tree.state(model_id)
    if name == "HBoxModel" or name in _BOXES:
        blocks = [_block(font, tree, child) for child in tree.children(model_id)]
        return _stack(blocks, across=name == "HBoxModel")
    label = s.get("description", "")
    if name in _SLIDERS:
        return _control(font, label, _slider(name, s), _readout(name, s))
    if name == "ToggleButtonsModel":
        return _control(font, label, _buttons(font, s), "")
    if name in _PROGRESS:
        return _control(font, label, _progress(name, s), "")
    if name == "ImageModel":
        return tree.image(model_id)
    if name in _TEXTS:
        rows = _text_rows(name, s)
        return _text_block(font, rows) if rows else None
    lines = _lines(tree, model_id)
    return _text_block(font, [[line] for line in lines]) if lines and lines != [""] else None


def _picture(tree: _Tree | Mapping[str, Any], model_id: str) -> PIL.Image.Image:
    """The picture of :func:`widget_picture` in full colour, framed."""
    tree = tree if isinstance(tree, _Tree) else _Tree(tree)
    font = _font()
    body = _block(font, tree, model_id)
    caption = _text_block(font, [[CAPTION]], colour="#616161")
    picture = _stack([body, caption])
    framed, draw = _canvas(picture.width + 16, picture.height + 16)
    framed.paste(picture, (8, 8))
    draw.rectangle((0, 0, framed.width - 1, framed.height - 1), outline="#e0e0e0")
    return framed


def widget_picture(tree: _Tree | Mapping[str, Any], model_id: str) -> bytes:
    """A PNG picture (256 colours) of the saved state of widget ``model_id``, captioned
    :data:`CAPTION`.

    Sliders are drawn with their handle at the saved value and their readout, toggle buttons
    with the selection shaded, HTML as text (tables aligned), images as they are.
    """
    # 256 colours, no dithering: a third of the bytes, no visible change on plots and text
    palette = _picture(tree, model_id).quantize(256, method=PIL.Image.Quantize.MEDIANCUT,
                                                dither=PIL.Image.Dither.NONE)
    buf = io.BytesIO()
    palette.save(buf, format="png", optimize=True)
    return buf.getvalue()


# --------------------------------------------------------------------------- notebooks
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

