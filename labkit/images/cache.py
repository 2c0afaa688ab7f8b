"""The one-time uint8 cache: its files and manifest, writing a small one, opening one (checked
against its manifest, with the command that makes or rebuilds it when it is missing or damaged),
and its pixels as training inputs in [-1, 1]."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit import _checks, rundir

if TYPE_CHECKING:
    import torch


CACHE_FORMAT = 1


IMAGES_FILE = "images.npy"


MANIFEST_FILE = "manifest.json"


PARTIAL_FILE = "images.partial.npy"


STATE_FILE = "prepare-state.json"


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
