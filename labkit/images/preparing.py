""":func:`prepare`: every image of a source decoded once into a cache, in chunks, in parallel,
resumable after a stop, with the whole array reserved on disk before decoding."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from labkit import _checks, rundir
from labkit._workers import die_with_parent
from labkit.images.cache import (
    CACHE_FORMAT,
    IMAGES_FILE,
    MANIFEST_FILE,
    PARTIAL_FILE,
    STATE_FILE,
    ImageCache,
    _prepare_command,
    _write_json_atomic,
    open_cache,
    write_manifest,
)
from labkit.images.decoding import (
    MAX_DECODE_BYTES,
    _decode_chunk,
    _key_bytes,
    decode_bytes,
    open_source,
)

CHUNK_SIZE = 256


_worker: dict[str, Any] = {}


def _init_worker(reader_pickle: bytes, size: int, parent: int) -> None:
    """Pool initializer: a fresh reader per process (never an LMDB handle shared over fork).

    The worker dies with its parent (``parent``, the pid that started it), however the parent
    dies. A failure is kept and raised by the first task, so that it reaches the parent (an
    initializer that raises makes ``multiprocessing.Pool`` respawn workers for ever).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    die_with_parent(parent)
    try:
        _worker.update(reader=pickle.loads(reader_pickle), size=size)
    except Exception as err:  # noqa: BLE001 - re-raised in _decode_in_worker
        _worker.update(error=err)


def _decode_in_worker(task: tuple[Any, int]):
    if "error" in _worker:
        raise _worker["error"]
    return _decode_chunk(task, _worker["reader"], _worker["size"])


def max_workers() -> int:
    """Most decoding processes :func:`prepare` starts: four per CPU this process may use (more
    only add memory: decoding is CPU-bound)."""
    return 4 * _checks.usable_cpus()


def _plan(reader, limit: int | None, chunk_size: int, start: int):
    """Chunks ``(first key, count)`` over records ``start`` to ``limit``; the number of records
    up to ``limit`` and the SHA-256 of their keys (to recognise the source on resuming)."""
    digest, tasks, n = hashlib.sha256(), [], 0
    for key in reader.keys():
        if limit is not None and n == limit:
            break
        digest.update(_key_bytes(key))
        digest.update(b"\n")
        if n >= start and (n - start) % chunk_size == 0:
            tasks.append([key, 0])
        if n >= start:
            tasks[-1][1] += 1
        n += 1
    return [tuple(t) for t in tasks], n, digest.hexdigest()


def _mismatch(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    """``"size=32 (it has 64)"`` for every setting in ``wanted`` that ``found`` differs in."""
    return "; ".join(f"{k}={wanted[k]!r} (it has {found.get(k)!r})"
                     for k in wanted if found.get(k) != wanted[k])


def prepare(src: str | os.PathLike, out: str | os.PathLike, size: int = 64, workers: int = 1,
            limit: int | None = None, progress: bool = True,
            chunk_size: int = CHUNK_SIZE) -> ImageCache:
    """Decode every image of ``src`` once into the uint8 cache ``out`` (resumable, parallel).

    Records are read in source order (LMDB key order, or sorted file names), split into
    chunks of ``chunk_size``, decoded and preprocessed (:func:`decode`) by ``workers``
    processes and written in order into ``out/images.partial.npy`` (a memmap whose blocks are
    reserved on disk first). After each chunk, ``out/prepare-state.json`` records how many
    records are done, so a run that is interrupted (Ctrl-C, kill, a full disk) continues after
    the last finished chunk when called again with the same ``src``, ``size`` and ``limit``.
    Records that cannot be decoded (or would take too much memory, :func:`decode`) are skipped
    and listed by key with the reason (progress bar, the manifest's ``skipped``); the cache
    holds only decoded images, in source order. At the end the array is trimmed to the decoded
    count, renamed ``images.npy``, and the manifest (:func:`write_manifest`) is written last.

    ``out`` must be new, empty, or a cache that ``prepare`` made; one process at a time may
    work in it (the lock of :func:`labkit.rundir.locked`; a second is refused at once).

    Parameters
    ----------
    src : an LSUN LMDB folder (holding ``data.mdb``) or a folder of image files
    out : cache folder (created); if it already holds a finished cache of the same ``src``,
        ``size`` and ``limit``, that cache is checked against its checksum and returned; with
        other settings it is refused
    size : image side, a power of two >= 16 (64 in the paper)
    workers : decoding processes, 1 (in this process) to :func:`max_workers`
    limit : take only the first ``limit`` records (corrupt ones included); None for all
    progress : show a tqdm progress bar (images, and the number skipped)
    chunk_size : records per chunk, the unit of work and of resumption (may differ on resuming)

    Returns
    -------
    ImageCache
        The opened cache: ``images`` of shape (N, 3, size, size), uint8, memory-mapped.

    Raises
    ------
    FileNotFoundError
        ``src`` does not exist (:class:`labkit._checks.NotFound`).
    ValueError
        A bad argument (:class:`labkit._checks.BadValue`, naming it); an ``out`` that is not a
        cache of ``prepare`` or holds one with other settings, or is in use by another process
        (:class:`labkit.rundir.RunDirError`); a damaged cache; no record of ``src`` decodes.
    OSError
        The disk is full (``ENOSPC``, before decoding when the array does not fit); finished
        chunks are kept and a rerun continues.
    """
    from tqdm.auto import tqdm

    size = _checks.image_size("size", size)
    if decode_bytes(size, size, size) > MAX_DECODE_BYTES:
        raise _checks.BadValue("size", size, "small enough that one image decodes within "
                               f"{MAX_DECODE_BYTES / 2**20:.0f} MiB (size <= 4096)")
    workers = _checks.integer("workers", workers, 1, max_workers())
    chunk_size = _checks.integer("chunk_size", chunk_size, minimum=1)
    if limit is not None:
        limit = _checks.integer("limit", limit, minimum=1)
    progress = _checks.boolean("progress", progress)
    out = Path(_checks.path("out", out))
    if out.exists() and not out.is_dir():
        rundir.check(out, "out")  # raises: a file
    with open_source(src) as reader:
        wanted = {"source": str(Path(src).resolve()), "size": size, "limit": limit}
        _check_out(out)
        if (out / MANIFEST_FILE).exists():  # finished caches are only read (also read-only ones)
            return _finished(out, wanted)
        with rundir.locked(rundir.check(out, "out"), "out"):
            _check_out(out)  # again, under the lock: another process may have been at work
            state = _resumable_state(out, wanted)
            todo, total, keys_sha256 = _plan(reader, limit, chunk_size, state["records_done"])
            if total == 0:
                raise _checks.BadValue("src", str(src), "a source with at least one record",
                                       ": its LMDB holds none")
            if state.setdefault("keys_sha256", keys_sha256) != keys_sha256:
                raise rundir.RunDirError("out", f"{str(out)!r} holds an unfinished prepare of "
                                         f"{state['source']!r}, whose records have changed "
                                         f"since; delete {out} to start over, or choose "
                                         "another {option}")
            state["total"] = total
            _reserve(out, state)
            _write_json_atomic(out / STATE_FILE, state)  # the folder says what it is, from now on
            with tqdm(total=total, initial=state["records_done"], unit="img", desc="prepare",
                      disable=not progress, dynamic_ncols=True) as bar:
                bar.set_postfix(skipped=len(state["skipped"]))
                _decode_into(out, state, todo, reader, workers, bar)
            return _finish(out, state)


def _check_out(out: Path) -> None:
    """Refuse an ``out`` holding anything :func:`prepare` did not write: other files, a
    ``manifest.json`` of another program, an ``images.npy`` with neither a manifest nor a
    prepare state beside it (the user's own array), a damaged state."""
    if not out.is_dir():
        return
    names = {p.name for p in out.iterdir()
             if not (p.name.startswith(".") and p.name.endswith(".tmp"))} - {rundir.LOCK}
    foreign = sorted(names - {IMAGES_FILE, MANIFEST_FILE, PARTIAL_FILE, STATE_FILE})
    problem = None
    if foreign:
        problem = f"holds files that prepare did not write ({', '.join(foreign[:3])})"
    elif MANIFEST_FILE in names and not _is_ours(out / MANIFEST_FILE, "count"):
        problem = "holds a manifest.json that is not a labkit image cache's"
    elif STATE_FILE in names and not _is_ours(out / STATE_FILE, "records_done"):
        problem = "holds a prepare-state.json that prepare did not write"
    elif IMAGES_FILE in names and not names & {MANIFEST_FILE, STATE_FILE}:
        problem = ("holds an images.npy that prepare did not write (no manifest.json or "
                   "prepare-state.json beside it)")
    if problem:
        raise rundir.RunDirError("out", f"{str(out)!r} {problem}; choose a new or empty folder")


def _is_ours(path: Path, field: str) -> bool:
    """Whether ``path`` is JSON written by this module (format :data:`CACHE_FORMAT`, ``field``)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and value.get("format") == CACHE_FORMAT and field in value


def _finished(out: Path, wanted: dict[str, Any]) -> ImageCache:
    """The finished cache in ``out`` if it was made with the ``wanted`` settings and still
    matches its checksum."""
    cache = open_cache(out, verify=True, path_name="out")
    if differ := _mismatch(cache.manifest, wanted):
        raise rundir.RunDirError("out", f"{str(out)!r} already holds a finished cache made with "
                                 f"other settings: {differ}; choose another {{option}}")
    return cache


def _reserve(out: Path, state: dict[str, Any]) -> None:
    """Make ``images.partial.npy`` (unless resuming) and reserve all its blocks on disk.

    A memory map writes into a sparse file, and a disk that fills up then kills the process
    with SIGBUS, half way and without a word. Reserving the blocks first (``posix_fallocate``)
    turns that into one ``OSError`` (``ENOSPC``) here, before anything is decoded; a partial
    array that was new is then removed again.
    """
    partial, size = out / PARTIAL_FILE, state["size"]
    new = state["records_done"] == 0
    if not new and not partial.exists():  # renamed to images.npy already: only the manifest is due
        return
    if new:
        need = state["total"] * 3 * size * size + 4096
        free = shutil.disk_usage(out).free + (partial.stat().st_blocks * 512
                                              if partial.exists() else 0)
        if need > free:
            raise OSError(errno.ENOSPC, f"No space left on device: the cache needs "
                                        f"{need / 2**20:.1f} MiB, {out} has {free / 2**20:.1f} "
                                        "MiB free")
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8,
                                  shape=(state["total"], 3, size, size))
    if hasattr(os, "posix_fallocate"):  # (not on macOS, whose file systems reserve on write)
        try:
            with open(partial, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError:
            if new:
                partial.unlink(missing_ok=True)
            raise


def _decode_into(out: Path, state: dict[str, Any], todo: list[tuple[Any, int]], reader,
                 workers: int, bar) -> None:
    """Decode the chunks ``todo`` here (1 worker) or in a pool, and write them in order."""
    size = state["size"]
    if todo and workers == 1:
        _fill(out, state, (_decode_chunk(task, reader, size) for task in todo), bar)
    elif todo:
        import multiprocessing

        reader.close()  # py-lmdb refuses to reopen in a forked child what is open here
        with multiprocessing.Pool(min(workers, len(todo)), _init_worker,
                                  (pickle.dumps(reader), size, os.getpid())) as pool:
            _fill(out, state, pool.imap(_decode_in_worker, todo), bar)


def _resumable_state(out: Path, wanted: dict[str, Any]) -> dict[str, Any]:
    """The state of an unfinished run in ``out`` with the same settings, or a fresh one."""
    fresh = {"format": CACHE_FORMAT, **wanted, "records_done": 0, "written": 0, "skipped": []}
    try:
        state = json.loads((out / STATE_FILE).read_text())
    except FileNotFoundError:
        return fresh
    if differ := _mismatch(state, wanted):
        finish = _prepare_command(state["source"], out, state["size"], state["limit"])
        raise rundir.RunDirError("out", f"{str(out)!r} holds an unfinished prepare with other "
                                 f"settings: {differ}; finish it with: {finish}, or choose "
                                 "another {option}")
    finished = (out / IMAGES_FILE).exists() and state["records_done"] == state["total"]
    return state if (out / PARTIAL_FILE).exists() or finished else fresh


def _fill(out: Path, state: dict[str, Any], results, bar) -> None:
    """Write decoded chunks, in order, after those already in the partial array."""
    images = np.load(out / PARTIAL_FILE, mmap_mode="r+")
    for count, pixels, skipped in results:
        written = state["written"]
        images[written:written + len(pixels)] = pixels
        images.flush()
        state.update(records_done=state["records_done"] + count, written=written + len(pixels),
                     skipped=state["skipped"] + [list(s) for s in skipped])
        _write_json_atomic(out / STATE_FILE, state)
        bar.update(count)
        if skipped:
            bar.set_postfix(skipped=len(state["skipped"]))


def _finish(out: Path, state: dict[str, Any]) -> ImageCache:
    """Trim the partial array to the decoded images, rename it, write the manifest last."""
    partial = out / PARTIAL_FILE
    if state["written"] == 0:
        partial.unlink(missing_ok=True)
        (out / STATE_FILE).unlink(missing_ok=True)
        key, reason = state["skipped"][0]
        raise _checks.BadValue("src", state["source"], "a source with images that decode",
                               f": none of its {state['total']} records could be decoded "
                               f"(first: {key}: {reason})")
    if partial.exists():
        _trim_npy(partial, state["written"])
        os.replace(partial, out / IMAGES_FILE)
    write_manifest(out, state["source"], state["skipped"], extra={"limit": state["limit"]})
    (out / STATE_FILE).unlink()
    return open_cache(out, state["size"])


def _trim_npy(path: Path, n: int) -> None:
    """Keep the first ``n`` rows of a C-order ``.npy`` file in place: rewrite the shape in its
    header (padded to the same length) and truncate the data. Running it twice is harmless."""
    fmt = np.lib.format
    with open(path, "r+b") as f:
        version = fmt.read_magic(f)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        offset = f.tell()
        header = repr({"descr": fmt.dtype_to_descr(dtype), "fortran_order": fortran_order,
                       "shape": (n, *shape[1:])})
        prefix = len(fmt.MAGIC_PREFIX) + 2 + (2 if version == (1, 0) else 4)
        header = header.ljust(offset - prefix - 1) + "\n"
        if len(header) != offset - prefix or fortran_order:
            raise RuntimeError(f"{path}: cannot trim this .npy header in place")
        f.seek(prefix)
        f.write(header.encode("latin1"))
        f.truncate(offset + n * int(np.prod(shape[1:])) * dtype.itemsize)
