"""The committed notebooks read well in a fresh clone (untrusted in JupyterLab, on GitHub, in
nbconvert), and ``python -m labkit notebook`` keeps them so.

Every saved widget carries its static views (``labkit.publish``: the saved state as text, a
picture where it has controls or an image), no progress bar is saved at its start, and each file
is byte for byte what JupyterLab writes when it saves the notebook, so opening and saving one
leaves git clean. The browser test (``tests/test_browser.py``) checks the same in Chromium.
"""

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from labkit import publish
from labkit.cli import main

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_reads_well_in_a_fresh_clone(path):
    assert publish.problems(path) == []
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            shown = out.get("data", {}).get("text/plain", "")
            assert "(children=" not in shown and not re.search(r"(^|\s)0%\|", shown), shown


def display_time_notebook(path: Path) -> Path:
    """A notebook with a progress bar saved as ipywidgets wrote it at display time."""
    import ipywidgets
    from tqdm.notebook import tqdm

    bar = tqdm(range(2), desc="loop", display=False)
    for _ in bar:
        pass
    nb = new_notebook(cells=[new_code_cell("for _ in tqdm(range(2)): pass", outputs=[
        new_output("display_data", data={
            publish.VIEW_MIME: {"model_id": bar.container.model_id, "version_major": 2,
                                "version_minor": 0},
            "text/plain": "loop:   0%|          | 0/2 [00:00<?, ?it/s]"})])])
    nb.metadata["widgets"] = {publish.STATE_MIME: {
        "version_major": 2, "version_minor": 0,
        "state": ipywidgets.Widget.get_manager_state()["state"]}}
    path.write_text(nbformat.writes(nb), encoding="utf-8")  # no final newline: not Lab's form
    return path


def test_notebook_command_checks_and_fixes_without_running(tmp_path, capsys):
    path = display_time_notebook(tmp_path / "bar.ipynb")
    assert main(["notebook", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "bar.ipynb: not in the form JupyterLab writes" in out
    assert "bar.ipynb, cell 0: text/plain is not the saved state: 'loop:   0%|" in out
    assert main(["notebook", "static", str(path)]) == 0
    assert main(["notebook", "check", str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs[0]["data"]["text/plain"].startswith("loop: 100%|██████████| 2/2")


def test_notebook_command_refuses_what_is_not_a_notebook(tmp_path, capsys):
    assert main(["notebook", "check", str(tmp_path / "missing.ipynb")]) == 2
    assert capsys.readouterr().err.strip().endswith("is not an .ipynb file")
