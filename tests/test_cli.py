"""End-to-end tests of ``python -m labkit toy``: outputs, exact resume, reproducibility, one-line
argument errors, and real signals (Ctrl-C, and a kill during a checkpoint write)."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from labkit import checkpoint
from labkit.cli import main

SMALL = ["--hidden", "16", "--depth", "2", "--batch-size", "32", "--eval-every", "20",
         "--eval-samples", "300", "--quiet"]


def labkit(*args, check=True):
    """``python -m labkit ARGS`` in a real subprocess."""
    proc = subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True,
                          text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def cli(capsys):
    """The same command line in-process (no interpreter start-up): returns (status, stderr)."""

    def run(*args, check=True):
        try:
            status = main(list(args))
        except SystemExit as stop:
            status = stop.code
        err = capsys.readouterr().err
        if check:
            assert status == 0, err
        return status, err

    return run


def history_rows(path: Path):
    """history.csv without the wall-time column (the only one that may differ between runs)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        del row["time"]
    return rows


def test_toy_run_writes_everything(tmp_path):
    out = tmp_path / "ring-wgan"
    labkit("toy", "--target", "ring", "--loss", "wgan", "--iters", "40", "--seed", "0",
           "--out", str(out), *SMALL)
    assert {p.name for p in out.iterdir()} == {"config.json", "history.csv", "metrics.json",
                                               "samples.png", "checkpoint.pt"}
    config = json.loads((out / "config.json").read_text())
    assert (config["target"], config["loss"], config["iters"], config["lr"]) == \
        ("ring", "wgan", 40, 5e-05)
    metrics = json.loads((out / "metrics.json").read_text())
    (row,) = metrics["seeds"]
    assert metrics["iteration"] == 40 and row["seed"] == 0
    assert 0 <= row["modes"] <= 8 and 0 <= row["hq_fraction"] <= 1 and row["w1_exact"] > 0
    rows = history_rows(out / "history.csv")
    assert [int(r["iteration"]) for r in rows] == list(range(41))
    assert [r["iteration"] for r in rows if r["w1_exact"]] == ["0", "20", "40"]
    assert (out / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_equals_one_go_and_reruns_reproduce(tmp_path, cli):
    one_go, split, again = tmp_path / "one", tmp_path / "split", tmp_path / "again"
    cli("toy", "--iters", "80", "--seed", "1", "--out", str(one_go), *SMALL)
    cli("toy", "--iters", "40", "--seed", "1", "--out", str(split), *SMALL)
    cli("toy", "--out", str(split), "--resume", "--iters", "80", "--quiet")
    cli("toy", "--iters", "80", "--seed", "1", "--out", str(again), *SMALL)

    expected = (one_go / "metrics.json").read_text()
    assert (split / "metrics.json").read_text() == expected
    assert (again / "metrics.json").read_text() == expected
    assert history_rows(split / "history.csv") == history_rows(one_go / "history.csv")
    a, b = (checkpoint.load(p / "checkpoint.pt") for p in (one_go, split))
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])


def test_ensemble_run_reports_every_seed(tmp_path, cli):
    out = tmp_path / "ens"
    cli("toy", "--seeds", "2-4", "--iters", "20", "--out", str(out), *SMALL)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["seed"] for r in metrics["seeds"]] == [2, 3, 4]
    assert json.loads((out / "config.json").read_text())["n_seeds"] == 3


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "error: --lr must be a finite number > 0, got -1.0"),
    (["--loss", "hinge"], "error: --loss must be one of wgan, gan, gan-logd, got 'hinge'"),
    (["--iters", "ten"], "error: argument --iters: invalid int value: 'ten'"),
    (["--seeds", "5-2"], "error: argument --seeds: --seeds '5-2': need 0 <= first <= last"),
    (["--seed", "1", "--seeds", "0-3"], "error: give either --seed or --seeds, not both"),
])
def test_argument_errors_are_one_line(tmp_path, cli, args, message):
    status, err = cli("toy", "--out", str(tmp_path / "x"), *args, check=False)
    assert status == 2
    assert err.strip() == message


def test_argument_error_in_a_real_process_has_no_traceback(tmp_path):
    proc = labkit("toy", "--out", str(tmp_path / "x"), "--n-critic", "0", check=False)
    assert proc.returncode == 2
    assert proc.stderr == "error: --n-critic must be an integer >= 1, got 0\n"


def test_refuses_to_overwrite_and_resume_needs_a_run(tmp_path, cli):
    out = tmp_path / "r"
    cli("toy", "--iters", "2", "--out", str(out), *SMALL)
    status, err = cli("toy", "--iters", "2", "--out", str(out), *SMALL, check=False)
    assert status == 2 and "already holds a run" in err
    status, err = cli("toy", "--out", str(tmp_path / "none"), "--resume", check=False)
    assert status == 2 and err.startswith("error: --resume: ") and "holds no checkpoint" in err
    status, err = cli("toy", "--out", str(out), "--resume", "--iters", "4", "--lr", "1e-3",
                      check=False)
    assert (status, err) == (2, "error: --resume keeps the run's settings, but these differ: --lr "
                                "5e-05 -> 0.001; only --iters, --checkpoint-every, --threads, "
                                "--eval-max-gib may change (start a new run, another --out, to "
                                "change others)\n")


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_saves_checkpoint_and_resume_finishes(tmp_path):
    out = tmp_path / "sigint"
    proc = subprocess.Popen([sys.executable, "-m", "labkit", "toy", "--iters", "100000",
                             "--checkpoint-every", "20", "--out", str(out), *SMALL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: (out / "checkpoint.pt").exists()), "no first checkpoint"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted at iteration" in stderr and "Traceback" not in stderr
    stopped = checkpoint.load(out / "checkpoint.pt")["iteration"]
    assert 20 <= stopped < 100000
    assert int(json.loads((out / "metrics.json").read_text())["iteration"]) == stopped
    labkit("toy", "--out", str(out), "--resume", "--iters", str(stopped + 3), "--quiet")
    assert checkpoint.load(out / "checkpoint.pt")["iteration"] == stopped + 3


WRITER = textwrap.dedent("""
    import sys, torch
    from labkit.checkpoint import save_atomic
    path, i = sys.argv[1], 0
    big = torch.zeros(4_000_000)  # 16 MB, so that a write takes a while
    while True:
        i += 1
        save_atomic({"i": i, "w": big + i}, path)
        print(i, flush=True)
""")


def test_kill_during_checkpoint_write_leaves_previous_loadable(tmp_path):
    path = tmp_path / "ckpt.pt"
    for delay in (0.0, 0.013, 0.029):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "1" or path.exists()
            for _ in range(2):  # let it be mid-way through another write
                proc.stdout.readline()
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            proc.kill()
        state = checkpoint.load(path)
        assert state["i"] >= 1
        assert torch.equal(state["w"], torch.full((4_000_000,), float(state["i"])))


@pytest.mark.parametrize("value, quick", [("1", True), ("yes", True), (" TRUE ", True),
                                          ("0", False), ("no", False), ("", False)])
def test_labkit_quick_is_read_by_one_rule(monkeypatch, value, quick):
    import labkit

    monkeypatch.setenv("LABKIT_QUICK", value)
    assert labkit.quick_mode() is quick


def test_labkit_quick_typo_is_refused_in_one_line(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("LABKIT_QUICK", "maybe")
    status, err = cli("study", "--out", str(tmp_path / "s.json"), check=False)
    assert status == 2
    assert err == ("error: LABKIT_QUICK must be one of 1, true, yes, 0, false, no or empty, "
                   "got 'maybe'\n")
    assert not (tmp_path / "s.json").exists()
