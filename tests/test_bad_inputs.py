"""The bad-input catalogue (issue 6): every bad value a user can give ``python -m labkit`` or the
public library gets a clear error, one line naming the parameter (on the command line, its flag),
and a refused command changes no file outside its run folder.

Each case is classified by :func:`outcome` as ``clear`` (the expected exception or exit status,
one line, naming the parameter), ``unclear`` (an error, but a traceback, several lines or the
wrong name) or ``silent`` (accepted). The tests require ``clear``; the same classification,
run on the code before the fixes, gave the before counts in the issue's closing note.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit import checkpoint, critics, divergences, images, metrics, models, ot, toys
from labkit.cli import main
from labkit.gan import constraints, losses
from labkit.train import TrainConfig, Trainer

TINY = ["--hidden", "8", "--depth", "1", "--batch-size", "16", "--eval-every", "2",
        "--eval-samples", "50", "--quiet"]
RING = toys.ring()
XY = [[0.0, 0.0], [1.0, 1.0]]


def widgets():
    """labkit.widgets, imported when a case needs it (it loads ipywidgets)."""
    from labkit import widgets

    return widgets


def plots():
    """labkit.plots, imported when a case needs it (it loads matplotlib)."""
    from labkit import plots

    return plots


def grad_scalar():
    return torch.tensor(0.5, requires_grad=True)


# (id, call, exception type, parameter name the message must contain)
LIBRARY = [
    ("config-iters-bool", lambda: TrainConfig(iters=True), ValueError, "iters"),
    ("config-hidden-bool", lambda: TrainConfig(hidden=False), ValueError, "hidden"),
    ("config-batch-float", lambda: TrainConfig(batch_size=64.0), ValueError, "batch_size"),
    ("config-seed-negative", lambda: TrainConfig(seed=-1), ValueError, "seed"),
    ("config-warmup-string", lambda: TrainConfig(critic_warmup="no"), ValueError, "critic_warmup"),
    ("config-lr-inf", lambda: TrainConfig(lr=math.inf), ValueError, "lr"),
    ("config-lr-nan", lambda: TrainConfig(lr=math.nan), ValueError, "lr"),
    ("config-lr-string", lambda: TrainConfig(lr="0.001"), ValueError, "lr"),
    ("config-clip-complex", lambda: TrainConfig(clip=0.01j), ValueError, "clip"),
    ("config-gp-inf", lambda: TrainConfig(gp_lambda=math.inf), ValueError, "gp_lambda"),
    ("config-betas-short", lambda: TrainConfig(betas=(0.5,)), ValueError, "betas"),
    ("config-betas-string", lambda: TrainConfig(betas="ab"), ValueError, "betas"),
    ("config-betas-none", lambda: TrainConfig(betas=None), ValueError, "betas"),
    ("config-betas-nan", lambda: TrainConfig(betas=(0.5, math.nan)), ValueError, "betas"),
    ("config-device-none", lambda: TrainConfig(device=None), ValueError, "device"),
    ("config-device-cudax", lambda: TrainConfig(device="cudax"), ValueError, "device"),
    ("config-device-cuda-99", lambda: TrainConfig(device="cuda:99"), ValueError, "device"),
    ("config-loss-none", lambda: TrainConfig(loss=None), ValueError, "loss"),
    ("config-checkpoint-int", lambda: TrainConfig(checkpoint=5), ValueError, "checkpoint"),
    ("config-eval-samples-huge", lambda: TrainConfig(eval_samples=100_000), ValueError,
     "eval_samples"),
    ("config-budget-nan", lambda: TrainConfig(eval_max_gib=math.nan), ValueError, "eval_max_gib"),
    ("config-from-list", lambda: TrainConfig.from_dict([("lr", 1.0)]), ValueError, "values"),
    ("toys-theta-string", lambda: toys.parallel_lines("a", 3), ValueError, "theta"),
    ("toys-theta-complex", lambda: toys.parallel_lines(1 + 2j, 3), ValueError, "theta"),
    ("toys-n-bool", lambda: toys.parallel_lines(0.5, True), ValueError, "n"),
    ("toys-ring-modes-bool", lambda: toys.ring(modes=True), ValueError, "modes"),
    ("toys-ring-radius-nan", lambda: toys.ring(radius=math.nan), ValueError, "radius"),
    ("toys-grid-side-float", lambda: toys.grid(side=2.0), ValueError, "side"),
    ("toys-roll-noise-string", lambda: toys.swiss_roll(5, noise="x"), ValueError, "noise"),
    ("toys-mixture-centers-string", lambda: toys.GaussianMixture("ab", 0.1), ValueError,
     "centers"),
    ("toys-mixture-std-bool", lambda: toys.GaussianMixture(XY, True), ValueError, "std"),
    ("toys-target-name", lambda: toys.make_target("moons"), ValueError, "name"),
    ("toys-figure2-range", lambda: toys.figure2_pair(x_range="ab"), ValueError, "x_range"),
    ("toys-normal-mean-string", lambda: toys.Normal1D("a", 1.0), ValueError, "mean"),
    ("div-theta-string", lambda: divergences.example1("abc"), ValueError, "theta"),
    ("div-theta-complex", lambda: divergences.example1(1 + 2j), ValueError, "theta"),
    ("div-theta-grad", lambda: divergences.example1(grad_scalar()), ValueError, "theta"),
    ("div-kl-x-string", lambda: divergences.kl([1, 1], [1, 1], "ab"), ValueError, "x"),
    ("div-js-p-ragged", lambda: divergences.js([[1], [1, 2]], [1, 1], [0, 1]), ValueError, "p"),
    ("div-tv-q-nan", lambda: divergences.tv([1, 1], [1, math.nan], [0, 1]), ValueError, "q"),
    ("ot-w1-x-string", lambda: ot.w1("abc", XY), ValueError, "x"),
    ("ot-w1-y-complex", lambda: ot.w1(XY, np.array(XY) * 1j), ValueError, "y"),
    ("ot-w1-budget-bool", lambda: ot.w1(XY, XY, max_bytes=True), ValueError, "max_bytes"),
    ("ot-w1-iter-float", lambda: ot.w1(XY, XY, max_iter=2.5), ValueError, "max_iter"),
    ("ot-w1-a-string", lambda: ot.w1(XY, XY, a="ab"), ValueError, "a"),
    ("ot-1d-x-complex", lambda: ot.w1_1d([1j], [0.0]), ValueError, "x"),
    ("ot-sliced-proj-bool", lambda: ot.sliced_w(XY, XY, n_projections=True), ValueError,
     "n_projections"),
    ("ot-sliced-seed-string", lambda: ot.sliced_w(XY, XY, seed="a"), ValueError, "seed"),
    ("ot-sliced-directions-string", lambda: ot.sliced_w(XY, XY, directions="ab"), ValueError,
     "directions"),
    ("metrics-std-bool", lambda: metrics.mode_coverage(XY, RING.centers, std=True), ValueError,
     "std"),
    ("metrics-std-string", lambda: metrics.mode_coverage(XY, RING.centers, std="0.1"),
     ValueError, "std"),
    ("metrics-threshold-nan", lambda: metrics.mode_coverage(XY, RING.centers, 0.1, math.nan),
     ValueError, "threshold"),
    ("metrics-samples-string", lambda: metrics.mode_coverage("ab", RING.centers, 0.1),
     ValueError, "samples"),
    ("models-nz-bool", lambda: models.MLPGenerator(True, (2,)), ValueError, "nz"),
    ("models-hidden-zero", lambda: models.MLPCritic((2,), hidden=0), ValueError, "hidden"),
    ("gan-clip-bool", lambda: constraints.WeightClipping(clip=True), ValueError, "clip"),
    ("gan-lam-string", lambda: constraints.GradientPenalty(lam="10"), ValueError, "lam"),
    ("gan-constraint-name", lambda: constraints.make_constraint("l2"), ValueError, "name"),
    ("images-size-bool", lambda: images.open_cache("/nonexistent", size=True), ValueError, "size"),
    ("models-isize-odd", lambda: models.DCGANCritic(48), ValueError, "isize"),
    ("images-cache-missing", lambda: images.open_cache("/nonexistent/cache"), FileNotFoundError,
     "/nonexistent/cache"),
    ("widgets-theta-string", lambda: widgets().example1_readout("a", 10), ValueError, "theta"),
    ("widgets-n-bool", lambda: widgets().example1_samples(0.5, True), ValueError, "n"),
    ("widgets-clip-c-string", lambda: widgets().ClipExplorerModel.key("a", 5, 3, "clip"),
     ValueError, "c"),
    ("widgets-clip-n-critic-bool", lambda: widgets().ClipExplorerModel.key(0.01, True, 3, "clip"),
     ValueError, "n_critic"),
    ("critics-lr-string", lambda: critics.CriticConfig(lr="0.1"), ValueError, "lr"),
    ("critics-hidden-bool", lambda: critics.CriticConfig(hidden=True), ValueError, "hidden"),
    ("critics-real-string", lambda: critics.train_critic("ab", XY), ValueError, "real"),
    ("critics-fake-complex", lambda: critics.train_critic(XY, np.array(XY) * 1j), ValueError,
     "fake"),
    ("plots-theta-inf", lambda: plots().example1_setup(math.inf), ValueError, "theta"),
    ("gan-loss-name",
     lambda: losses.critic_loss("hinge", torch.zeros(2), torch.zeros(2)), ValueError, "loss"),
]

# Library calls that must be *accepted*: numpy scalars are numbers like Python's. Each case gives
# the call and what its result must be.
ACCEPTED = [
    ("config-numpy-ints", lambda: TrainConfig(  # to_dict: stored as JSON-ready Python types
        iters=np.int64(3), hidden=np.int32(8), lr=np.float32(1e-3),
        critic_warmup=np.bool_(True)).to_dict(),
     lambda d: [(type(d[k]), d[k]) for k in ("iters", "hidden", "critic_warmup")]
     == [(int, 3), (int, 8), (bool, True)] and type(d["lr"]) is float
     and math.isclose(d["lr"], 1e-3, rel_tol=1e-6)),
    ("toys-numpy-n", lambda: toys.ring(modes=np.int64(4)).sample(np.int32(3)),
     lambda x: tuple(x.shape) == (3, 2)),
    ("models-numpy-nz", lambda: models.MLPGenerator(np.int64(2), (2,), hidden=8),
     lambda g: tuple(g(torch.zeros(5, 2)).shape) == (5, 2)),
]


def damaged(kind):
    """Write a ``checkpoint.pt`` that is corrupt in the given way into a run folder."""

    def setup(run: Path):
        run.mkdir()
        path = run / "checkpoint.pt"
        if kind == "empty":
            path.write_bytes(b"")
        elif kind == "garbage":
            path.write_bytes(os.urandom(4096))
        elif kind == "foreign":
            torch.save([1, 2, 3], path)
        elif kind == "bare":  # the right format number, but nothing of a run in it
            torch.save({"format": checkpoint.FORMAT}, path)
        elif kind == "pickle":  # arbitrary objects: weights_only refuses, and so must we, plainly
            torch.save({"config": Path("x")}, path)
        else:  # truncated: the first half of a real checkpoint
            Trainer(TrainConfig(iters=0, hidden=8, depth=1, eval_samples=50,
                                checkpoint=str(path)), progress=False).save()
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return setup


def in_run_folder(name):
    def setup(run: Path):
        run.mkdir()
        (run / name).write_text("x")
    return setup


# (id, setup(run folder) or None, arguments ({run} is the run folder), exit status, name)
COMMAND_LINE = [
    ("cli-no-command", None, [], 2, "toy"),
    ("cli-unknown-command", None, ["trian"], 2, "trian"),
    ("cli-out-missing", None, ["toy"], 2, "--out"),
    ("cli-out-empty", None, ["toy", "--out", ""], 2, "--out"),
    ("cli-out-is-file", in_run_folder("f"), ["toy", "--out", "{run}/f"], 2, "--out"),
    ("cli-out-inside-file", in_run_folder("f"), ["toy", "--out", "{run}/f/sub"], 2, "--out"),
    ("cli-out-uncreatable", None, ["toy", "--out", "/proc/labkit-run"], 2, "--out"),
    ("cli-lsun-download-out-empty", None, ["lsun", "download", "--category", "bedroom",
                                           "--out", ""], 2, "--out"),
    ("cli-lsun-prepare-out-uncreatable", in_run_folder("src.png"),
     ["lsun", "prepare", "--src", "{run}", "--out", "/proc/labkit-cache"], 2, "--out"),
    ("cli-study-out-folder", in_run_folder("f"), ["study", "--out", "{run}"], 2, "--out"),
    ("cli-study-out-uncreatable", None, ["study", "--out", "/proc/labkit/study.json"], 2,
     "--out"),
    ("cli-lr-nan", None, ["--lr", "nan"], 2, "--lr"),
    ("cli-lr-inf", None, ["--lr", "inf"], 2, "--lr"),
    ("cli-lr-word", None, ["--lr", "fast"], 2, "--lr"),
    ("cli-clip-zero", None, ["--clip", "0"], 2, "--clip"),
    ("cli-gp-negative", None, ["--gp-lambda", "-1"], 2, "--gp-lambda"),
    ("cli-betas-one", None, ["--betas", "0.5", "1.0"], 2, "--betas"),
    ("cli-betas-nan", None, ["--betas", "0.5", "nan"], 2, "--betas"),
    ("cli-iters-negative", None, ["--iters", "-1"], 2, "--iters"),
    ("cli-iters-float", None, ["--iters", "1.5"], 2, "--iters"),
    ("cli-batch-zero", None, ["--batch-size", "0"], 2, "--batch-size"),
    ("cli-n-critic-zero", None, ["--n-critic", "0"], 2, "--n-critic"),
    ("cli-nz-zero", None, ["--nz", "0"], 2, "--nz"),
    ("cli-eval-every-zero", None, ["--eval-every", "0"], 2, "--eval-every"),
    ("cli-eval-samples-huge", None, ["--eval-samples", "100000"], 2, "--eval-samples"),
    ("cli-budget-zero", None, ["--eval-max-gib", "0"], 2, "--eval-max-gib"),
    ("cli-checkpoint-every-zero", None, ["--checkpoint-every", "0"], 2, "--checkpoint-every"),
    ("cli-device-cudax", None, ["--device", "cudax"], 2, "--device"),
    ("cli-device-cuda-99", None, ["--device", "cuda:99"], 2, "--device"),
    ("cli-seed-negative", None, ["--seed", "-1"], 2, "--seed"),
    ("cli-seeds-huge", None, ["--seeds", "0-99999999"], 2, "--seeds"),
    ("cli-seeds-words", None, ["--seeds", "a-b"], 2, "--seeds"),
    ("cli-seeds-backwards", None, ["--seeds", "5-2"], 2, "--seeds"),
    ("cli-loss", None, ["--loss", "hinge"], 2, "--loss"),
    ("cli-target", None, ["--target", "moons"], 2, "--target"),
    ("cli-optimizer", None, ["--optimizer", "adagrad"], 2, "--optimizer"),
    ("cli-warmup-value", None, ["--critic-warmup=no"], 2, "--critic-warmup"),
    ("cli-resume-nothing", None, ["--resume"], 2, "--resume"),
    ("cli-resume-empty", damaged("empty"), ["--resume"], 2, "checkpoint.pt"),
    ("cli-resume-garbage", damaged("garbage"), ["--resume"], 2, "checkpoint.pt"),
    ("cli-resume-truncated", damaged("truncated"), ["--resume"], 2, "checkpoint.pt"),
    ("cli-resume-foreign", damaged("foreign"), ["--resume"], 2, "checkpoint.pt"),
    ("cli-resume-pickle", damaged("pickle"), ["--resume"], 2, "checkpoint.pt"),
    ("cli-resume-bare", damaged("bare"), ["--resume"], 2, "checkpoint.pt"),
    ("cli-out-foreign-folder", in_run_folder("notes.txt"), ["--iters", "1"], 2, "--out"),
]


def one_line_naming(message: str, name: str) -> bool:
    """True if ``message`` is one line that names ``name`` as a word (``n``, not ``n_seeds``)."""
    lines = message.strip().splitlines()
    pattern = rf"(?<![\w-]){re.escape(name)}(?![\w-])"
    return len(lines) == 1 and "Traceback" not in message and re.search(pattern, lines[0]) \
        is not None


def outcome(call, error, name) -> tuple[str, str]:
    """Classify a library call: (``clear`` | ``unclear`` | ``silent``, the message)."""
    try:
        call()
    except Exception as err:  # noqa: BLE001 - classifying whatever comes out is the point
        message = f"{type(err).__name__}: {err}"
        ok = isinstance(err, error) and one_line_naming(str(err), name)
        return ("clear" if ok else "unclear"), message
    return "silent", ""


@pytest.mark.parametrize("case", LIBRARY, ids=[c[0] for c in LIBRARY])
def test_library_refuses_clearly(case):
    _, call, error, name = case
    kind, message = outcome(call, error, name)
    assert kind == "clear", message
    assert "weights_only" not in message


@pytest.mark.parametrize("case", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_numpy_scalars_are_numbers(case):
    _, call, check = case
    result = call()
    assert check(result), result


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def command_outcome(args, status, name, capsys) -> tuple[str, str]:
    """Classify one command line run in-process, like :func:`outcome`."""
    try:
        code = main(args)
    except SystemExit as stop:
        code = stop.code
    except Exception as err:  # noqa: BLE001
        return "unclear", f"raised {type(err).__name__}: {err}"
    err = capsys.readouterr().err
    if code == 0:
        return "silent", err
    ok = code == status and err.startswith("error: ") and one_line_naming(err, name)
    return ("clear" if ok else "unclear"), f"status {code}: {err}"


@pytest.mark.parametrize("case", COMMAND_LINE, ids=[c[0] for c in COMMAND_LINE])
def test_command_line_refuses_clearly(case, tmp_path, capsys, monkeypatch):
    _, setup, args, status, name = case
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    if setup:
        setup(run)
    if args and args[0].startswith("--"):
        args = ["toy", "--out", "{run}", *TINY, *args]
    args = [a.replace("{run}", str(run)) for a in args]
    (tmp_path / "outside.txt").write_text("untouched")
    before_outside = {k: v for k, v in tree(tmp_path).items() if not k.startswith(str(run))}
    before_run = tree(run) if run.exists() else {}
    kind, message = command_outcome(args, status, name, capsys)
    assert kind == "clear", message
    assert "weights_only" not in message
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(str(run))} == before_outside
    assert {k: v for k, v in after.items() if k.startswith(str(run))} == before_run, \
        "a refused command changed its run folder"


# ------------------------------------------------------------------ runs, resumes, iters 0
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 4-iteration run, made once; tests copy it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["toy", "--out", str(run), "--iters", "4", *TINY]) == 0
    return run


def test_resume_below_the_run_iteration_says_so(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = tree(run)
    assert main(["toy", "--out", str(run), "--resume", "--iters", "2"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --iters 2 is not beyond the run in {str(run)!r}, which is at "
                   "iteration 4; pass --iters above 4 to continue it\n")
    assert tree(run) == before


def test_iters_zero_leaves_a_resumable_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["toy", "--out", str(run), "--iters", "0", *TINY]) == 0
    assert checkpoint.load(run / "checkpoint.pt")["iteration"] == 0
    assert main(["toy", "--out", str(run), "--resume", "--iters", "2", "--quiet"]) == 0
    assert checkpoint.load(run / "checkpoint.pt")["iteration"] == 2
    assert not (run / "INCOMPLETE").exists()


def test_no_command_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: choose a command: info, toy") and err.count("\n") == 1


def test_cuda_on_a_machine_without_one_names_what_is_available():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=r"^device must be a device that exists, got 'cuda'; "
                                         r"torch .* sees no GPU, so use 'cpu'$"):
        TrainConfig(device="cuda")



# ------------------------------------------------------------------ faults: signals, kills, disks
# The command line in a child process that pauses ``seconds`` in the ``nth`` call of one phase
# (the evaluation, or torch.save inside a checkpoint's atomic write), saying so on stdout, so
# that a real signal lands in that phase.
PAUSING = """
import sys, time, torch
from labkit import train
from labkit.cli import main
phase, nth, seconds, args = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
calls = 0
def pausing(original):
    def wrapped(*a, **k):
        global calls
        calls += 1
        if calls == nth:
            print("in " + phase, flush=True)
            time.sleep(seconds)
        return original(*a, **k)
    return wrapped
if phase == "save":
    torch.save = pausing(torch.save)
else:
    train.Trainer.evaluate = pausing(train.Trainer.evaluate)
sys.exit(main(args))
"""


def pausing_run(run: Path, phase: str, nth: int, seconds: float, *args: str):
    """Start the pausing child on ``run`` and return it once it has reached the pause."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSING, phase, str(nth), str(seconds), "toy", "--out", str(run),
         "--iters", "100000", "--checkpoint-every", "3", *TINY, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == f"in {phase}", proc.communicate()[1]
    return proc


def finish(proc) -> str:
    """Wait for the child; its stderr."""
    try:
        return proc.communicate(timeout=120)[1]
    finally:
        proc.kill()


def temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in run.glob(".*.tmp"))


@pytest.mark.parametrize("phase, nth, saved", [("eval", 1, 0), ("save", 2, 6)])
def test_ctrl_c_in_first_evaluation_or_save_saves_and_exits_130(tmp_path, phase, nth, saved):
    run = tmp_path / "run"
    proc = pausing_run(run, phase, nth, 2.0)
    proc.send_signal(signal.SIGINT)
    stderr = finish(proc)
    assert proc.returncode == 130, stderr
    assert stderr == (f"interrupted at iteration {saved}; checkpoint of iteration {saved} in "
                      f"{run / 'checkpoint.pt'}; continue with: python -m labkit toy --out {run} "
                      "--resume\n")
    assert checkpoint.load(run / "checkpoint.pt")["iteration"] == saved
    assert (run / "INCOMPLETE").exists() and not (run / ".lock").exists()
    assert temporaries(run) == []


@pytest.mark.parametrize("phase, nth, kept", [
    ("save", 2, "checkpoint of iteration 3 in {ckpt}; continue with: python -m labkit toy --out "
                "{run} --resume"),
    ("eval", 1, "no checkpoint was saved yet, so start again with the same command"),
])
def test_second_ctrl_c_stops_at_once_and_says_what_is_kept(tmp_path, phase, nth, kept):
    run = tmp_path / "run"
    proc = pausing_run(run, phase, nth, 5.0)  # the write of iteration 6, or the first evaluation
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stderr = finish(proc)
    assert proc.returncode == 130, stderr
    reached = 6 if phase == "save" else 0
    assert stderr == (f"interrupted at iteration {reached}; "
                      + kept.format(ckpt=run / "checkpoint.pt", run=run) + "\n")
    assert temporaries(run) == []
    if phase == "save":
        assert checkpoint.load(run / "checkpoint.pt")["iteration"] == 3
    else:  # nothing saved: the same command may take the folder again
        assert not (run / "checkpoint.pt").exists()
        assert main(["toy", "--out", str(run), "--iters", "1", *TINY]) == 0


def test_kill_during_a_save_leaves_the_last_checkpoint_and_the_rerun_cleans_up(tmp_path):
    run = tmp_path / "run"
    proc = pausing_run(run, "save", 2, 60.0)
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    assert len(temporaries(run)) == 1  # the orphan of the unfinished write
    assert checkpoint.load(run / "checkpoint.pt")["iteration"] == 3
    # The dead run's lock does not block the rerun, which removes the orphan.
    assert main(["toy", "--out", str(run), "--resume", "--iters", "5", "--quiet"]) == 0
    assert temporaries(run) == [] and not (run / "INCOMPLETE").exists()
    assert checkpoint.load(run / "checkpoint.pt")["iteration"] == 5


def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    first = pausing_run(run, "eval", 1, 60.0)  # holds the folder, in its first evaluation
    try:
        before = tree(run)
        assert main(["toy", "--out", str(run), *TINY]) == 2
        assert capsys.readouterr().err == (
            f"error: --out {str(run)!r} is in use by another run (process {first.pid}); wait "
            "for it to end or choose another --out\n")
        assert tree(run) == before
    finally:
        first.kill()
        first.communicate(timeout=60)
    # It crashed before any checkpoint: a new run may take the folder over.
    assert main(["toy", "--out", str(run), "--iters", "1", *TINY]) == 0
    assert checkpoint.load(run / "checkpoint.pt")["iteration"] == 1


def test_a_full_disk_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    writes = []

    def save(obj, f):  # the second checkpoint write finds the disk full
        writes.append(f)
        if len(writes) == 2:
            f.write(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, f)

    real_save = torch.save
    monkeypatch.setattr(checkpoint.torch, "save", save)
    status = main(["toy", "--out", str(run), "--iters", "10", "--checkpoint-every", "3", *TINY])
    err = capsys.readouterr().err
    assert status == 1
    assert err == (f"error: could not write in {str(run)!r}: No space left on device; make "
                   f"room; checkpoint of iteration 3 in {run / 'checkpoint.pt'}; continue with: "
                   f"python -m labkit toy --out {run} --resume\n")
    assert checkpoint.load(run / "checkpoint.pt")["iteration"] == 3
    assert temporaries(run) == [] and (run / "INCOMPLETE").exists()


def test_divergence_says_no_checkpoint_exists_and_what_to_do(tmp_path, capsys):
    run = tmp_path / "run"
    status = main(["toy", "--out", str(run), "--constraint", "none", "--optimizer", "sgd",
                   "--lr", "1e12", "--iters", "200", *TINY])
    err = capsys.readouterr().err
    assert status == 3
    assert re.fullmatch(r"error: diverged at iteration \d+: a loss or gradient norm is NaN or "
                        r"inf; no checkpoint was written before it; --resume keeps the run's "
                        r"settings, so start a new run \(another --out\) with a smaller --lr or "
                        r"a tighter constraint \(--clip, --constraint gp\)\n", err), err
    assert not (run / "checkpoint.pt").exists() and (run / "INCOMPLETE").exists()
