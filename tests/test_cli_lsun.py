"""End-to-end tests of ``python -m labkit lsun train`` on a tiny synthetic cache: outputs, exact
resume, and one-line errors naming the parameter."""

import json
import signal
import subprocess
import sys
import time

import pytest

from labkit import checkpoint
from labkit.datasets import synthetic_images
from labkit.images import save_cache

TINY = ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "8", "--n-critic", "2",
        "--no-critic-warmup", "--eval-every", "2", "--eval-samples", "16", "--quiet"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return save_cache(synthetic_images(64, 16, seed=3), tmp_path_factory.mktemp("cli-cache"),
                      "synthetic_images(64, 16, seed=3)")


def test_train_writes_everything_and_resume_equals_one_go(cache, tmp_path, cli):
    one_go, split = tmp_path / "one", tmp_path / "split"
    _, stdout, _ = cli("lsun", "train", "--data", cache.path, "--out", one_go, "--iters", 4, *TINY)
    assert stdout.startswith("iteration 4: W estimate ")
    assert {p.name for p in one_go.iterdir()} == {"config.json", "history.csv", "metrics.json",
                                                  "w_estimate.png", "samples", "checkpoint.pt"}
    # a second run into the same folder is refused; the first finished (no INCOMPLETE marker)
    status, _, err = cli("lsun", "train", "--data", cache.path, "--out", one_go, "--iters", 4,
                         *TINY, check=False)
    assert status == 2 and "already holds a run (checkpoint.pt); pass --resume" in err
    assert sorted(p.name for p in (one_go / "samples").iterdir()) == \
        ["iter_000000.png", "iter_000002.png", "iter_000004.png", "real.png"]
    assert (one_go / "samples" / "iter_000004.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((one_go / "config.json").read_text())
    assert (config["generator"], config["nz"], config["lr"], config["clip"], config["ngf"]) == \
        ("dcgan", 100, 5e-05, 0.01, 4)

    cli("lsun", "train", "--data", cache.path, "--out", split, "--iters", 2, *TINY)
    # --resume must go beyond the saved iteration, and needs a run to continue (as toy runs)
    status, _, err = cli("lsun", "train", "--out", split, "--resume", "--iters", 2, check=False)
    assert (status, err) == (2, f"error: --iters 2 is not beyond the run in {str(split)!r}, "
                                "which is at iteration 2; pass --iters above 2 to continue it\n")
    status, _, err = cli("lsun", "train", "--out", tmp_path / "empty", "--resume", check=False)
    assert status == 2 and err.startswith("error: --resume: ") and "holds no checkpoint.pt" in err
    cli("lsun", "train", "--out", split, "--resume", "--iters", 4, "--quiet")
    assert (split / "metrics.json").read_text() == (one_go / "metrics.json").read_text()
    a, b = (checkpoint.load(p / "checkpoint.pt") for p in (one_go, split))
    assert all((a["critic"][k] == b["critic"][k]).all() for k in a["critic"])


def test_epochs_set_the_iterations(cache, tmp_path, cli):
    # 64 - 16 held out = 48 training images; one epoch = 48 / (8 * 2) = 3 generator iterations.
    out = tmp_path / "epochs"
    cli("lsun", "train", "--data", cache.path, "--out", out, "--epochs", 1, *TINY)
    assert json.loads((out / "config.json").read_text())["iters"] == 3
    assert json.loads((out / "metrics.json").read_text())["iteration"] == 3


@pytest.mark.parametrize("args, message", [
    ([], "error: --data is required: the folder of an image cache made by `python -m labkit "
         "lsun prepare`"),
    (["--data", "{cache}", "--image-size", "48"],
     "error: --image-size must be a power of two >= 16 (16, 32, 64, ...: what the DCGAN models "
     "build), got 48"),
    (["--data", "{cache}", "--image-size", "32"],
     "error: image_size=32 does not match the cache at '{cache}', made at size 16; use size 16 "
     "or prepare a cache with --size 32"),
    (["--data", "{cache}", "--image-size", "32", "--epochs", "1"],  # epochs -> iters reads it
     "error: image_size=32 does not match the cache at '{cache}', made at size 16; use size 16 "
     "or prepare a cache with --size 32"),
    (["--data", "{cache}", "--generator", "resnet"],
     "error: --generator must be one of dcgan, dcgan-nobn, dcgan-const, mlp, got 'resnet'"),
    (["--data", "{tmp}/none"], "error: --data must be the folder of an image cache, got "
                               "'{tmp}/none': no such folder"),
    (["--data", "{cache}", "--device", "cuda:7"],
     "error: --device must be a device that exists, got 'cuda:7'; torch "),
])
def test_bad_input_is_one_line(cache, tmp_path, cli, args, message):
    fill = {"cache": str(cache.path), "tmp": str(tmp_path)}
    args = [a.format(**fill) for a in args]  # after TINY, so that they win
    iters = [] if "--epochs" in args else ["--iters", 1]
    status, _, err = cli("lsun", "train", "--out", tmp_path / "x", *iters, *TINY, *args,
                         check=False)
    assert status == 2
    if "cuda" in message:  # the rest names the torch build and the GPUs it sees
        assert err.startswith(message.format(**fill)) and err.count("\n") == 1
    else:
        assert err.strip() == message.format(**fill)


def test_ctrl_c_saves_outputs_and_resume_continues(cache, tmp_path, cli):
    out = tmp_path / "sigint"
    proc = subprocess.Popen([sys.executable, "-m", "labkit", "lsun", "train", "--data",
                             str(cache.path), "--out", str(out), "--iters", "100000",
                             "--checkpoint-every", "2", *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted at iteration" in stderr and "Traceback" not in stderr
    stopped = checkpoint.load(out / "checkpoint.pt")["iteration"]
    assert json.loads((out / "metrics.json").read_text())["iteration"] == stopped >= 2
    assert (out / "w_estimate.png").exists() and (out / "INCOMPLETE").exists()
    cli("lsun", "train", "--out", out, "--resume", "--iters", stopped + 2, "--quiet")
    assert checkpoint.load(out / "checkpoint.pt")["iteration"] == stopped + 2
    assert not (out / "INCOMPLETE").exists() and not (out / ".lock").exists()
