"""Files written through labkit.rundir get the usual modes: 0666 less the umask, as ``open`` gives.

The truth is the mode the operating system gives a plain ``open(path, "w")`` under the same umask.
"""

import os
import stat

import pytest

from labkit import rundir
from labkit.cli import main


@pytest.fixture
def umask():
    """Set the process umask for one test; restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_write_has_the_mode_open_gives(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    with rundir.atomic_path(tmp_path / "atomic.txt") as tmp:
        tmp.write_text("x")
    assert mode(tmp_path / "atomic.txt") == mode(tmp_path / "plain.txt") == 0o666 & ~mask


def test_toy_outputs_are_readable_by_others(tmp_path, umask, capsys):
    umask(0o022)
    out = tmp_path / "run"
    assert main(["toy", "--out", str(out), "--iters", "0", "--hidden", "8", "--eval-samples",
                 "50", "--quiet"]) == 0, capsys.readouterr().err
    written = {p.name: mode(p) for p in out.iterdir() if p.is_file()}
    assert set(written) >= {"config.json", "history.csv", "metrics.json", "samples.png",
                            "checkpoint.pt"}
    assert set(written.values()) == {0o644}, written
