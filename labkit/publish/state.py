"""The saved widget state of an executed notebook (its metadata), as a tree of models: the kinds
of model, a box's children, what is hidden, an ``Image``'s picture, and which widgets get a
picture."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Mapping
from typing import Any

import PIL.Image

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
