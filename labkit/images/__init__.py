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

The package, one concept a module: :mod:`labkit.images.cache` (the cache's files, opening one),
:mod:`labkit.images.decoding` (sources, the authors' preprocessing, decoding) and
:mod:`labkit.images.preparing` (:func:`prepare`).
"""

from labkit.images.cache import (
    CACHE_FORMAT,
    IMAGES_FILE,
    MANIFEST_FILE,
    PARTIAL_FILE,
    STATE_FILE,
    ImageCache,
    file_sha256,
    open_cache,
    save_cache,
    to_unit_range,
    write_manifest,
)
from labkit.images.decoding import (
    IMAGE_SUFFIXES,
    MAX_DECODE_BYTES,
    FolderReader,
    decode,
    decode_bytes,
    open_source,
    preprocess,
)
from labkit.images.preparing import CHUNK_SIZE, max_workers, prepare

__all__ = ["ImageCache", "open_cache", "save_cache", "write_manifest", "to_unit_range",
           "file_sha256", "FolderReader", "open_source", "preprocess", "decode", "prepare",
           "CACHE_FORMAT", "IMAGES_FILE", "MANIFEST_FILE", "IMAGE_SUFFIXES", "PARTIAL_FILE",
           "STATE_FILE", "CHUNK_SIZE", "MAX_DECODE_BYTES", "decode_bytes", "max_workers"]
