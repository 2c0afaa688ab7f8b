"""Image data for the image lab: the one-time uint8 cache that every image run reads.

Decoding JPEG/WebP is what starves the authors' recipe (PAPER.md, "Speed of the authors' recipe"),
so images are decoded once, preprocessed as in the authors' code (shorter side resized to ``size``,
centre crop), and stored as one uint8 array that ``numpy.load(..., mmap_mode="r")`` opens without
reading it into memory. A cache is a folder::

    images.npy     uint8, shape (N, 3, size, size), C order
    manifest.json  {"format": 1, "source": ..., "count": N, "size": size, "sha256": ...,
                    "skipped": [[key, reason], ...], "labkit": version}

Pixels become training inputs in [-1, 1] by ``x = pixel / 127.5 - 1`` (:func:`to_unit_range`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

CACHE_FORMAT = 1
IMAGES_FILE = "images.npy"
MANIFEST_FILE = "manifest.json"


def check_image_size(size: Any, name: str = "size") -> int:
    """Return ``size`` if it is a power of two >= 16 (what the DCGAN models accept).

    >>> check_image_size(64)
    64
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise ValueError(f"{name}={size!r} is not allowed; it must be a power of two >= 16")
    size = int(size)
    if size < 16 or size & (size - 1):
        raise ValueError(f"{name}={size!r} is not allowed; it must be a power of two >= 16")
    return size


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


def write_manifest(path: str | os.PathLike, source: str,
                   skipped: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """Write ``manifest.json`` for the ``images.npy`` already complete in folder ``path``.

    The manifest is written last and atomically, so a folder with a manifest holds a finished
    cache; its checksum covers ``images.npy`` byte for byte.
    """
    import labkit

    folder = Path(path)
    images = np.load(folder / IMAGES_FILE, mmap_mode="r")
    manifest = {"format": CACHE_FORMAT, "source": str(source), "count": int(images.shape[0]),
                "size": int(images.shape[-1]), "sha256": file_sha256(folder / IMAGES_FILE),
                "skipped": [list(s) for s in skipped], "labkit": labkit.__version__}
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST_FILE}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        os.replace(tmp, folder / MANIFEST_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    check_image_size(images.shape[-1], "images size")
    if images.shape[-2] != images.shape[-1]:
        raise ValueError(f"images: expected square images, got {images.shape[-2:]}")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / IMAGES_FILE, np.ascontiguousarray(images))
    write_manifest(folder, source, skipped)
    return open_cache(folder)


def open_cache(path: str | os.PathLike, size: int | None = None,
               verify: bool = False) -> ImageCache:
    """Open a cache folder read-only (memmap), checking it against its manifest.

    Parameters
    ----------
    path : folder holding ``images.npy`` and ``manifest.json``
    size : the image size the run expects; a cache made at another size is refused
    verify : also recompute the SHA-256 of ``images.npy`` (reads the whole file)

    Raises
    ------
    FileNotFoundError
        No such folder, or a file of the cache is missing (an unfinished ``prepare``).
    ValueError
        A damaged manifest, a manifest that does not match the array, or another ``size``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"cache: no folder at {str(folder)!r}")
    for name in (IMAGES_FILE, MANIFEST_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"cache: {str(folder / name)!r} is missing; "
                                    "run `python -m labkit lsun prepare` to (re)build the cache")
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
            raise ValueError("not a labkit cache manifest")
        count, cache_size = int(manifest["count"]), int(manifest["size"])
        images = np.load(folder / IMAGES_FILE, mmap_mode="r")
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ValueError(f"cache: {str(folder)!r} is damaged ({err}); rebuild it with "
                         "`python -m labkit lsun prepare`") from None
    if images.dtype != np.uint8 or images.shape != (count, 3, cache_size, cache_size):
        raise ValueError(f"cache: {str(folder / IMAGES_FILE)!r} holds {images.dtype} "
                         f"{images.shape} but the manifest says uint8 ({count}, 3, "
                         f"{cache_size}, {cache_size}); rebuild it")
    if size is not None and check_image_size(size) != cache_size:
        raise ValueError(f"size={size} does not match the cache at {str(folder)!r}, made at "
                         f"size {cache_size}; prepare a cache with --size {size}")
    if verify and file_sha256(folder / IMAGES_FILE) != manifest.get("sha256"):
        raise ValueError(f"cache: {str(folder / IMAGES_FILE)!r} does not match the checksum "
                         "in its manifest; rebuild it")
    return ImageCache(folder, images, manifest)


def to_unit_range(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 pixels (..., 3, S, S) -> float32 in [-1, 1]: ``x = p / 127.5 - 1``.

    >>> to_unit_range(np.array([0, 255], dtype=np.uint8)).tolist()
    [-1.0, 1.0]
    """
    return torch.tensor(np.asarray(pixels), dtype=torch.float32).div_(127.5).sub_(1.0)


__all__ = ["ImageCache", "open_cache", "save_cache", "write_manifest", "check_image_size",
           "to_unit_range", "file_sha256", "CACHE_FORMAT", "IMAGES_FILE", "MANIFEST_FILE"]
