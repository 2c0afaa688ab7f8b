"""A saved widget as a picture (the ``image/png`` fallback): controls, text and images drawn
roughly as JupyterLab draws them, captioned as a picture."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from labkit.publish.state import (
    _BAR_COLOURS,
    _BOXES,
    _PROGRESS,
    _SLIDERS,
    _TEXTS,
    CAPTION,
    _Tree,
)
from labkit.publish.text import _fraction, _lines, _readout, _text_rows

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
