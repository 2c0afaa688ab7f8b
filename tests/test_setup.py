"""``make lab`` starts JupyterLab on the notebooks: checked through its REST API on loopback."""

import json
import shutil
from pathlib import Path

import pytest
from labserver import Lab, request

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_the_notebooks(tmp_path):
    def make_lab(lab: Lab) -> list[str]:
        return ["make", "-C", str(REPO), "lab", "LAB_ARGS=" + " ".join(lab.server_options())]

    lab = Lab(tmp_path, command=make_lab)
    lab.start()
    try:
        status, body = request(f"{lab.url}/api/contents", lab.token)
        names = {item["name"] for item in json.loads(body)["content"]}
        status_kernelspecs, specs = request(f"{lab.url}/api/kernelspecs", lab.token)
    finally:
        lab.stop()
    assert status == 200 and status_kernelspecs == 200
    assert {p.name for p in (REPO / "notebooks").glob("*.ipynb")} <= names
    assert "01_example1.ipynb" in names
    assert "python3" in json.loads(specs)["kernelspecs"]
    assert lab.proc is None  # stopped: make and the server have exited
