"""A saved widget as text (the ``text/plain`` fallback): slider readouts as ipywidgets formats
them, HTML tables aligned, a finished tqdm bar as tqdm prints it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

from labkit.publish.state import (
    _BOXES,
    _CONTROLS,
    _PICKERS,
    _PROGRESS,
    _SLIDERS,
    _TEXTS,
    CAPTION,
    _Tree,
)


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
