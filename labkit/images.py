"""Image data for the image lab: readers, the authors' preprocessing, and the one-time uint8 cache.

Decoding JPEG/WebP is what starves the authors' recipe (``docs/paper_facts.md``, "Measured for
this project": 600 images/s with 2 reader workers, 1.9 generator iterations/s), so
:func:`prepare` decodes every image of a source (an LSUN LMDB or a folder of images) once, in
parallel, preprocesses it as in the authors' code (:func:`preprocess`: shorter side resized to
``size``, bilinear, centre crop), and stores all of them as one uint8 array that
``numpy.load(..., mmap_mode="r")`` opens without reading it into memory. A cache is a folder::

    images.npy     uint8, shape (N, 3, size, size), C order, in source order
    manifest.json  {"format": 1, "source": ..., "count": N, "size": size, "sha256": ...,
                    "skipped": [[key, reason], ...], "labkit": version, "limit": K or null}

Pixels become training inputs in [-1, 1] by ``x = pixel / 127.5 - 1`` (:func:`to_unit_range`).

:func:`prepare` writes only into a folder that is new, empty or a cache it made (an unfinished
one holds ``images.partial.npy`` and ``prepare-state.json`` instead), one process at a time (the
lock of :func:`labkit.rundir.locked`); it reserves the whole array on disk before decoding, so
a full disk is one error at the start, never a crash half way.
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import json
import os
import pickle
import shutil
import signal
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from labkit import _checks, rundir

if TYPE_CHECKING:
    import torch

CACHE_FORMAT = 1
IMAGES_FILE = "images.npy"
MANIFEST_FILE = "manifest.json"
PARTIAL_FILE = "images.partial.npy"
STATE_FILE = "prepare-state.json"
CHUNK_SIZE = 256
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageCache:
    """An opened cache: ``images`` is a read-only memmap of shape (N, 3, size, size), uint8."""

    path: Path
    images: np.ndarray
    manifest: dict[str, Any]

    @property
    def count(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    """Hex SHA-256 of a file, read in chunks of ``chunk`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _write_json_atomic(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically (:func:`labkit.rundir.atomic_path`)."""
    with rundir.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2) + "\n")


def write_manifest(path: str | os.PathLike, source: str,
                   skipped: Iterable[tuple[str, str]] = (),
                   extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``manifest.json`` for the ``images.npy`` already complete in folder ``path``.

    The manifest is written last and atomically, so a folder with a manifest holds a finished
    cache; its checksum covers ``images.npy`` byte for byte. ``extra`` adds fields (``prepare``
    records its ``limit``).
    """
    import labkit

    folder = Path(path)
    images = np.load(folder / IMAGES_FILE, mmap_mode="r")
    manifest = {"format": CACHE_FORMAT, "source": str(source), "count": int(images.shape[0]),
                "size": int(images.shape[-1]), "sha256": file_sha256(folder / IMAGES_FILE),
                "skipped": [list(s) for s in skipped], "labkit": labkit.__version__,
                **(extra or {})}
    _write_json_atomic(folder / MANIFEST_FILE, manifest)
    return manifest


def save_cache(images: np.ndarray, path: str | os.PathLike, source: str,
               skipped: Iterable[tuple[str, str]] = ()) -> ImageCache:
    """Write an in-memory uint8 array of shape (N, 3, S, S) as a cache folder and open it.

    For small sets (tests, generated data); large sources go through the image module's
    ``prepare``, which fills ``images.npy`` chunk by chunk and then calls :func:`write_manifest`.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected uint8 of shape (N, 3, S, S), got {images.dtype} "
                         f"{images.shape}")
    _checks.image_size("images size", images.shape[-1])
    if images.shape[-2] != images.shape[-1]:
        raise ValueError(f"images: expected square images, got {images.shape[-2:]}")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / IMAGES_FILE, np.ascontiguousarray(images))
    write_manifest(folder, source, skipped)
    return open_cache(folder)


def open_cache(path: str | os.PathLike, size: int | None = None, verify: bool = False,
               size_name: str = "size", path_name: str = "path") -> ImageCache:
    """Open a cache folder read-only (memmap), checking it against its manifest.

    Parameters
    ----------
    path : folder holding ``images.npy`` and ``manifest.json``
    size : the image size the run expects; a cache made at another size is refused
    verify : also recompute the SHA-256 of ``images.npy`` (reads the whole file)
    size_name, path_name : what the caller calls ``size`` and ``path`` in its errors
        (``image_size`` and ``data`` for a run)

    Raises
    ------
    FileNotFoundError
        No such folder, or a file of the cache is missing (an unfinished ``prepare``, an LMDB
        not prepared yet): :class:`labkit._checks.NotFound`, whose message gives the command
        that makes or finishes the cache.
    ValueError
        A damaged manifest (every field is checked), a manifest that does not match the array,
        another ``size``, or (``verify``) another checksum: :class:`labkit._checks.BadValue`.
    """
    if size is not None:
        size = _checks.image_size(size_name, size)
    folder = Path(_checks.path(path_name, path))
    cache = "the folder of an image cache"
    if not folder.is_dir():
        raise _checks.NotFound(path_name, str(folder), cache, ": no such folder")
    for name in (IMAGES_FILE, MANIFEST_FILE):
        if not (folder / name).is_file():
            raise _checks.NotFound(path_name, str(folder), cache,
                                   f": {name} is missing; {_how_to_make(folder, size)}")
    try:
        manifest = _read_manifest(folder / MANIFEST_FILE)
        count, cache_size = manifest["count"], manifest["size"]
        images = np.load(folder / IMAGES_FILE, mmap_mode="r")
    except (ValueError, OSError) as err:
        raise _checks.BadValue(path_name, str(folder), "an undamaged image cache",
                               f" ({err}); {_how_to_rebuild(folder)}") from None
    if images.dtype != np.uint8 or images.shape != (count, 3, cache_size, cache_size):
        raise _checks.BadValue(path_name, str(folder), "an undamaged image cache",
                               f": {IMAGES_FILE} holds {images.dtype} {images.shape} but the "
                               f"manifest says uint8 ({count}, 3, {cache_size}, {cache_size}); "
                               f"{_how_to_rebuild(folder)}")
    if size is not None and size != cache_size:
        raise ValueError(f"{size_name}={size} does not match the cache at {str(folder)!r}, made "
                         f"at size {cache_size}; use size {cache_size} or prepare a cache with "
                         f"--size {size}")
    if verify and file_sha256(folder / IMAGES_FILE) != manifest["sha256"]:
        raise _checks.BadValue(path_name, str(folder), "an undamaged image cache",
                               f": {IMAGES_FILE} does not match the checksum in its manifest; "
                               f"{_how_to_rebuild(folder)}")
    return ImageCache(folder, images, manifest)


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path`` with every field checked; ``ValueError`` naming the first bad
    one (a manifest some other program wrote, or one edited by hand)."""
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        raise ValueError(f"{path.name} is not a labkit cache manifest (format {CACHE_FORMAT})")
    try:
        _checks.integer("count", manifest.get("count"), minimum=1)
        _checks.image_size("size", manifest.get("size"))
        for name in ("sha256", "source"):
            if not isinstance(manifest.get(name), str):
                raise _checks.BadValue(name, manifest.get(name), "a string")
        skipped = manifest.get("skipped")
        if not isinstance(skipped, list) or not all(
                isinstance(s, list) and len(s) == 2 and all(isinstance(t, str) for t in s)
                for s in skipped):
            raise _checks.BadValue("skipped", skipped, "a list of [key, reason] strings")
        if manifest.get("limit") is not None:
            _checks.integer("limit", manifest["limit"], minimum=1)
    except _checks.BadValue as err:
        raise ValueError(f"{path.name}: {err}") from None
    return manifest


def _prepare_command(src: str, folder: Path, size: int, limit: int | None) -> str:
    """The ``lsun prepare`` command line that makes (or finishes) the cache ``folder``."""
    return (f"python -m labkit lsun prepare --src {src} --out {folder} --size {size}"
            + (f" --limit {limit}" if limit else ""))


def _how_to_make(folder: Path, size: int | None) -> str:
    """What to run for a folder without a finished cache: prepare the LMDB it is (at ``size``,
    or 64), finish the unfinished prepare in it (its settings are in ``prepare-state.json``),
    or make one there."""
    if (folder / "data.mdb").is_file():
        command = _prepare_command(str(folder), folder.with_name(folder.name + "_cache"),
                                   size or 64, None)
        return f"it is an LMDB, not a cache: prepare one with: {command}"
    try:
        state = json.loads((folder / STATE_FILE).read_text())
        command = _prepare_command(state["source"], folder, state["size"], state["limit"])
    except (OSError, ValueError, KeyError, TypeError):
        return ("make a cache there with: python -m labkit lsun prepare --src YOUR_IMAGES "
                f"--out {folder}")
    return f"an unfinished prepare is there; finish it with: {command}"


def _how_to_rebuild(folder: Path) -> str:
    """What to run for a damaged cache: delete it and prepare it again (prepare refuses to
    write over a damaged cache, which may not be its own)."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        command = _prepare_command(manifest["source"], folder, int(manifest["size"]),
                                   manifest.get("limit"))
    except (OSError, ValueError, KeyError, TypeError):
        command = f"python -m labkit lsun prepare --src YOUR_IMAGES --out {folder}"
    return f"delete {folder} and prepare it again: {command}"


def to_unit_range(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 pixels (..., 3, S, S) -> float32 in [-1, 1]: ``x = p / 127.5 - 1``.

    >>> to_unit_range(np.array([0, 255], dtype=np.uint8)).tolist()
    [-1.0, 1.0]
    """
    import torch

    return torch.tensor(np.asarray(pixels), dtype=torch.float32).div_(127.5).sub_(1.0)


# ----------------------------------------------------------------------------------- readers
class FolderReader:
    """A folder of image files read like an LMDB: keys are relative POSIX paths, sorted.

    Files whose suffix is in :data:`IMAGE_SUFFIXES` (any case) count, in subfolders too;
    hidden files and folders (names starting with ".") do not.

    Parameters
    ----------
    path : the folder
    keys : the keys, if already listed (workers get them from the parent instead of listing again)
    """

    def __init__(self, path: str | os.PathLike, keys: Iterable[str] | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"src: no folder at {str(self.path)!r}")
        if keys is None:
            found = (p.relative_to(self.path) for p in self.path.rglob("*")
                     if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            keys = (p.as_posix() for p in found if not any(s.startswith(".") for s in p.parts))
        self._keys = sorted(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __reduce__(self):
        return FolderReader, (self.path, self._keys)

    def keys(self) -> Iterator[str]:
        """All keys in sorted order."""
        return iter(self._keys)

    def records(self, first: str | None = None,
                count: int | None = None) -> Iterator[tuple[str, bytes]]:
        """``count`` (key, file bytes) pairs from key ``first`` on (default: all, in order)."""
        start = 0 if first is None else bisect.bisect_left(self._keys, first)
        if first is not None and self._keys[start:start + 1] != [first]:
            raise KeyError(f"{first!r} is not in {self.path}")
        stop = len(self._keys) if count is None else start + count
        for key in self._keys[start:stop]:
            yield key, (self.path / key).read_bytes()

    def __getitem__(self, key: str) -> bytes:
        return (self.path / key).read_bytes()

    def close(self) -> None:
        """Nothing to release (files are opened one at a time)."""

    def __enter__(self) -> FolderReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(src: str | os.PathLike):
    """An LSUN LMDB folder (holding ``data.mdb``) -> :class:`labkit.lsun.LmdbReader`; a folder
    of images -> :class:`FolderReader`. Both iterate (key, encoded bytes) in a fixed order.

    Raises :class:`labkit._checks.NotFound` (a ``FileNotFoundError``) if nothing is at ``src``,
    and :class:`labkit._checks.BadValue` (a ``ValueError``) if it is neither, both naming ``src``.
    """
    from labkit.lsun import LmdbReader

    allowed = "an LSUN LMDB folder (holding data.mdb) or a folder of images"
    path = Path(_checks.path("src", src))
    if not path.exists():
        raise _checks.NotFound("src", str(path), allowed, ": no such file or folder")
    if (path / "data.mdb").is_file():
        return LmdbReader(path)
    if path.is_dir():
        reader = FolderReader(path)
        if len(reader):
            return reader
    raise _checks.BadValue("src", str(path), allowed, ": it holds neither data.mdb nor files "
                           f"ending {', '.join(IMAGE_SUFFIXES)}")


# ----------------------------------------------------------------------------- preprocessing
def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """The authors' transform: shorter side resized to ``size`` (bilinear), then centre crop.

    As ``transforms.Scale(size)`` (now ``Resize``) and ``CenterCrop(size)`` in the authors'
    ``main.py``: the longer side becomes ``int(size * long / short)``, PIL's bilinear filter
    resamples (it widens to cover every source pixel when shrinking), and the crop starts at
    ``round((side - size) / 2)``. Scaling to [-1, 1] is left to :func:`to_unit_range`.

    Parameters
    ----------
    image : PIL.Image, any mode (converted to RGB)
    size : output side in pixels

    Returns
    -------
    np.ndarray
        uint8 of shape (3, size, size), channels first.

    Greyscale with 16 bits a pixel (PNG and TIFF modes ``I;16*``, and ``I`` from a PNG) is
    scaled to 8 bits, ``round(v * 255 / 65535)``; PIL's own conversion would clip every value
    above 255 to white. Pixels of 32-bit integers or floats (TIFF ``I``, ``F``) have no fixed
    range, so they are refused (``ValueError``) rather than guessed.

    >>> preprocess(Image.new("RGB", (48, 32), (255, 128, 0)), 16)[:, 0, 0].tolist()
    [255, 128, 0]
    >>> preprocess(Image.new("I;16", (16, 16), 32896), 16)[:, 0, 0].tolist()  # 32896 = 128 * 257
    [128, 128, 128]
    """
    image = _eight_bit(image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    if width <= height:
        shape = (size, int(size * height / width))
    else:
        shape = (int(size * width / height), size)
    if shape != image.size:
        image = image.resize(shape, Image.BILINEAR)
    left, top = round((shape[0] - size) / 2), round((shape[1] - size) / 2)
    crop = np.asarray(image.crop((left, top, left + size, top + size)))
    return np.ascontiguousarray(crop.transpose(2, 0, 1))


def _eight_bit(image: Image.Image) -> Image.Image:
    """``image`` with 16-bit greyscale scaled to 8 bits (mode ``L``); other modes as they are,
    but for 32-bit integer or float pixels, which are refused (see :func:`preprocess`)."""
    sixteen = image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG")
    if sixteen:
        values = np.asarray(image, dtype=np.uint32)  # PNG's "I" holds 0..65535 too
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    if image.mode in ("I", "F"):
        kind = "32-bit integer" if image.mode == "I" else "floating-point"
        raise ValueError(f"image: {kind} pixels have no fixed range; save the image with 8 or "
                         "16 bits a channel")
    return image


#: Most memory one image may take to decode and resize (bytes, per decoding process).
MAX_DECODE_BYTES = 2**29


def decode_bytes(width: int, height: int, size: int) -> int:
    """Bytes that decoding a ``width`` x ``height`` image and resizing it for :func:`preprocess`
    take at their peak: 4 a pixel decoded (RGBA, 16- or 32-bit greyscale), 3 a pixel converted
    to RGB, and 3 a pixel of the resized image, whose shorter side is ``size``.

    A 1 x 300,000 strip resized to 64 becomes 64 x 19,200,000: 7 x 300,000 + 3 x 64 x 19.2 M,
    3.4 GiB from 664 bytes of PNG.

    >>> decode_bytes(1, 300_000, 64)
    3688500000
    """
    short, long = sorted((width, height))
    return 7 * width * height + 3 * size * int(size * long / short)


def decode(data: bytes, size: int) -> np.ndarray:
    """Encoded image bytes (WebP, JPEG, PNG, ...) -> :func:`preprocess` -> uint8 (3, size, size).

    A cheap guard comes first: an image whose decoding and resizing would take more than
    :data:`MAX_DECODE_BYTES` (:func:`decode_bytes`; a "decompression bomb", or a thin strip
    whose shorter side would be scaled up to ``size``) is refused with ``ValueError`` before
    any pixel is decoded, and so is what PIL flags as a bomb. Raises whatever PIL raises for
    bytes it cannot decode.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(BytesIO(data)) as image:
            need = decode_bytes(*image.size, size)
            if need > MAX_DECODE_BYTES:
                raise ValueError(f"data: {image.size[0]} x {image.size[1]} pixels would take "
                                 f"{need / 2**20:.0f} MiB to decode and resize to {size}, more "
                                 f"than the {MAX_DECODE_BYTES / 2**20:.0f} MiB allowed an image")
            return preprocess(image, size)


def _reason(err: Exception) -> str:
    """Why a record could not be decoded, in a few words without memory addresses."""
    if isinstance(err, UnidentifiedImageError):
        return "not an image in a known format"
    return f"{type(err).__name__}: {err}"


def _key_text(key: bytes | str) -> str:
    """A record's key as printable text on one line: bytes and file names that are not valid
    text, or hold line breaks or other control characters, are escaped."""
    text = key if isinstance(key, str) else key.decode("ascii", "backslashreplace")
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _key_bytes(key: bytes | str) -> bytes:
    """A record's key as bytes (file names as the operating system stores them)."""
    return key if isinstance(key, bytes) else os.fsencode(key)


# ----------------------------------------------------------------------------------- prepare
def _decode_chunk(task: tuple[Any, int], reader, size: int):
    """Decode the chunk ``(first key, count)``: (count, uint8 (n, 3, S, S), skipped)."""
    first, count = task
    pixels = np.empty((count, 3, size, size), dtype=np.uint8)
    good, skipped = 0, []
    for key, data in reader.records(first, count):
        try:
            pixels[good] = decode(data, size)
            good += 1
        except Exception as err:  # noqa: BLE001 - any undecodable record is skipped and reported
            skipped.append((_key_text(key), _reason(err)))
    return count, pixels[:good], skipped


_worker: dict[str, Any] = {}


def _init_worker(reader_pickle: bytes, size: int, parent: int) -> None:
    """Pool initializer: a fresh reader per process (never an LMDB handle shared over fork).

    The worker dies with its parent (``parent``, the pid that started it), however the parent
    dies. A failure is kept and raised by the first task, so that it reaches the parent (an
    initializer that raises makes ``multiprocessing.Pool`` respawn workers for ever).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _die_with_parent(parent)
    try:
        _worker.update(reader=pickle.loads(reader_pickle), size=size)
    except Exception as err:  # noqa: BLE001 - re-raised in _decode_in_worker
        _worker.update(error=err)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent ends (``prctl(PR_SET_PDEATHSIG)``), so
    that a killed ``prepare`` leaves no workers behind; exit at once if the parent is already
    gone. Elsewhere, idle workers still end when their task queue closes."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:
        os._exit(1)


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


__all__ = ["ImageCache", "open_cache", "save_cache", "write_manifest", "to_unit_range",
           "file_sha256", "FolderReader", "open_source", "preprocess", "decode", "prepare",
           "CACHE_FORMAT", "IMAGES_FILE", "MANIFEST_FILE", "IMAGE_SUFFIXES"]
