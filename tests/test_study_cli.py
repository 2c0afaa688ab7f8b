"""``python -m labkit study`` under real signals: Ctrl-C says what is kept and prints a command
that continues the study to the results of one go; SIGKILL of the parent leaves no worker behind.

Each test starts the command in a subprocess on a tiny config long enough to be stopped inside a
run (600 iterations of 2 seeds of 1 x 8 MLPs), waits for the first checkpoint of a run in the
work folder, then signals it. About 15 s each on two idle cores, most of it starting Python and
torch in four processes. The same Ctrl-C in one process (``--jobs 1``) is tested in-process in
``labkit/tests/test_study.py``.
"""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import study

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"methods": ("gan", "wgan-clip"), "targets": ("ring",), "n_seeds": 2, "iters": 600,
          "batch_size": 16, "hidden": 8, "depth": 1, "curve_every": 50, "curve_samples": 50,
          "eval_samples": 100, "snapshot_every": 300, "checkpoint_every": 20}


def flags(config: dict) -> list[str]:
    args = []
    for name, value in config.items():
        args += ["--" + name.replace("_", "-"),
                 *(value if isinstance(value, tuple) else [str(value)])]
    return args


def start(folder: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LABKIT_QUICK", None)
    return subprocess.Popen([sys.executable, "-m", "labkit", "study", "--out", "r.json", *args],
                            cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_a_checkpoint(folder: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not list((folder / "runs" / "r").glob("*/checkpoint.pt")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """Processes below ``pid`` (from /proc, Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited (its parent is gone and has not reaped it)


@pytest.fixture
def one_go(tmp_path_factory):
    """The same study run in one go, in this process."""
    folder = tmp_path_factory.mktemp("one-go")
    return study.run_study(study.StudyConfig(**CONFIG), folder / "one.json", progress=False,
                           log=lambda _: None, work=folder / "work")


@pytest.mark.slow
def test_ctrl_c_says_what_is_kept_and_the_printed_command_continues(tmp_path, one_go):
    args = [*flags(CONFIG), "--jobs", "2", "--quiet"]
    proc = start(tmp_path, *args)
    wait_for_a_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    config = study.StudyConfig(**CONFIG)
    kept = study.progress_report(config, tmp_path / "r.json", tmp_path / "runs" / "r")
    kept = kept.replace(str(tmp_path) + "/", "")  # the command ran in tmp_path
    assert "checkpoints in 'runs/r': " in kept and " at iteration " in kept
    command = study.command_line(["study", "--out", "r.json", *args])
    assert err == f"interrupted: {kept}; continue with: {command}\n"
    assert not descendants(proc.pid)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LABKIT_QUICK", None)
    again = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    data = study.load_results(tmp_path / "r.json")
    for key, run in one_go["runs"].items():
        for field in ("final", "curves", "snapshots", "convergence"):
            assert data["runs"][key][field] == run[field], (key, field)
    assert data["baselines"] == one_go["baselines"]
    assert not (tmp_path / "runs" / "r").exists()


@pytest.mark.slow
def test_sigkill_of_the_study_leaves_no_worker_behind(tmp_path):
    proc = start(tmp_path, *flags(CONFIG), "--jobs", "2", "--quiet")
    wait_for_a_checkpoint(tmp_path, proc)
    workers = descendants(proc.pid)
    assert workers  # the two runs' processes (and multiprocessing's helper)
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)]
    # what they left is a study that continues: the checkpoints are intact
    report = study.progress_report(study.StudyConfig(**CONFIG), tmp_path / "r.json",
                                   tmp_path / "runs" / "r")
    assert "unreadable" not in report and " at iteration " in report
