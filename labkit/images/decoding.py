"""Sources and decoding: a folder of images read like an LMDB, the source behind a path, and
each record decoded and preprocessed as in the authors' code (or skipped, with the reason)."""

from __future__ import annotations

import bisect
import os
import warnings
from collections.abc import Iterable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from labkit import _checks

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


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
