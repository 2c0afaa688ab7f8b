"""Tests of labkit.publish: the static views of saved widgets, and notebooks written as JupyterLab
writes them.

Widget states come from real ipywidgets and tqdm objects (``Widget.get_manager_state``, the
format nbclient saves); the truths are tqdm's own terminal rendering (``format_meter``), the
pixels of the picture an Image widget holds, and the bytes jupyter_server writes when JupyterLab
saves a notebook.
"""

import base64
import io
import json
import os
import shutil
import stat
import subprocess

import ipywidgets
import nbformat
import numpy as np
import PIL.Image
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from tqdm.notebook import tqdm as notebook_tqdm
from tqdm.std import tqdm as std_tqdm

from labkit import publish


def saved_state() -> dict:
    """The state of every live widget, as nbclient stores it in a notebook's metadata."""
    return ipywidgets.Widget.get_manager_state()["state"]


def finished_bar(n: int, total: int, desc: str):
    """A notebook tqdm bar that ran ``n`` of ``total`` steps in 21.3 s (a fixed clock) and was
    closed, as a loop leaves it."""
    bar = notebook_tqdm(total=total, desc=desc, display=False)
    start = bar.start_t
    bar._time = lambda: start + 21.3
    bar.update(n)
    bar.close()
    return bar


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format="png")
    return buf.getvalue()


def contains(picture: np.ndarray, block: np.ndarray) -> bool:
    """Whether ``block`` appears pixel for pixel somewhere in ``picture``."""
    h, w = block.shape[:2]
    ys, xs = np.nonzero((picture[: picture.shape[0] - h + 1, : picture.shape[1] - w + 1]
                         == block[0, 0]).all(axis=2))
    return any((picture[y:y + h, x:x + w] == block).all() for y, x in zip(ys, xs, strict=True))


@pytest.mark.parametrize("n, total", [(4, 4), (1, 3)])
def test_progress_bar_reads_as_tqdm_prints_it(n, total):
    bar = finished_bar(n, total, "settings")
    want = std_tqdm.format_meter(**bar.format_dict)  # tqdm's own terminal line, same clock
    assert want.startswith("settings: 100%|██████████| 4/4 [00:21<00:00" if n == total
                           else "settings:  33%|███▎      | 1/3 [00:21<00:42")
    tree = saved_state()
    assert publish.widget_text(tree, bar.container.model_id) == want
    assert not publish.state._Tree(tree).needs_picture(bar.container.model_id)


def explorer():
    """A small explorer: a float slider at -0.0, an int slider, an HTML table and an image."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    box = ipywidgets.VBox([
        ipywidgets.FloatSlider(value=-0.0, min=-1, max=1, step=0.01, description="theta",
                               readout_format=".2f"),
        ipywidgets.IntSlider(value=200, min=10, max=1000, description="n"),
        ipywidgets.HTML('<table><tr><th>W(P<sub>0</sub>, P<sub>&theta;</sub>)</th>'
                        '<td data-key="W">0.5000</td></tr><tr><th>KL</th><td>inf</td></tr>'
                        '</table>'),
        ipywidgets.Image(value=png(pixels), format="png"),
    ])
    return box, pixels


def test_explorer_text_says_the_saved_values():
    box, _ = explorer()
    assert publish.widget_text(saved_state(), box.model_id).splitlines() == [
        "theta: 0.00",  # -0.0 is not written "-0.00"
        "n: 200",
        "W(P₀, Pθ)  0.5000",
        "KL         inf",
        "[image 30 x 20 px]",
        f"({publish.CAPTION})",
    ]


def test_explorer_picture_holds_the_image():
    box, pixels = explorer()
    full = np.asarray(publish.picture._picture(saved_state(), box.model_id))
    assert full.shape[1] >= 110 + 360  # the description column and the slider track
    assert contains(full, pixels)  # the figure, pixel for pixel
    saved = PIL.Image.open(io.BytesIO(publish.widget_picture(saved_state(), box.model_id)))
    assert saved.mode == "P" and len(saved.getpalette()) <= 3 * 256  # stored with 256 colours
    error = np.abs(np.asarray(saved.convert("RGB"), dtype=float) - full)
    assert saved.size == (full.shape[1], full.shape[0]) and error.mean() < 2


def test_slider_picture_moves_with_the_value():
    low = ipywidgets.FloatLogSlider(value=1e-3, min=-3, max=0, description="c")
    high = ipywidgets.FloatLogSlider(value=1.0, min=-3, max=0, description="c")
    tree = saved_state()
    assert publish.text._fraction("FloatLogSliderModel", tree[low.model_id]["state"]) < 1e-12
    assert publish.text._fraction("FloatLogSliderModel", tree[high.model_id]["state"]) > 1 - 1e-12
    assert publish.widget_picture(tree, low.model_id) != publish.widget_picture(tree,
                                                                              high.model_id)


def test_hidden_widgets_are_left_out():
    shown = ipywidgets.Label("shown")
    hidden = ipywidgets.Label("hidden", layout=ipywidgets.Layout(display="none"))
    box = ipywidgets.HBox([shown, hidden])
    assert publish.widget_text(saved_state(), box.model_id) == "shown"


def widget_output(model_id: str, text: str = "VBox(children=(...))"):
    return new_output("display_data", data={
        publish.VIEW_MIME: {"model_id": model_id, "version_major": 2, "version_minor": 0},
        "text/plain": text})


def test_add_static_views_rewrites_fallbacks_and_drops_closed_widgets():
    box, _ = explorer()
    bar = finished_bar(4, 4, "loop")
    gone = ipywidgets.IntSlider()
    gone_id = gone.model_id
    gone.close()  # closed before the end, as tqdm(leave=False) does: no saved state
    printed = new_output("stream", name="stdout", text="hello\n")
    nb = new_notebook(cells=[new_code_cell("x", outputs=[
        widget_output(bar.container.model_id, "loop:   0%|          | 0/4"),
        printed, widget_output(gone_id), widget_output(box.model_id)])])
    nb.metadata["widgets"] = {publish.STATE_MIME: {"version_major": 2, "version_minor": 0,
                                                   "state": saved_state()}}
    outputs = publish.add_static_views(nb).cells[0].outputs
    assert len(outputs) == 3 and outputs[1] == printed
    assert outputs[0]["data"]["text/plain"].startswith("loop: 100%|██████████| 4/4 [00:21<")
    assert "image/png" not in outputs[0]["data"]
    assert outputs[2]["data"]["text/plain"].startswith("theta: 0.00\nn: 200\n")
    picture = base64.b64decode(outputs[2]["data"]["image/png"])
    assert picture == publish.widget_picture(saved_state(), box.model_id)


def test_notebook_text_is_what_jupyterlab_saves(tmp_path):
    """jupyter_server's contents manager is what writes the file when JupyterLab saves."""
    from jupyter_server.services.contents.filemanager import FileContentsManager

    nb = new_notebook(cells=[new_code_cell("print('θ')\nx = 1", execution_count=1, outputs=[
        new_output("stream", name="stdout", text="θ\nline two\n"),
        new_output("display_data", data={"image/png": base64.b64encode(png(
            np.zeros((2, 2, 3), np.uint8))).decode(), "text/plain": "<Figure>"})])])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    manager = FileContentsManager(root_dir=str(tmp_path))
    manager.save({"type": "notebook", "format": "json",
                  "content": json.loads(nbformat.writes(nb))}, "saved.ipynb")
    assert (tmp_path / "saved.ipynb").read_text(encoding="utf-8") == publish.notebook_text(nb)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (a JavaScript engine)")
def test_notebook_text_survives_a_javascript_round_trip():
    """The browser holds the notebook as JavaScript values: JSON.parse then JSON.stringify,
    then the server's json.loads and nbformat.write, is what a save does to the numbers."""
    box, _ = explorer()
    bar = finished_bar(2, 3, "loop")
    nb = new_notebook(cells=[new_code_cell("x", outputs=[widget_output(box.model_id),
                                                         widget_output(bar.container.model_id)])])
    nb.metadata["widgets"] = {publish.STATE_MIME: {"version_major": 2, "version_minor": 0,
                                                   "state": saved_state()}}
    nb.metadata["numbers"] = [4.0, -0.0, 1e-05, 0.1, 1e21, 123456789.0, 2.5e-7]
    text = publish.notebook_text(publish.add_static_views(nb))
    script = "process.stdout.write(JSON.stringify(JSON.parse(require('fs').readFileSync(0))))"
    browser = subprocess.run(["node", "-e", script], input=text, capture_output=True,
                             text=True, check=True).stdout
    saved = nbformat.writes(nbformat.from_dict(json.loads(browser))) + "\n"
    assert saved == text


def notebook_file(tmp_path, *sources) -> os.PathLike:
    """A notebook of these code cells, with a markdown cell before each."""
    nb = new_notebook(cells=[cell for source in sources
                             for cell in (new_markdown_cell("text"), new_code_cell(source))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "trial.ipynb"
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


def test_publish_runs_a_notebook_and_writes_static_views(tmp_path):
    path = notebook_file(
        tmp_path,
        "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='loop'):\n    pass",
        "import ipywidgets\nipywidgets.IntSlider(value=7, description='k')",
        "import os\nprint(os.environ['LABKIT_QUICK'], os.getcwd())")
    calls = []
    assert publish.publish(path, quick=True, on_cell=lambda d, t: calls.append((d, t))) == []
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    text = path.read_text(encoding="utf-8")
    assert text == publish.notebook_text(nbformat.reads(text, as_version=4))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_umask()
    cells = [cell for cell in nbformat.reads(text, as_version=4).cells if cell.cell_type == "code"]
    assert cells[0].outputs[0]["data"]["text/plain"].startswith("loop: 100%|██████████| 3/3")
    assert cells[1].outputs[0]["data"]["text/plain"] == f"k: 7\n({publish.CAPTION})"
    assert "image/png" in cells[1].outputs[0]["data"]
    assert cells[2].outputs[0]["text"] == f"1 {tmp_path}\n"  # quick, in the notebook's folder
    assert all("execution" not in cell.metadata for cell in cells)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_failing_cell_leaves_the_notebook_unchanged(tmp_path):
    path = notebook_file(tmp_path, "x = 1", "raise ValueError('boom')", "y = 2")
    before = path.read_bytes()
    with pytest.raises(publish.CellFailed, match=r"code cell 1 of 3 raised ValueError: boom$"):
        publish.publish(path)
    assert path.read_bytes() == before
