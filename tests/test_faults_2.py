"""Faults made real (issue 16): a full disk that is a real small file system (a tmpfs the test
mounts), Ctrl-C and SIGKILL sent to real processes, two processes on one folder, for the data
commands and for runs. Each ends in one line with the right exit status, keeps what was done,
writes nothing half, and the command it prints (or the same command, after making room) works.

Mounting needs root (CI runs as root and must run these tests: there a failed mount fails the
test); elsewhere the full-disk tests are skipped, saying why. Every test failed on the code
before the fixes (tests/BAD_INPUTS_2.md, "Faults").
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_bad_inputs import TINY, finish, pausing_run, temporaries, tree  # noqa: E402

from labkit import checkpoint, images, lsun  # noqa: E402
from labkit.cli import main  # noqa: E402
from labkit.datasets import synthetic_images  # noqa: E402
from labkit.tests.test_lsun import Server  # noqa: E402

IMG_TINY = ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "8",
            "--n-critic", "2", "--no-critic-warmup", "--eval-every", "2", "--eval-samples", "16",
            "--quiet"]
PAGE = 4096
ROOT = str(Path(images.__file__).parents[2])  # the labkit under test, for child processes
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}


# ------------------------------------------------------------------------------ small disks
@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of ``size`` (``mount -o size=``) mounted at ``path`` for the block."""
    path.mkdir(parents=True)
    mount = shutil.which("mount")
    proc = subprocess.run([mount or "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                           str(path)], capture_output=True, text=True) if mount else None
    if proc is None or proc.returncode:
        why = (f"cannot mount a tmpfs here ({proc.stderr.strip() if proc else 'no mount'}); "
               "the real full-disk tests need root")
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def resize(disk: Path, size: str) -> None:
    """Make room: grow the tmpfs at ``disk`` to ``size``."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


def leave_free(disk: Path, pages: int) -> Path:
    """Fill ``disk`` with a file so that exactly ``pages`` pages of 4 KiB stay free."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, free - pages * PAGE)
    return filler


def printed_command(err: str) -> list[str]:
    """The arguments of the ``python -m labkit ...`` command a message says to run."""
    command = re.search(r"with: python -m labkit ([^;\n]*?)(?:,|;|$)", err.strip()).group(1)
    return shlex.split(command)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return images.save_cache(synthetic_images(40, 16, seed=3),
                             tmp_path_factory.mktemp("cache") / "c", "synthetic").path


# ---------------------------------------------------------------------------- runs, full disk
@pytest.mark.parametrize("command", ["toy", "lsun train"])
def test_a_real_full_disk_stops_a_run_in_one_line_and_the_printed_command_continues_it(
        tmp_path, cache, capsys, command):
    # torch.save on a full disk raised "RuntimeError: ... unexpected pos", 41 lines and rc 1
    start = (["toy", *TINY[:-1], "--hidden", "64", "--depth", "2"] if command == "toy" else
             ["lsun", "train", "--data", str(cache), *IMG_TINY[:-1]])
    with small_disk(tmp_path / "disk", "8m") as disk:
        run = disk / "run"
        assert main([*start, "--out", str(run), "--iters", "2", "--quiet"]) == 0
        capsys.readouterr()
        filler = leave_free(disk, 4)  # room for the lock, the marker and config.json only
        status = main([*command.split(), "--out", str(run), "--resume", "--iters", "4",
                       "--quiet"])
        err = capsys.readouterr().err
        ckpt = run / "checkpoint.pt"
        assert (status, err) == (1, f"error: could not write in {str(run)!r}: No space left on "
                                    f"device; make room; checkpoint of iteration 2 in {ckpt}; "
                                    f"continue with: python -m labkit {command} --out {run} "
                                    "--resume --iters 4\n")
        assert checkpoint.load(ckpt)["iteration"] == 2 and temporaries(run) == []
        filler.unlink()
        assert main([*printed_command(err), "--quiet"]) == 0
        assert checkpoint.load(ckpt)["iteration"] == 4
        assert json.loads((run / "metrics.json").read_text())["iteration"] == 4
        assert not (run / "INCOMPLETE").exists() and temporaries(run) == []


# ----------------------------------------------------------------------- prepare, full disk
@pytest.fixture(scope="module")
def lmdb100(tmp_path_factory):
    return lsun.make_fake_lmdb(tmp_path_factory.mktemp("lmdb") / "db", 100, size=32, seed=4)


def test_prepare_on_a_real_full_disk_refuses_before_decoding_and_reruns_after_room(
        tmp_path, lmdb100, capsys):
    # the memory map filled a sparse file: "Bus error", rc 135, a half-written cache
    with small_disk(tmp_path / "disk", "1m") as disk:
        out = disk / "cache"
        args = ["lsun", "prepare", "--src", str(lmdb100), "--out", str(out), "--size", "64",
                "--quiet"]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert re.fullmatch(rf"error: could not write in --out {re.escape(repr(str(out)))}: No "
                            r"space left on device: the cache needs 1\.2 MiB, .* has [\d.]+ MiB "
                            r"free; make room, then: no chunk was finished, so nothing was "
                            r"kept; run the same command again to start\n", err), err
        assert tree(disk) == {}  # nothing half-written
        resize(disk, "4m")
        assert main(args) == 0
        reference = images.prepare(lmdb100, tmp_path / "reference", size=64, progress=False)
        np.testing.assert_array_equal(images.open_cache(out).images, reference.images)


def calling_at(n: int, action, function):
    """``function`` that runs ``action()`` once, just before its ``n``-th call."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            action()
        return function(*args, **kwargs)

    return wrapped


def test_prepare_whose_disk_fills_half_way_keeps_the_finished_chunks(tmp_path, lmdb100, capsys,
                                                                     monkeypatch):
    # another program fills the disk while prepare decodes record 15 (chunks of 10): the array
    # is reserved, so only the small state file can fail, in one line, keeping the first chunk
    monkeypatch.setattr(images, "prepare", functools.partial(images.prepare, chunk_size=10))
    with small_disk(tmp_path / "disk", "1m") as disk:
        out = disk / "cache"
        args = ["lsun", "prepare", "--src", str(lmdb100), "--out", str(out), "--size", "16",
                "--limit", "60", "--quiet"]
        fill = functools.partial(leave_free, disk, 0)
        monkeypatch.setattr(images.decoding, "decode", calling_at(15, fill, images.decode))
        assert main(args) == 1
        assert capsys.readouterr().err == (
            f"error: could not write in --out {str(out)!r}: No space left on device; make room, "
            f"then: 10 of 60 records are done and kept in {out}; run the same command again to "
            "continue\n")
        assert sorted(p.name for p in out.iterdir()) == ["images.partial.npy",
                                                         "prepare-state.json"]
        (disk / "filler").unlink()
        monkeypatch.undo()
        assert main(args) == 0
        reference = images.prepare(lmdb100, tmp_path / "reference", size=16, limit=60,
                                   progress=False)
        np.testing.assert_array_equal(images.open_cache(out).images, reference.images)


# --------------------------------------------------------------------------------- download
def zipped_lmdb(root: Path, noise_bytes: int) -> bytes:
    """An LSUN-style zip holding a small LMDB and ``noise_bytes`` of incompressible bytes."""
    db = lsun.make_fake_lmdb(root / "bedroom_train_lmdb", 4, size=16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.write(db / "data.mdb", "bedroom_train_lmdb/data.mdb")
        zf.writestr("bedroom_train_lmdb/noise.bin", np.random.default_rng(0).bytes(noise_bytes))
    return buffer.getvalue()


def test_download_on_a_real_full_disk_keeps_the_part_and_resumes_after_room(tmp_path, capsys):
    server = Server(zipped_lmdb(tmp_path, 2 * 2**20))
    try:
        with small_disk(tmp_path / "disk", "1m") as disk:
            args = ["lsun", "download", "--category", "bedroom", "--out", str(disk), "--url",
                    server.url, "--quiet"]
            assert main(args) == 1
            err = capsys.readouterr().err
            part = disk / "bedroom_train_lmdb.zip.part"
            kept = part.stat().st_size
            assert err == (f"error: could not write in --out {str(disk)!r}: No space left on "
                           f"device; make room, then: the {kept} bytes received are kept in "
                           f"{part}; run the same command again to resume the download\n")
            resize(disk, "16m")
            assert main(args) == 0
            assert server.requests[-1] == f"bytes={kept}-"
            assert (disk / "bedroom_train_lmdb" / "data.mdb").is_file() and not part.exists()
    finally:
        server.close()


class SlowServer(Server):
    """A :class:`Server` whose first answer sends half the body and then stalls until
    :meth:`close`, so that a client can be stopped half way."""

    def __init__(self, payload: bytes):
        self.release = threading.Event()
        super().__init__(payload)
        handler = self.httpd.RequestHandlerClass
        release, first = self.release, threading.Lock()

        class Stalling(handler):
            def do_GET(self):
                if not first.acquire(blocking=False):
                    return super().do_GET()
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[:len(payload) // 2])
                self.wfile.flush()
                release.wait(60)

        self.httpd.RequestHandlerClass = Stalling

    def close(self):
        self.release.set()
        super().close()


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labkit", *args], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL whatever is left of the child's session (it, its workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline or proc.poll() is not None:
            kill_group(proc)
            raise AssertionError(f"the child did not get there: {proc.communicate()}")
        time.sleep(0.02)


def test_ctrl_c_of_a_download_says_what_is_kept_and_a_second_one_is_refused(tmp_path, capsys):
    # said "interrupted before the run started; nothing was written" and kept the .part;
    # a second download into the same folder appended to the same .part
    payload = zipped_lmdb(tmp_path, 4 * 2**20)  # the client reads blocks of 1 MiB
    server = SlowServer(payload)
    out = tmp_path / "data"
    args = ["lsun", "download", "--category", "bedroom", "--out", str(out), "--url", server.url,
            "--quiet"]
    part = out / "bedroom_train_lmdb.zip.part"
    proc = start_cli(*args)
    try:
        stalled = len(payload) // 2 // 2**20 * 2**20  # the whole blocks sent before the stall
        wait_for(lambda: part.exists() and part.stat().st_size >= stalled, proc)
        before = tree(out)  # (at 1 MiB the next block could still land: seen once in CI)
        assert main(args) == 2
        assert capsys.readouterr().err == (
            f"error: --out {str(out)!r} is in use by another run (process {proc.pid}); wait for "
            "it to end or choose another --out\n")
        assert tree(out) == before
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
        server.close()
    assert proc.returncode == 130, err
    kept = part.stat().st_size
    assert err.splitlines()[-1] == (f"interrupted; the {kept} bytes received are kept in "
                                    f"{part}; run the same command again to resume the download")
    server = Server(payload)
    try:
        assert main([*args[:-2], server.url, "--quiet"]) == 0
    finally:
        server.close()
    assert server.requests == [f"bytes={kept}-"]


# ------------------------------------------------------------------ prepare: signals, locks
SLOW_DECODE = """
import functools, sys, time
from labkit import cli, images
from labkit.images import decoding

decode = decoding.decode
decoding.decode = lambda data, size: time.sleep(float(sys.argv[1])) or decode(data, size)
images.prepare = functools.partial(images.prepare, chunk_size=10)
if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[2:]))
"""


def start_slow_prepare(tmp_path: Path, seconds: float, src: Path, out: Path, *extra: str):
    """``lsun prepare`` in a child (its own session) that takes ``seconds`` a record."""
    script = tmp_path / "slow_decode.py"
    script.write_text(SLOW_DECODE)
    return subprocess.Popen([sys.executable, str(script), str(seconds), "lsun", "prepare",
                             "--src", str(src), "--out", str(out), "--size", "16", "--quiet",
                             *extra], env=ENV, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def test_ctrl_c_of_prepare_before_any_chunk_says_nothing_was_kept(tmp_path, lmdb100, capsys,
                                                                 monkeypatch):
    # said "finished chunks are kept in OUT" when none was
    out = tmp_path / "c"
    ctrl_c = functools.partial(os.kill, os.getpid(), signal.SIGINT)  # a real signal, to us
    monkeypatch.setattr(images.decoding, "decode", calling_at(1, ctrl_c, images.decode))
    assert main(["lsun", "prepare", "--src", str(lmdb100), "--out", str(out), "--quiet"]) == 130
    assert capsys.readouterr().err == ("interrupted; no chunk was finished, so nothing was kept; "
                                       "run the same command again to start\n")


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            if re.search(rf"^PPid:\s+{pid}$", status.read_text(), re.M):
                found.append(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    return False


def test_a_second_prepare_on_the_folder_is_refused_and_killed_workers_do_not_linger(
        tmp_path, lmdb100, capsys):
    # two at once on one --out ran together (with other settings: a bus error); SIGKILL of
    # the parent left its decoding workers running to the end of their chunk, then each printed
    # a 40-line BrokenPipeError
    out = tmp_path / "c"
    proc = start_slow_prepare(tmp_path, 2.0, lmdb100, out, "--workers", "2")  # 20 s a chunk
    try:
        wait_for(lambda: len(children(proc.pid)) >= 2 and (out / "images.partial.npy").exists(),
                 proc)
        workers = children(proc.pid)
        before = tree(out)
        for size in ("16", "32"):
            assert main(["lsun", "prepare", "--src", str(lmdb100), "--out", str(out), "--size",
                         size, "--quiet"]) == 2
            assert capsys.readouterr().err == (
                f"error: --out {str(out)!r} is in use by another run (process {proc.pid}); "
                "wait for it to end or choose another --out\n")
        assert tree(out) == before
        proc.kill()  # the parent alone, as the out-of-memory killer would
        proc.communicate(timeout=60)
        deadline = time.monotonic() + 5  # they used to finish their chunk, then print tracebacks
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(w) for w in workers)
    finally:
        kill_group(proc)
    assert main(["lsun", "prepare", "--src", str(lmdb100), "--out", str(out), "--size", "16",
                 "--quiet"]) == 0


# ---------------------------------------------------------------- advice that must work
def test_ctrl_c_in_the_final_evaluation_prints_a_resume_that_works(tmp_path, capsys):
    # the printed --resume failed: "--iters 3 is not beyond the run ..., at iteration 3"
    run = tmp_path / "run"
    proc = pausing_run(run, "eval", 3, 2.0, "--iters", "3")  # evaluations at 0, 2, then 3
    proc.send_signal(signal.SIGINT)
    err = finish(proc)
    assert proc.returncode == 130, err
    assert err == (f"interrupted at iteration 3; checkpoint of iteration 3 in "
                   f"{run / 'checkpoint.pt'}; continue with: python -m labkit toy --out {run} "
                   "--resume\n")
    assert main([*printed_command(err), "--quiet"]) == 0
    assert json.loads((run / "metrics.json").read_text())["iteration"] == 3
    assert not (run / "INCOMPLETE").exists()
    capsys.readouterr()


@pytest.mark.parametrize("made_by, other", [("toy", "lsun train"), ("lsun train", "toy")])
def test_a_run_resumed_by_the_other_command_is_refused_untouched_and_the_advice_works(
        tmp_path, cache, capsys, made_by, other):
    # toy --resume trained an lsun run one more iteration, rewrote it and left it INCOMPLETE
    run = tmp_path / "run"
    start = (["toy", *TINY] if made_by == "toy" else
             ["lsun", "train", "--data", str(cache), *IMG_TINY])
    assert main([*start, "--out", str(run), "--iters", "2"]) == 0
    capsys.readouterr()
    before = tree(run)
    assert main([*other.split(), "--out", str(run), "--resume", "--iters", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --out {str(run)!r} holds a run of `python -m labkit {made_by}` "
                   f"(target {'ring' if made_by == 'toy' else 'images'!r}), not of `{other}`; "
                   f"continue it with: python -m labkit {made_by} --out {run} --resume --iters 4,"
                   " or choose another --out\n")
    assert tree(run) == before and not (run / "INCOMPLETE").exists()
    assert main([*printed_command(err), "--quiet"]) == 0
    assert checkpoint.load(run / "checkpoint.pt")["iteration"] == 4


@pytest.mark.parametrize("data", ["an LMDB", "an unfinished prepare"])
def test_a_data_folder_that_is_no_cache_prints_the_prepare_that_makes_it(tmp_path, lmdb100,
                                                                          capsys, data):
    # said "run `python -m labkit lsun prepare` to (re)build the cache", which needs --src
    folder = lmdb100
    if data == "an unfinished prepare":  # stopped in its first record
        folder = tmp_path / "c"
        stop = functools.partial(os.kill, os.getpid(), signal.SIGINT)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(images.decoding, "decode", calling_at(1, stop, images.decode))
            assert main(["lsun", "prepare", "--src", str(lmdb100), "--out", str(folder), "--size",
                         "16", "--quiet"]) == 130
    train = ["lsun", "train", "--data", str(folder), "--out", str(tmp_path / "run"), "--iters",
             "1", *IMG_TINY]
    assert main(train) == 2
    err = capsys.readouterr().err
    assert main([*printed_command(err), "--quiet"]) == 0
    made = re.search(r"--out (\S+)", err.split("with: ")[1]).group(1)
    assert main([*train[:3], made, *train[4:]]) == 0
