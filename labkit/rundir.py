"""Run folders: one run per folder at a time, nothing half-written, nothing stuck after a crash.

Every command that writes a run into a folder (``toy``, ``lsun train``, and each (method, target)
run of ``study`` in its work folder) goes through one entry point, :func:`claim`; ``study`` also
locks its results file with :func:`claim_file`::

    folder = rundir.check(args.out, "--out")  # first: refuses bad paths, writes nothing
    ...                                       # then load and validate all that can fail
    with rundir.claim(folder, "--out", fresh=not args.resume) as run:
        run.write_text("config.json", ...)    # atomic
        ...                                   # train; save through rundir.atomic_path
        run.finish()                          # only when the run reached its end

The contract:

* :func:`check` refuses, with a :class:`RunDirError` naming the option (a ``ValueError``), an
  empty path, a path that is a file or lies inside one, and a folder that cannot be created.
  It writes nothing. :func:`check_file` does the same for a command whose output is one file.
* :func:`claim` creates the folder and takes an exclusive ``fcntl.flock`` on ``.lock`` (which
  holds the owner's PID). A second process on the same folder is refused at once, naming that
  PID. The operating system drops the lock when its process dies, however it dies, so a crashed
  or killed run never blocks a rerun; a clean exit also removes ``.lock``. Children made by
  ``fork`` (worker pools) close their copy of the lock at once, so they never hold it.
  :func:`locked` is the lock alone, for commands whose folder is not a run (``lsun prepare``,
  ``lsun download``).
* With ``fresh=True`` the folder must be new, empty, or a run that never saved a checkpoint
  (left ``INCOMPLETE`` by a crash or an early Ctrl-C): a folder holding ``checkpoint.pt``, or
  anything that is not a labkit run, is refused and left untouched.
* Under the lock it deletes orphan temporary files (``.<name>.*.tmp``) that a process killed
  during an atomic write left behind, and writes the marker ``INCOMPLETE``. The marker stays
  until :meth:`Run.finish`: a folder that holds it is an interrupted, diverged or crashed run
  (its ``checkpoint.pt``, if any, is the last good state; ``--resume`` continues it).
* :func:`atomic_path` is the one way files are written: into a temporary file in the same
  folder, flushed to disk, then renamed over the target, so a reader (or a crash) only ever sees
  the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

MARKER = "INCOMPLETE"
LOCK = ".lock"
#: What a ``toy`` run writes: the default ``outputs`` of :func:`claim`.
TOY_OUTPUTS = ("config.json", "history.csv", "metrics.json", "samples.png", "checkpoint.pt")


class RunDirError(ValueError):
    """A run folder that cannot be used; the message is one line naming the option.

    ``detail`` is the message after the option's name; ``{option}`` in it stands for the name
    again. ``name`` and :meth:`render` let a caller name the option its own way (the library
    says ``out`` where the command line says ``--out``), as :class:`labkit._checks.BadValue`.
    """

    def __init__(self, option: str, detail: str) -> None:
        self.option, self.detail = option, detail
        self.name = option.lstrip("-").replace("-", "_")
        super().__init__(self.render(option))

    def render(self, option: str) -> str:
        """The message with the option called ``option``."""
        return f"{option} {self.detail.replace('{option}', option)}"


def check(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a :class:`Path` if a run folder can live there; writes nothing.

    Raises :class:`RunDirError` for an empty path, an existing file, a path below a file, and a
    folder whose nearest existing parent is not a writable folder.
    """
    text = os.fspath(path)
    if not text.strip():
        raise RunDirError(option, "must name a folder, got an empty path")
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise RunDirError(option, f"{text!r} is a file, not a folder; choose a folder path")
    parent = folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise RunDirError(option, f"{text!r} lies inside the file {str(parent)!r}; "
                          "choose a folder path")
    if not os.access(parent, os.W_OK | os.X_OK) or _is_virtual(parent):
        raise RunDirError(option, f"{text!r} cannot be created: {str(parent)!r} is not "
                          "writable; choose a folder you can write to")
    return folder


def check_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a :class:`Path` if a results *file* can be written there; writes nothing.

    For commands whose output is one file (``study``): refuses an empty path and a folder, and
    checks the file's folder as :func:`check` does.
    """
    text = os.fspath(path)
    if not text.strip():
        raise RunDirError(option, "must name a file, got an empty path")
    target = Path(text)
    if target.is_dir():
        raise RunDirError(option, f"{text!r} is a folder; give the path of a file")
    check(target.parent, option)
    return target


def _is_virtual(folder: Path) -> bool:
    """True for kernel file systems (/proc, /sys) where root may pass ``os.access`` but nothing
    can be created."""
    return os.path.realpath(folder).split(os.sep)[1:2] in (["proc"], ["sys"])


class Run:
    """A claimed run folder (see the module docstring); made by :func:`claim`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` to ``name`` in the folder atomically."""
        target = self.path / name
        with atomic_path(target) as tmp:
            tmp.write_text(text)
        return target

    def finish(self) -> None:
        """Mark the run complete: remove ``INCOMPLETE``."""
        (self.path / MARKER).unlink(missing_ok=True)


#: Descriptors of the locks this process holds. A child made by ``fork`` (a pool of workers)
#: closes its copies at once: the lock then lives exactly as long as its owner, and a worker
#: left running after its parent died cannot keep the folder locked.
_HELD: set[int] = set()


def _drop_inherited_locks() -> None:
    """In a child just made by ``fork``: close the copies of the parent's lock descriptors (the
    parent keeps its lock; ``flock`` ends when the last copy is closed)."""
    for fd in _HELD:
        os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


@contextlib.contextmanager
def locked(folder: Path, option: str = "--out") -> Iterator[Path]:
    """Create ``folder`` and hold its lock (``.lock``, see the module docstring) for the block.

    For commands that manage the folder's contents themselves (``lsun prepare``, ``lsun
    download``); run folders go through :func:`claim`, which uses it. Raises
    :class:`RunDirError` if the folder cannot be created or another process holds it.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(option, f"{str(folder)!r} cannot be created: "
                          f"{err.strerror}") from None
    fd = _lock(folder / LOCK, option, folder, "run")
    _HELD.add(fd)
    try:
        yield folder
    finally:
        (folder / LOCK).unlink(missing_ok=True)
        _HELD.discard(fd)
        os.close(fd)


@contextlib.contextmanager
def claim(folder: Path, option: str = "--out", fresh: bool = True,
          outputs: Iterable[str] = TOY_OUTPUTS) -> Iterator[Run]:
    """Lock ``folder`` for this process, clean it and mark it incomplete (module docstring).

    ``outputs`` names the files the command writes (a command with other files passes its
    own); with ``fresh``, a folder holding anything else, or a ``checkpoint.pt``, is refused.
    Raises :class:`RunDirError` if another process holds the folder, or if ``fresh`` and the
    folder already holds a run or other files. Nothing in the folder changes in either case.
    """
    with locked(folder, option):
        if fresh:
            _check_fresh(folder, option, {MARKER, LOCK, *outputs})
        for orphan in folder.glob(".*.tmp"):
            orphan.unlink(missing_ok=True)
        (folder / MARKER).write_text(
            "This run has not finished: it is running, or it was interrupted, diverged or "
            "crashed. checkpoint.pt, if present, is its last good state.\n")
        yield Run(folder)


@contextlib.contextmanager
def claim_file(target: Path, option: str = "--out", what: str = "study") -> Iterator[Path]:
    """Lock the results *file* ``target`` for this process, as :func:`claim` locks a folder.

    For commands whose output is one file rewritten as they go (``study``): the lock is
    ``.<name>.lock`` beside it (holding our PID), dropped by the operating system however the
    process ends, and removed on a clean exit. A second process on the same file is refused
    with a :class:`RunDirError` naming that PID; the file itself is not touched here.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / f".{target.name}.lock"
    fd = _lock(lock, option, target, what)
    _HELD.add(fd)
    try:
        yield target
    finally:
        lock.unlink(missing_ok=True)
        _HELD.discard(fd)
        os.close(fd)


def _lock(path: Path, option: str, shown: Path, what: str) -> int:
    """Take the lock file ``path`` (guarding ``shown``, a ``what``) and write our PID into it;
    return the open descriptor."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            owner = path.read_text().strip() if path.exists() else "?"
            raise RunDirError(option, f"{str(shown)!r} is in use by another {what} (process "
                              f"{owner or '?'}); wait for it to end or choose another "
                              "{option}") from None
        # A releasing owner unlinks the file before unlocking: make sure ours is still the one.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _check_fresh(folder: Path, option: str, allowed: set[str]) -> None:
    """Refuse a folder that holds a run with a checkpoint, or files labkit did not write."""
    names = {p.name for p in folder.iterdir() if not (p.name.startswith(".")
                                                     and p.name.endswith(".tmp"))}
    if "checkpoint.pt" in names:
        raise RunDirError(option, f"{str(folder)!r} already holds a run (checkpoint.pt); "
                          "pass --resume to continue it (with --iters above the iteration it "
                          "reached, if it finished) or choose another {option}")
    foreign = sorted(names - allowed)
    if foreign or (names - {LOCK} and MARKER not in names):
        shown = ", ".join(foreign[:3]) or ", ".join(sorted(names - {LOCK})[:3])
        raise RunDirError(option, f"{str(folder)!r} holds files that are not an unfinished "
                          f"labkit run ({shown}); choose a new or empty folder")


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block succeeds, give it the mode a new
    file gets (0666 less the umask: 0644 under the usual 022), flush it to disk and rename it
    over ``target`` (atomic on POSIX). On any error, including Ctrl-C, the temporary
    file is removed and ``target`` keeps its previous content. A process killed mid-write leaves
    ``.<name>.*.tmp``, which the next :func:`claim` deletes.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp made it 0600
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
