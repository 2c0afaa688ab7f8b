"""The bad-input catalogue, second round (issue 16): the data commands (``lsun prepare``,
``download``, ``train``), runs resumed by the other command, resource requests too large for the
machine, and the numeric entry points of labkit.ot, metrics, toys, widgets and images.

Every case is an input a careless or unlucky user could give. :func:`classify` sorts what
happens into the round-1 classes, plus two:

* ``clear``: the expected exception (or exit status), one line naming the parameter (on the
  command line its flag), and a refused command changes no file;
* ``correct``: an input that must be accepted gave the right result;
* ``unclear``: an error, but a traceback, several lines, the wrong name or a crash by signal;
* ``silent``: accepted without a word, or a wrong result;
* ``hang``: ran away: past the time limit, or stopped by the memory limit of the child
  process the memory cases run in (``resource.RLIMIT_AS``, :data:`LIMIT`), so that a guard
  that fails can never take the machine's memory.

The tests require ``clear`` of refusals and ``correct`` of the rest. ``python
tests/test_bad_inputs_2.py classify OUT.json`` writes every case's class and message; run
with ``PYTHONPATH`` at the code before the fixes it gave the "before" column of
``tests/BAD_INPUTS_2.md`` (``python tests/test_bad_inputs_2.py table BEFORE AFTER`` prints it).
The fault tests (real full disks, real signals, two processes at once) are in
``tests/test_faults_2.py``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from test_bad_inputs import one_line_naming, tree  # noqa: E402 - the round-1 rules

from labkit import images, lsun, metrics, ot, toys  # noqa: E402
from labkit.cli import main  # noqa: E402
from labkit.datasets import synthetic_images  # noqa: E402
from labkit.train import TrainConfig, image_config  # noqa: E402

#: Address-space limit of the child that runs the memory cases: labkit with torch takes about
#: 1 GiB of it; a guard that fails gets the rest, never the machine's memory.
LIMIT = 4 * 2**30
#: Seconds a case may take before it counts as a hang (in the child).
CASE_SECONDS = 60

TOY_TINY = ["--hidden", "8", "--depth", "1", "--batch-size", "16", "--eval-every", "2",
            "--eval-samples", "50", "--quiet"]
IMG_TINY = ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "8",
            "--n-critic", "2", "--no-critic-warmup", "--eval-every", "2", "--eval-samples", "16",
            "--quiet"]
TOY = ["toy", "--out", "{run}", *TOY_TINY]
LSUN = ["lsun", "train", "--data", "{cache}", "--out", "{run}", *IMG_TINY]
PREPARE = ["lsun", "prepare", "--src", "{lmdb}", "--out", "{run}", "--size", "16", "--quiet"]
XY = [[0.0, 0.0], [1.0, 1.0]]


# ------------------------------------------------------------------------------- the world
def png(width: int, height: int, depth: int, colour: int, rows: list[bytes]) -> bytes:
    """A PNG written by hand (so that 16-bit and extreme shapes need no encoder): ``colour``
    0 grey, 2 RGB; ``rows`` the raw scanlines."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    data = zlib.compress(b"".join(b"\0" + row for row in rows), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))


#: 16 x 16 grey at 16 bits, every pixel 32896 = 128 x 257: 128 in 8 bits.
GREY16 = png(16, 16, 16, 0, [np.full(16, 32896, ">u2").tobytes()] * 16)
#: 16 x 16 RGB at 16 bits, every channel 0x8080: 128 in 8 bits.
RGB16 = png(16, 16, 16, 2, [np.full(48, 0x8080, ">u2").tobytes()] * 16)
#: 1 x 300,000 pixels in 1,250 bytes: resized to 64, 64 x 19.2 M pixels (3.4 GiB).
STRIP = png(1, 300_000, 8, 2, [b"\x10\x20\x30"] * 300_000)


def picture(seed: int, size=(20, 16), fmt="PNG") -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt)
    return buffer.getvalue()


class World:
    """What the cases work on, made once (lazily: the child makes only what its cases use)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @functools.cached_property
    def cache(self) -> Path:
        """40 synthetic 16 x 16 images."""
        return images.save_cache(synthetic_images(40, 16, seed=3), self.root / "cache",
                                 "synthetic_images(40, 16, seed=3)").path

    @functools.cached_property
    def lmdb(self) -> Path:
        """12 WebP pictures (shorter side 32) and a corrupt record."""
        return lsun.make_fake_lmdb(self.root / "lmdb", 12, size=32, n_corrupt=1, seed=2)

    @functools.cached_property
    def toy_run(self) -> Path:
        run = self.root / "toy_run"
        assert main(["toy", "--out", str(run), "--iters", "2", *TOY_TINY]) == 0
        return run

    @functools.cached_property
    def lsun_run(self) -> Path:
        run = self.root / "lsun_run"
        assert main(["lsun", "train", "--data", str(self.cache), "--out", str(run), "--iters",
                     "2", *IMG_TINY]) == 0
        return run

    @functools.cached_property
    def truncated_lmdb(self) -> Path:
        """The first 60% of a real LMDB's data.mdb (an unfinished copy)."""
        folder = self.root / "truncated"
        folder.mkdir()
        data = (self.lmdb / "data.mdb").read_bytes()
        (folder / "data.mdb").write_bytes(data[:len(data) * 6 // 10])
        return folder

    def paths(self, tmp: Path) -> dict[str, str]:
        """The placeholders of the command lines: {run}, {tmp} and the world's paths (each
        made on first use)."""
        names = {"cache", "lmdb", "toy_run", "lsun_run", "truncated_lmdb"}

        class Lazy(dict):
            def __missing__(inner, key):
                if key in names:
                    return str(getattr(self, key))
                raise KeyError(key)

        return Lazy(run=str(tmp / "run"), tmp=str(tmp))


# --------------------------------------------------------------------------- case helpers
def files(**named: bytes | str):
    """A setup writing files into the run folder (``name=content``; ``/`` for sub-folders is
    written ``__``)."""
    def setup(world: World, run: Path) -> None:
        run.mkdir(parents=True, exist_ok=True)
        for name, content in named.items():
            path = run / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return setup


def copy_of(attribute: str):
    """A setup copying the world's ``attribute`` (a run, a cache) to the run folder."""
    def setup(world: World, run: Path) -> None:
        shutil.copytree(getattr(world, attribute), run)
    return setup


def edited_manifest(**changes):
    """A setup copying the world's cache, with ``changes`` to its manifest (None deletes)."""
    def setup(world: World, run: Path) -> None:
        shutil.copytree(world.cache, run)
        manifest = json.loads((run / "manifest.json").read_text())
        manifest.update(changes)
        manifest = {k: v for k, v in manifest.items() if v is not None}
        (run / "manifest.json").write_text(json.dumps(manifest))
    return setup


def unfinished_prepare(world: World, run: Path) -> None:
    """The world's LMDB prepared at size 32 into the run folder, stopped before the end."""
    state = {"format": 1, "source": str(world.lmdb.resolve()), "size": 32, "limit": None,
             "records_done": 0, "written": 0, "skipped": []}
    run.mkdir()
    (run / "prepare-state.json").write_text(json.dumps(state))


def finished_prepare(limit: int | None = None, tamper: bool = False):
    def setup(world: World, run: Path) -> None:
        images.prepare(world.lmdb, run, size=16, limit=limit, progress=False)
        if tamper:  # the same shape, other pixels: only the checksum tells
            array = np.load(run / "images.npy", mmap_mode="r+")
            array[0, 0, 0, 0] ^= 1
            array.flush()
    return setup


def garbage_lmdb(world: World, run: Path) -> None:
    run.mkdir()
    (run / "data.mdb").write_bytes(np.random.default_rng(0).bytes(65536))


def odd_names(world: World, run: Path) -> None:
    """Pictures whose names hold a line break, bytes that are not UTF-8, spaces, accents."""
    run.mkdir()
    for i, name in enumerate([b"new\nline.png", b"\xff\xfe.png", b"two words.png",
                              "\u00fcn\u00efcode.png".encode()]):
        with open(os.path.join(os.fsencode(run), name), "wb") as f:
            f.write(picture(i))


def folder_with(**named: bytes):
    """A setup making the folder {tmp}/pics holding ``named`` pictures."""
    def setup(world: World, run: Path) -> None:
        files(**named)(world, run.parent / "pics")
    return setup


def cache_pixel(run: Path, value: int) -> bool:
    cache = images.open_cache(run)
    return cache.count == 1 and bool((cache.images[0] == value).all())


def critic(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1)


def manifest_cache(tmp: Path, **changes) -> Path:
    """A copy of a tiny cache in ``tmp`` with ``changes`` to its manifest."""
    folder = images.save_cache(np.zeros((2, 3, 16, 16), np.uint8), tmp / "c", "zeros").path
    edited_manifest_in(folder, **changes)
    return folder


def edited_manifest_in(folder: Path, **changes) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items()
                                                      if v is not None}))


def lmdb_copy(tmp: Path, world: World, cut: float | None = None, empty: bool = False) -> Path:
    folder = tmp / "db"
    folder.mkdir()
    data = b"" if empty else (world.lmdb / "data.mdb").read_bytes()
    (folder / "data.mdb").write_bytes(data if cut is None else data[:int(len(data) * cut)])
    return folder


IMAGES = torch.zeros(2, 3, 16, 16)


# ---------------------------------------------------------------------------- the catalogue
# Library calls that must be refused: (id, call(world, tmp), exception type, name[, words that
# the message must hold, so that a false message does not pass as clear]).
REFUSED = [
    # labkit.ot
    ("ot-w1-distance-overflow", lambda w, t: ot.w1([[1e308, 0.0]], [[-1e308, 0.0]]),
     ValueError, "x"),
    ("ot-w1-1d-distance-overflow", lambda w, t: ot.w1_1d([1e308], [-1e308]), ValueError, "x"),
    ("ot-sliced-distance-overflow", lambda w, t: ot.sliced_w([[1e308, 1e308]], [[-1e308, 0]]),
     ValueError, "x"),
    ("ot-w1-max-iter-overflow", lambda w, t: ot.w1(XY, XY, max_iter=10**30), ValueError,
     "max_iter"),
    ("ot-w1-x-dict", lambda w, t: ot.w1({"a": 1.0}, XY), ValueError, "x"),
    ("ot-w1-x-set", lambda w, t: ot.w1({1.0, 2.0}, XY), ValueError, "x"),
    ("ot-w1-x-none", lambda w, t: ot.w1(None, XY), ValueError, "x"),
    ("ot-w1-x-3d", lambda w, t: ot.w1(np.zeros((2, 2, 2)), XY), ValueError, "x"),
    ("ot-w1-a-negative", lambda w, t: ot.w1(XY, XY, a=[1.5, -0.5]), ValueError, "a"),
    ("ot-w1-b-bool", lambda w, t: ot.w1(XY, XY, b=True), ValueError, "b"),
    ("ot-w1-max-bytes-nan", lambda w, t: ot.w1(XY, XY, max_bytes=math.nan), ValueError,
     "max_bytes"),
    ("ot-plan-y-string", lambda w, t: ot.optimal_transport(XY, "ab"), ValueError, "y"),
    ("ot-gradient-x-ragged", lambda w, t: ot.w1_gradient([[0.0, 0.0], [1.0]], XY), ValueError,
     "x"),
    ("ot-sliced-seed-negative", lambda w, t: ot.sliced_w(XY, XY, seed=-1), ValueError, "seed"),
    ("ot-sliced-projections-zero", lambda w, t: ot.sliced_w(XY, XY, n_projections=0),
     ValueError, "n_projections"),
    ("ot-sliced-directions-zero-row",
     lambda w, t: ot.sliced_w(XY, XY, directions=[[0.0, 0.0], [1.0, 0.0]]), ValueError,
     "directions"),
    ("ot-sliced-directions-3d-rows", lambda w, t: ot.sliced_w(XY, XY, directions=[[1, 0, 0]]),
     ValueError, "directions"),
    ("ot-1d-a-short", lambda w, t: ot.w1_1d([1.0, 2.0], [3.0], a=[1.0]), ValueError, "a"),
    # labkit.metrics
    ("metrics-lipschitz-numpy",
     lambda w, t: metrics.critic_lipschitz(critic, np.zeros((4, 2)), np.zeros((4, 2))),
     ValueError, "real"),
    ("metrics-lipschitz-int-tensor",
     lambda w, t: metrics.critic_lipschitz(critic, torch.zeros(4, 2, dtype=torch.long),
                                           torch.zeros(4, 2)), ValueError, "real"),
    ("metrics-lipschitz-nan",
     lambda w, t: metrics.critic_lipschitz(critic, torch.full((4, 2), math.nan),
                                           torch.zeros(4, 2)), ValueError, "real"),
    ("metrics-lipschitz-critic-string",
     lambda w, t: metrics.critic_lipschitz("f", torch.zeros(4, 2), torch.zeros(4, 2)),
     ValueError, "critic"),
    ("metrics-layer-norms-string", lambda w, t: metrics.layer_grad_norms("critic"), ValueError,
     "module"),
    ("metrics-swd-per-image-zero", lambda w, t: metrics.swd_images(IMAGES, IMAGES, per_image=0),
     ValueError, "per_image"),
    ("metrics-swd-images-4px",
     lambda w, t: metrics.swd_images(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)),
     ValueError, "real"),
    ("metrics-swd-nan",
     lambda w, t: metrics.swd_images(torch.full((2, 3, 16, 16), math.nan), IMAGES), ValueError,
     "real"),
    ("metrics-swd-numpy", lambda w, t: metrics.swd_images(IMAGES.numpy(), IMAGES.numpy()),
     ValueError, "real"),
    ("metrics-swd-seed-negative", lambda w, t: metrics.swd_images(IMAGES, IMAGES, seed=-1),
     ValueError, "seed"),
    ("metrics-swd-directions-zero",
     lambda w, t: metrics.swd_images(IMAGES, IMAGES, n_directions=0), ValueError,
     "n_directions"),
    ("metrics-swd-min-size-3", lambda w, t: metrics.swd_images(IMAGES, IMAGES, min_size=3),
     ValueError, "min_size"),
    ("metrics-coverage-radius-overflow",
     lambda w, t: metrics.mode_coverage(XY, [[0.0, 0.0]], std=1e308, threshold=10), ValueError,
     "std"),
    ("metrics-coverage-centers-3d",
     lambda w, t: metrics.mode_coverage(XY, np.zeros((1, 1, 2)), std=0.1), ValueError,
     "centers"),
    ("metrics-sliced-wasserstein-numpy",
     lambda w, t: metrics.sliced_wasserstein(np.zeros((2, 1)), np.zeros((2, 1)),
                                             torch.ones(1, 1)), ValueError, "a"),
    # labkit.toys
    ("toys-ring-radius-float32-overflow", lambda w, t: toys.ring(radius=1e39), ValueError,
     "radius"),
    ("toys-grid-spacing-float32-overflow", lambda w, t: toys.grid(spacing=2e38), ValueError,
     "spacing"),
    ("toys-mixture-centers-float32-overflow",
     lambda w, t: toys.GaussianMixture([[1e39, 0.0]], 0.1), ValueError, "centers", "float32"),
    ("toys-ring-std-float16-overflow",
     lambda w, t: toys.ring(std=1e5).sample(4, dtype=torch.float16), ValueError, "std"),
    ("toys-lines-theta-float32-overflow", lambda w, t: toys.parallel_lines(1e39, 3), ValueError,
     "theta"),
    ("toys-sample-dtype-int", lambda w, t: toys.ring().sample(4, dtype=torch.int64), ValueError,
     "dtype"),
    ("toys-sample-dtype-string", lambda w, t: toys.ring().sample(4, dtype="float32"),
     ValueError, "dtype"),
    ("toys-sample-generator-int", lambda w, t: toys.ring().sample(4, generator=0), ValueError,
     "generator"),
    ("toys-swiss-scale-overflow", lambda w, t: toys.SwissRoll(scale=1e38).sample(4),
     ValueError, "scale"),
    ("toys-normal-pdf-string", lambda w, t: toys.Normal1D(0.0, 1.0).pdf("abc"), ValueError, "x"),
    ("toys-normal-sample-overflow", lambda w, t: toys.Normal1D(0.0, 1e38).sample(4), ValueError,
     "std"),
    ("toys-lines-theta-int-tensor", lambda w, t: toys.parallel_lines(torch.tensor(1), 3),
     ValueError, "theta"),
    ("toys-swiss-n-float", lambda w, t: toys.swiss_roll(2.0), ValueError, "n"),
    ("toys-figure2-range-reversed", lambda w, t: toys.figure2_pair(x_range=(1.0, 0.0)),
     ValueError, "x_range"),
    ("toys-make-target-unknown-kwarg", lambda w, t: toys.make_target("ring", moons=3),
     ValueError, "kwargs"),
    # labkit.widgets
    ("widgets-readout-theta-float32-overflow",
     lambda w, t: widgets().example1_readout(1e39, 10), ValueError, "theta"),
    ("widgets-readout-n-beyond-solver", lambda w, t: widgets().example1_readout(0.5, 10**6),
     ValueError, "n"),
    ("widgets-samples-seed-2-64", lambda w, t: widgets().example1_samples(0.5, 3, seed=2**64),
     ValueError, "seed"),
    ("widgets-readout-html-strings",
     lambda w, t: widgets().readout_html({k: "abc" for k in widgets().KEYS}), ValueError,
     "values['W']"),
    ("widgets-readout-html-list", lambda w, t: widgets().readout_html([1, 2]), ValueError,
     "values"),
    ("widgets-clip-html-none", lambda w, t: widgets().clip_readout_html(None), ValueError,
     "values"),
    ("widgets-clip-model-n-beyond-solver",
     lambda w, t: widgets().ClipExplorerModel(n=100_000), ValueError, "n"),
    ("widgets-clip-model-seed-2-64", lambda w, t: widgets().ClipExplorerModel(n=8, seed=2**64),
     ValueError, "seed"),
    ("widgets-clip-explorer-model-string",
     lambda w, t: widgets().clip_explorer(model="model"), ValueError, "model"),
    ("widgets-snapshot-list", lambda w, t: widgets().snapshot_slider([], None, None),
     ValueError, "runs"),
    ("widgets-theta-explorer-n-float", lambda w, t: widgets().theta_explorer(0.5, 10.5),
     ValueError, "n"),
    # labkit.images, labkit.lsun
    ("images-manifest-count-bool",
     lambda w, t: images.open_cache(manifest_cache(t, count=True)), ValueError, "count"),
    ("images-manifest-size-string",
     lambda w, t: images.open_cache(manifest_cache(t, size="16")), ValueError, "size"),
    ("images-manifest-no-source",
     lambda w, t: images.open_cache(manifest_cache(t, source=None)), ValueError, "source"),
    ("images-manifest-skipped-string",
     lambda w, t: images.open_cache(manifest_cache(t, skipped="none")), ValueError, "skipped"),
    ("images-prepare-src-int", lambda w, t: images.prepare(123, t / "c", progress=False),
     ValueError, "src"),
    ("images-prepare-out-none", lambda w, t: images.prepare(w.lmdb, None, progress=False),
     ValueError, "out"),
    ("images-prepare-progress-string",
     lambda w, t: images.prepare(w.lmdb, t / "c", size=16, progress="yes"), ValueError,
     "progress"),
    ("images-prepare-workers-million",
     lambda w, t: images.prepare(w.lmdb, t / "c", size=16, workers=10**6, progress=False),
     ValueError, "workers"),
    ("images-preprocess-float-pixels",
     lambda w, t: images.preprocess(Image.fromarray(np.full((4, 4), 0.5, np.float32)), 16),
     ValueError, "image"),
    ("lsun-reader-garbage", lambda w, t: lsun.LmdbReader(garbage_folder(t)), ValueError, "src"),
    ("lsun-reader-empty-data-mdb", lambda w, t: lsun.LmdbReader(lmdb_copy(t, w, empty=True)),
     ValueError, "src"),
    ("lsun-download-url-no-scheme",
     lambda w, t: lsun.download("bedroom", t, url="notaurl", progress=False), ValueError, "url"),
    ("lsun-download-out-int", lambda w, t: lsun.download("bedroom", 5, progress=False),
     ValueError, "out"),
    ("lsun-fake-lmdb-png", lambda w, t: lsun.make_fake_lmdb(t / "f", 2, fmt="png"), ValueError,
     "fmt"),
    # labkit.train
    ("train-threads-100000", lambda w, t: TrainConfig(threads=100_000), ValueError, "threads"),
    ("train-hidden-million", lambda w, t: TrainConfig(hidden=10**6), ValueError, "hidden"),
    ("train-batch-billion", lambda w, t: TrainConfig(batch_size=10**9), ValueError,
     "batch_size"),
    ("train-depth-million", lambda w, t: TrainConfig(depth=10**6), ValueError, "depth"),
    ("train-n-critic-billion", lambda w, t: TrainConfig(n_critic=10**9), ValueError, "n_critic"),
    ("train-nz-billion", lambda w, t: TrainConfig(nz=10**9), ValueError, "nz"),
    ("train-ngf-million",
     lambda w, t: TrainConfig(target="images", data="x", generator="dcgan", ngf=10**6),
     ValueError, "ngf"),
    ("train-eval-beyond-memory",
     lambda w, t: TrainConfig(eval_samples=99_999, eval_max_gib=1e6), ValueError,
     "eval_samples"),
    ("train-image-config-epochs-nan", lambda w, t: image_config(w.cache, epochs=math.nan,
                                                                image_size=16, eval_samples=8),
     ValueError, "epochs"),
    ("train-image-config-epochs-zero", lambda w, t: image_config(w.cache, epochs=0,
                                                                 image_size=16, eval_samples=8),
     ValueError, "epochs"),
    ("train-image-config-epochs-string", lambda w, t: image_config(w.cache, epochs="25",
                                                                   image_size=16,
                                                                   eval_samples=8),
     ValueError, "epochs"),
]


def garbage_folder(tmp: Path) -> Path:
    """A folder whose data.mdb is 64 KiB of random bytes."""
    folder = tmp / "garbage"
    folder.mkdir()
    (folder / "data.mdb").write_bytes(np.random.default_rng(0).bytes(65536))
    return folder


def widgets():
    """labkit.widgets, imported when a case needs it (it loads ipywidgets)."""
    from labkit import widgets

    return widgets


def decoded(data: bytes) -> np.ndarray:
    return images.decode(data, 16)


# Library calls that must succeed: (id, call(world, tmp), check(result) -> bool).
CORRECT = [
    ("ot-sliced-huge-direction",  # only its direction counts: the projection on e1 is 3
     lambda w, t: ot.sliced_w([[0.0, 0.0]], [[3.0, 4.0]], directions=[[1e308, 0.0]]),
     lambda v: v == 3.0),
    ("ot-w1-integer-points", lambda w, t: ot.w1([[0, 0]], [[3, 4]]), lambda v: v == 5.0),
    ("ot-w1-float16-tensors",
     lambda w, t: ot.w1(torch.tensor([[0.0, 0.0]], dtype=torch.float16),
                        torch.tensor([[3.0, 4.0]], dtype=torch.float16)), lambda v: v == 5.0),
    ("metrics-coverage-int8-samples",
     lambda w, t: metrics.mode_coverage(np.array([[2, 0], [0, 9]], np.int8), [[2.0, 0.0]],
                                        std=0.1).as_dict(),
     lambda d: d["modes"] == 1 and d["hq_fraction"] == 0.5),
    ("toys-ring-float16-samples", lambda w, t: toys.ring().sample(3, dtype=torch.float16),
     lambda x: x.dtype == torch.float16 and tuple(x.shape) == (3, 2)
     and bool(torch.isfinite(x).all())),
    ("widgets-readout-kl-infinite",
     lambda w, t: widgets().readout_html({"W": 0.5, "JS": math.log(2), "KL": math.inf,
                                          "TV": 1.0, "W1_sample": 0.5}),
     lambda html: '<td data-key="KL">inf</td>' in html),
    ("images-16-bit-grey-png", lambda w, t: decoded(GREY16), lambda x: (x == 128).all()),
    ("images-16-bit-rgb-png", lambda w, t: decoded(RGB16), lambda x: (x == 128).all()),
    ("images-cmyk-jpeg",
     lambda w, t: decoded(_encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG")),
     lambda x: abs(int(x[0, 0, 0]) - 255) < 3 and int(x[1:, 0, 0].max()) < 3),
    ("images-palette-with-transparency",
     lambda w, t: decoded(_encoded(_palette_with_transparency(), "PNG")),
     lambda x: (x[:, 0, 0] == [0, 0, 255]).all()),
    ("images-one-pixel", lambda w, t: decoded(picture(5, (1, 1))),
     lambda x: x.shape == (3, 16, 16) and (x == x[:, :1, :1]).all()),
    ("train-seed-2-70", lambda w, t: TrainConfig(seed=2**70, iters=0).to_dict()["seed"],
     lambda s: s == 2**70),
]


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.info["transparency"] = 0
    return image


# Command lines that must be refused: (id, setup(world, run) or None, arguments, exit status,
# name[, words the message must hold]). {run}, {tmp} and the world's paths are filled in.
COMMANDS_REFUSED = [
    # lsun prepare
    ("prepare-out-holds-users-images-npy", files(**{"images.npy": b"my own data"}), PREPARE, 2,
     "--out"),
    ("prepare-out-holds-other-manifest", files(**{"manifest.json": '{"project": "mine"}'}),
     PREPARE, 2, "--out", "not a labkit image cache"),
    ("prepare-out-holds-notes", files(**{"notes.txt": "mine"}), PREPARE, 2, "--out"),
    ("prepare-out-is-a-toy-run", copy_of("toy_run"), PREPARE, 2, "--out"),
    ("prepare-out-is-the-src", files(**{"a.png": picture(0)}),
     ["lsun", "prepare", "--src", "{run}", "--out", "{run}", "--size", "16", "--quiet"], 2,
     "--out"),
    ("prepare-src-empty", None, ["lsun", "prepare", "--src", "", "--out", "{run}", "--quiet"], 2,
     "--src"),
    ("prepare-src-garbage-lmdb", garbage_lmdb,
     ["lsun", "prepare", "--src", "{run}", "--out", "{tmp}/c", "--quiet"], 2, "--src"),
    ("prepare-src-empty-data-mdb", files(**{"data.mdb": b""}),
     ["lsun", "prepare", "--src", "{run}", "--out", "{tmp}/c", "--quiet"], 2, "--src"),
    ("prepare-src-missing", None,
     ["lsun", "prepare", "--src", "{tmp}/nowhere", "--out", "{run}", "--quiet"], 2, "--src"),
    ("prepare-src-no-images", files(**{"notes.txt": "x"}),
     ["lsun", "prepare", "--src", "{run}", "--out", "{tmp}/c", "--quiet"], 2, "--src"),
    ("prepare-src-is-a-picture", files(**{"a.png": picture(0)}),
     ["lsun", "prepare", "--src", "{run}/a.png", "--out", "{tmp}/c", "--quiet"], 2, "--src"),
    ("prepare-workers-100000", None, [*PREPARE, "--workers", "100000"], 2, "--workers"),
    ("prepare-size-2-30", None, [*PREPARE[:-3], "--size", "1073741824", "--quiet"], 2,
     "--size"),
    ("prepare-unfinished-other-size", unfinished_prepare, PREPARE, 2, "--out",
     "python -m labkit lsun prepare --src"),
    ("prepare-finished-other-limit", finished_prepare(limit=5), PREPARE, 2, "--out"),
    ("prepare-state-not-ours", files(**{"prepare-state.json": "[]"}), PREPARE, 2, "--out"),
    ("prepare-finished-cache-tampered", finished_prepare(tamper=True), PREPARE, 2, "--out",
     "checksum"),
    # lsun download
    ("download-url-no-scheme", None,
     ["lsun", "download", "--category", "bedroom", "--out", "{run}", "--url", "notaurl"], 2,
     "--url"),
    ("download-url-misspelt-scheme", None,
     ["lsun", "download", "--category", "bedroom", "--out", "{run}", "--url", "htp://x/y.zip"],
     2, "--url"),
    ("download-out-target-is-a-file", files(bedroom_train_lmdb="x"),
     ["lsun", "download", "--category", "bedroom", "--out", "{run}", "--url", "http://x/y.zip"],
     2, "--out"),
    ("download-out-target-half-placed", files(bedroom_train_lmdb__lock_mdb="x"),
     ["lsun", "download", "--category", "bedroom", "--out", "{run}", "--url", "http://x/y.zip"],
     2, "--out"),
    ("download-category-capitalised", None,
     ["lsun", "download", "--category", "Bedroom", "--out", "{run}"], 2, "--category"),
    # lsun train and toy
    ("lsun-epochs-zero", None, [*LSUN, "--epochs", "0"], 2, "--epochs"),
    ("lsun-epochs-negative", None, [*LSUN, "--epochs", "-1"], 2, "--epochs"),
    ("lsun-epochs-nan", None, [*LSUN, "--epochs", "nan"], 2, "--epochs"),
    ("lsun-epochs-inf", None, [*LSUN, "--epochs", "inf"], 2, "--epochs"),
    ("lsun-epochs-and-iters", None, [*LSUN, "--epochs", "1", "--iters", "5"], 2, "--epochs"),
    ("lsun-resume-a-toy-run", copy_of("toy_run"),
     ["lsun", "train", "--out", "{run}", "--resume", "--iters", "4", "--quiet"], 2, "toy",
     "python -m labkit toy --out"),
    ("toy-resume-an-lsun-run", copy_of("lsun_run"),
     ["toy", "--out", "{run}", "--resume", "--iters", "4", "--quiet"], 2, "lsun train",
     "python -m labkit lsun train --out"),
    ("toy-out-an-lsun-run", copy_of("lsun_run"), TOY, 2, "--out",
     "python -m labkit lsun train --out"),
    ("lsun-out-a-toy-run", copy_of("toy_run"), LSUN, 2, "--out", "python -m labkit toy --out"),
    ("lsun-data-empty", None, ["lsun", "train", "--data", "", "--out", "{run}", *IMG_TINY], 2,
     "--data"),
    ("lsun-data-an-lmdb", None,
     ["lsun", "train", "--data", "{lmdb}", "--out", "{run}", *IMG_TINY], 2, "--data",
     "python -m labkit lsun prepare --src"),
    ("lsun-data-unfinished-prepare", unfinished_prepare,
     ["lsun", "train", "--data", "{run}", "--out", "{tmp}/r", "--iters", "1", *IMG_TINY], 2,
     "--data", "python -m labkit lsun prepare --src"),
    ("lsun-data-manifest-without-source", edited_manifest(source=None),
     ["lsun", "train", "--data", "{run}", "--out", "{tmp}/r", "--iters", "1", *IMG_TINY], 2,
     "--data"),
    ("lsun-eval-samples-beyond-the-cache", None,
     [*LSUN, "--iters", "1", "--eval-samples", "1000"], 2, "--eval-samples"),
    ("lsun-resume-epochs-behind", copy_of("lsun_run"),
     ["lsun", "train", "--out", "{run}", "--resume", "--epochs", "0.001", "--quiet"], 2,
     "--epochs"),
    ("lsun-resume-other-data", copy_of("lsun_run"),
     ["lsun", "train", "--out", "{run}", "--resume", "--iters", "4", "--data", "{lmdb}",
      "--quiet"], 2, "--data"),
    ("toy-resume-other-lr", copy_of("toy_run"),
     ["toy", "--out", "{run}", "--resume", "--iters", "4", "--lr", "0.1", "--quiet"], 2,
     "--lr"),
    ("toy-resume-finished-run-again", copy_of("toy_run"),
     ["toy", "--out", "{run}", "--resume", "--quiet"], 2, "--iters"),
]

# Command lines that must succeed: (id, setup or None, arguments, check(world, tmp, stdout)).
COMMANDS_CORRECT = [
    ("prepare-16-bit-grey", folder_with(**{"a.png": GREY16}),
     ["lsun", "prepare", "--src", "{tmp}/pics", "--out", "{run}", "--size", "16", "--quiet"],
     lambda w, t, out: cache_pixel(t / "run", 128)),
    ("prepare-odd-file-names", odd_names,
     ["lsun", "prepare", "--src", "{run}", "--out", "{tmp}/c", "--size", "16", "--quiet"],
     lambda w, t, out: images.open_cache(t / "c").count == 4 and len(out.splitlines()) == 1),
    ("prepare-into-an-empty-folder", files(),
     ["lsun", "prepare", "--src", "{lmdb}", "--out", "{run}", "--size", "16", "--quiet"],
     lambda w, t, out: images.open_cache(t / "run").count == 12),
    ("prepare-rerun-on-its-finished-cache", finished_prepare(), PREPARE,
     lambda w, t, out: images.open_cache(t / "run", verify=True).count == 12),
    ("prepare-cmyk-jpeg",
     folder_with(**{"a.jpg": _encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG")}),
     ["lsun", "prepare", "--src", "{tmp}/pics", "--out", "{run}", "--size", "16", "--quiet"],
     lambda w, t, out: int(images.open_cache(t / "run").images[0, 0].min()) > 250),
    ("lsun-resume-with-more-epochs", None, [],  # made by run_resume_with_more_epochs
     lambda w, t, out: json.loads((t / "run" / "metrics.json").read_text())["iteration"] == 4),
    ("lsun-epochs-tiny", None, [*LSUN, "--epochs", "1e-9"],
     lambda w, t, out: json.loads((t / "run" / "config.json").read_text())["iters"] == 1),
    ("toy-out-with-accents-and-spaces", None,
     ["toy", "--out", "{tmp}/r\u00fcn two", "--iters", "1", *TOY_TINY],
     lambda w, t, out: (t / "r\u00fcn two" / "checkpoint.pt").is_file()),
]

# Cases that could take the machine's memory (or crash) without their guard: they run in a
# child process under RLIMIT_AS = LIMIT. (id, call(world, tmp) or a command line, exception
# type or exit status, name); the child classifies them as the lists above.
GUARDED = [
    ("ot-sliced-projections-billion",
     lambda w, t: ot.sliced_w(XY, XY, n_projections=10**9), ValueError, "n_projections"),
    ("ot-w1-budget-beyond-memory",
     lambda w, t: ot.w1(np.zeros((60_000, 2)), np.ones((60_000, 2)), max_bytes=1e15),
     ValueError, "x"),
    ("toys-ring-billion-modes", lambda w, t: toys.ring(modes=10**9), ValueError, "modes"),
    ("toys-grid-side-100000", lambda w, t: toys.grid(side=10**5), ValueError, "side"),
    ("toys-sample-ten-billion", lambda w, t: toys.ring().sample(10**10), ValueError, "n"),
    ("toys-lines-ten-billion", lambda w, t: toys.parallel_lines(0.5, 10**10), ValueError, "n"),
    ("toys-figure2-grid-1e11", lambda w, t: toys.figure2_pair().grid(10**11), ValueError,
     "n_points"),
    ("metrics-swd-per-image-billion",
     lambda w, t: metrics.swd_images(IMAGES, IMAGES, per_image=10**9), ValueError, "per_image"),
    ("metrics-coverage-1e5-by-1e5",
     lambda w, t: metrics.mode_coverage(np.zeros((10**5, 2)), np.ones((10**5, 2)), std=0.1),
     ValueError, "samples"),
    ("widgets-clip-grid-100000", lambda w, t: widgets().ClipExplorerModel(n=8, grid=10**5),
     ValueError, "grid"),
    ("widgets-clip-hidden-million", lambda w, t: widgets().ClipExplorerModel(n=8, hidden=10**6),
     ValueError, "hidden"),
    ("images-decode-1-by-300000-png", lambda w, t: images.decode(STRIP, 64), ValueError, "data"),
    ("lsun-reader-truncated-lmdb",
     lambda w, t: list(lsun.LmdbReader(w.truncated_lmdb).records()), ValueError, "src"),
    ("prepare-truncated-lmdb", None,
     ["lsun", "prepare", "--src", "{truncated_lmdb}", "--out", "{run}", "--quiet"], 2, "--src"),
    ("toy-threads-100000", None, [*TOY, "--iters", "1", "--threads", "100000"], 2, "--threads"),
    ("lsun-threads-100000", None, [*LSUN, "--iters", "1", "--threads", "100000"], 2,
     "--threads"),
    ("toy-hidden-million", None, [*TOY, "--iters", "1", "--depth", "3", "--hidden", "1000000"],
     2, "--hidden"),
    ("toy-batch-billion", None, [*TOY, "--iters", "1", "--batch-size", "1000000000"], 2,
     "--batch-size"),
    ("toy-n-critic-billion", None, [*TOY, "--iters", "1", "--n-critic", "1000000000"], 2,
     "--n-critic"),
    ("toy-depth-million", None, [*TOY, "--iters", "1", "--hidden", "512", "--depth", "1000000"],
     2, "--depth"),
    ("toy-nz-billion", None, [*TOY, "--iters", "1", "--nz", "1000000000"], 2, "--nz"),
    ("toy-eval-beyond-memory", None,
     [*TOY, "--iters", "1", "--eval-samples", "60000", "--eval-max-gib", "1000"], 2,
     "--eval-samples"),
    ("toy-256-seeds-of-4096", None,
     [*TOY, "--iters", "1", "--seeds", "0-255", "--depth", "3", "--hidden", "4096"], 2,
     "--seeds"),
    ("lsun-batch-billion", None, [*LSUN, "--iters", "1", "--batch-size", "1000000000"], 2,
     "--batch-size"),
    ("lsun-mlp-hidden-million", None,
     [*LSUN, "--iters", "1", "--generator", "mlp", "--hidden", "1000000"], 2, "--hidden"),
    ("lsun-ngf-million", None, [*LSUN, "--iters", "1", "--ngf", "1000000"], 2, "--ngf"),
    ("prepare-1-by-300000-png", folder_with(**{"a.png": STRIP, "b.png": picture(1)}),
     ["lsun", "prepare", "--src", "{tmp}/pics", "--out", "{run}", "--size", "64", "--quiet"],
     0, "skipped a.png: ValueError: data: 1 x 300000 pixels"),
]


# --------------------------------------------------------------------------- classification
class Timeout(BaseException):
    """Raised by the alarm of a case that ran past :data:`CASE_SECONDS` (in the child)."""


def _memory(err: BaseException) -> bool:
    text = str(err)
    return isinstance(err, MemoryError) or "alloc" in text or "memory" in text.lower() and (
        "not enough" in text or "can't" in text or "cannot" in text)


def run_main(args: list[str]) -> tuple[int | str, str, str]:
    """``python -m labkit ARGS`` in this process: (exit status, stdout, stderr); a traceback
    escaping ``main`` comes back as the status ``"raised"`` (or ``"memory"``)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as stop:
            code = stop.code
        except Timeout:
            raise
        except BaseException as exc:  # noqa: BLE001 - classifying whatever comes out
            code = "memory" if _memory(exc) else "raised"
            err.write(f"Traceback ...\n{type(exc).__name__}: {exc}\n")
    return code, out.getvalue(), err.getvalue()


def library_outcome(call, error, name, must=None) -> tuple[str, str]:
    try:
        result = call()
    except Timeout:
        raise
    except Exception as err:  # noqa: BLE001
        message = f"{type(err).__name__}: {err}"
        if _memory(err):
            return "hang", message
        ok = isinstance(err, error) and one_line_naming(str(err), name) and (
            must is None or must in str(err))
        return ("clear" if ok else "unclear"), message
    return "silent", f"returned {str(result)[:80]!r}"


def correct_outcome(call, check) -> tuple[str, str]:
    try:
        result = call()
    except Timeout:
        raise
    except Exception as err:  # noqa: BLE001
        return ("hang" if _memory(err) else "unclear"), f"{type(err).__name__}: {err}"
    ok = bool(check(result))
    return ("correct" if ok else "silent"), f"returned {str(result)[:80]!r}"


def command_outcome(args, status, name, must=None) -> tuple[str, str]:
    code, out, err = run_main(args)
    if code == "memory" or "MemoryError" in out + err:
        return "hang", out + err
    if code == 0 and status != 0:
        return "silent", err
    if status == 0:  # must succeed and say ``name`` on stdout
        ok = code == 0 and name in out and "Traceback" not in err
        return ("correct" if ok else "unclear"), f"status {code}: {out}{err}"
    ok = code == status and err.startswith("error: ") and one_line_naming(err, name) and (
        must is None or must in err)
    return ("clear" if ok else "unclear"), f"status {code}: {err}"


def setup_run(world: World, tmp: Path, setup) -> dict[str, str]:
    if setup is not None:
        setup(world, tmp / "run")
    return world.paths(tmp)


def fill(args: list[str], paths) -> list[str]:
    return [a.format_map(paths) for a in args]


def classify_refused(case, world: World, tmp: Path) -> tuple[str, str]:
    _, call, error, name, *must = case
    return library_outcome(lambda: call(world, tmp), error, name, *must)


def classify_correct(case, world: World, tmp: Path) -> tuple[str, str]:
    _, call, check = case
    return correct_outcome(lambda: call(world, tmp), check)


def classify_command(case, world: World, tmp: Path) -> tuple[str, str]:
    """A refused command line: clear only if, besides the one line, no file changed."""
    _, setup, args, status, name, *must = case
    paths = setup_run(world, tmp, setup)
    args = fill(args, paths)
    before = tree(tmp)
    kind, message = command_outcome(args, status, name, *must)
    if kind == "clear" and tree(tmp) != before:
        return "unclear", message + " (and it changed files)"
    return kind, message


def classify_command_correct(case, world: World, tmp: Path) -> tuple[str, str]:
    key, setup, args, check = case
    paths = setup_run(world, tmp, setup)
    if key == "lsun-resume-with-more-epochs":
        return run_resume_with_more_epochs(world, tmp, check)
    code, out, err = run_main(fill(args, paths))
    if code == "memory":
        return "hang", err
    if code != 0:
        return "unclear", f"status {code}: {err}"
    try:
        ok = check(world, tmp, out)
    except Exception as exc:  # noqa: BLE001
        return "silent", f"{type(exc).__name__}: {exc}"
    return ("correct" if ok else "silent"), out + err


def run_resume_with_more_epochs(world: World, tmp: Path, check) -> tuple[str, str]:
    """One epoch of the 24 training images (40 less 16 held out) at batch 8 and n_critic 2:
    ceil(24 / 16) = 2 iterations; then ``--resume --epochs 2.5``: ceil(2.5 x 24 / 16) = 4."""
    run = str(tmp / "run")
    code, _, err = run_main(["lsun", "train", "--data", str(world.cache), "--out", run,
                             "--epochs", "1", *IMG_TINY])
    if code != 0:
        return "unclear", f"first run: status {code}: {err}"
    code, out, err = run_main(["lsun", "train", "--out", run, "--resume", "--epochs", "2.5",
                               "--quiet"])
    if code != 0:
        return "unclear", f"status {code}: {err}"
    return ("correct" if check(world, tmp, out) else "silent"), out


def classify_guarded(case, world: World, tmp: Path) -> tuple[str, str]:
    key, call_or_setup, args_or_error, status_or_name, *rest = case
    if isinstance(args_or_error, list):  # a command line
        name = rest[0]
        paths = setup_run(world, tmp, call_or_setup)
        return command_outcome(fill(args_or_error, paths), status_or_name, name)
    return library_outcome(lambda: call_or_setup(world, tmp), args_or_error, status_or_name,
                           *rest)


KINDS = {"refused": (REFUSED, classify_refused), "correct": (CORRECT, classify_correct),
         "commands": (COMMANDS_REFUSED, classify_command),
         "commands_correct": (COMMANDS_CORRECT, classify_command_correct),
         "guarded": (GUARDED, classify_guarded)}
CASES = {case[0]: (kind, case) for kind, (cases, _) in KINDS.items() for case in cases}


def classify(key: str, world: World, tmp: Path) -> tuple[str, str]:
    kind, case = CASES[key]
    return KINDS[kind][1](case, world, tmp)


# ------------------------------------------------------------------ the child for GUARDED
def _alarm(signum, frame):
    raise Timeout


def _warm_up() -> None:
    """Load, before the memory limit is set, what loads on first use: MKL and oneDNN (a matmul,
    a convolution and its gradient), matplotlib and ipywidgets. Under the limit their loading
    would fail and kill the child (``Intel oneMKL FATAL ERROR: Cannot load ...``)."""
    import matplotlib

    matplotlib.use("Agg")
    from labkit import plots, widgets  # noqa: F401

    np.ones((8, 8)) @ np.ones((8, 8))
    x = torch.ones(2, 3, 16, 16, requires_grad=True)
    (torch.nn.functional.conv2d(x, torch.ones(4, 3, 4, 4)).sum()
     + (x.flatten(1) @ torch.ones(768, 2)).sum()).backward()
    torch.nn.functional.conv_transpose2d(torch.ones(2, 4, 4, 4), torch.ones(4, 3, 4, 4), stride=2)


def child(keys: list[str]) -> None:
    """Classify ``keys`` under the memory limit, one JSON line each as soon as it is known."""
    with tempfile.TemporaryDirectory() as root:
        world = World(Path(root) / "world")
        world.root.mkdir()
        os.chdir(root)
        _warm_up()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, hard))
        signal.signal(signal.SIGALRM, _alarm)
        for i, key in enumerate(keys):
            tmp = Path(root) / f"case{i}"
            tmp.mkdir()
            signal.alarm(CASE_SECONDS)
            try:
                kind, message = classify(key, world, tmp)
            except Timeout:
                kind, message = "hang", f"still running after {CASE_SECONDS} s"
            finally:
                signal.alarm(0)
            print(json.dumps({"id": key, "kind": kind, "message": message[:300]}), flush=True)


def run_in_child(keys: list[str]) -> dict[str, tuple[str, str]]:
    """Classify ``keys`` in child processes under :data:`LIMIT`; a child that dies (a crash
    by signal) marks its current case ``unclear`` and a new child takes the rest."""
    results: dict[str, tuple[str, str]] = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(images.__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    todo = list(keys)
    while todo:
        proc = subprocess.run([sys.executable, __file__, "child", *todo], env=env, text=True,
                              capture_output=True, timeout=CASE_SECONDS * len(todo) + 120,
                              cwd=tempfile.gettempdir())  # (MKL fails to load in a deleted cwd)
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                results[row["id"]] = (row["kind"], row["message"])
        todo = [k for k in todo if k not in results]
        if todo:  # the child died in todo[0]
            how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0 else
                   f"exit status {proc.returncode}")
            results[todo.pop(0)] = ("unclear", f"the process died: {how}; "
                                               f"{proc.stderr.strip()[-200:]}")
    return results


# ----------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return World(tmp_path_factory.mktemp("world"))


def expected(kind: str) -> str:
    return "correct" if kind in ("correct", "commands_correct") else "clear"


@pytest.mark.parametrize("key", [k for k, (kind, _) in CASES.items() if kind != "guarded"])
def test_catalogue(key, world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kind, _ = CASES[key]
    outcome, message = classify(key, world, tmp_path)
    assert outcome == expected(kind), message
    assert "weights_only" not in message


def test_memory_guards_refuse_in_one_line_under_a_memory_limit():
    """Every GUARDED case, in a child under RLIMIT_AS = 4 GiB: refused in one line (or, for a
    picture too large to decode, skipped with its reason) before anything is allocated."""
    results = run_in_child([case[0] for case in GUARDED])
    wrong = {k: v for k, v in results.items()
             if v[0] != ("correct" if CASES[k][1][3] == 0 else "clear")}
    assert not wrong, wrong


# ------------------------------------------------------------------------- classify, table
def classify_all() -> dict[str, dict[str, str]]:
    """Every case's class and message (the GUARDED ones in the child)."""
    results = {}
    with tempfile.TemporaryDirectory() as root:
        world = World(Path(root) / "world")
        world.root.mkdir()
        for i, (key, (kind, _)) in enumerate(CASES.items()):
            if kind == "guarded":
                continue
            tmp = Path(root) / f"case{i}"
            tmp.mkdir()
            os.chdir(tmp)
            outcome, message = classify(key, world, tmp)
            results[key] = {"kind": outcome, "message": message[:300]}
    guarded = run_in_child([case[0] for case in GUARDED])
    results.update({k: {"kind": v[0], "message": v[1]} for k, v in guarded.items()})
    return {key: results[key] for key in CASES}


def _short(message: str) -> str:
    """A message on one table cell: one line, temporary paths elided, at most 110 characters."""
    text = re.sub(r"/tmp/[\w./-]*?/(case\d+|world)/", ".../", " ".join(message.split()))
    text = text.replace("|", "\\|").replace("`", "'")
    return text if len(text) <= 110 else text[:107] + "..."


def table(before: dict, after: dict) -> str:
    """The markdown table of the catalogue, before and after, with the counts."""
    classes = ("clear", "correct", "unclear", "silent", "hang")
    lines = ["| case | before | after | what happened before |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {before[k]['kind']} | {after[k]['kind']} | "
              f"{_short(before[k]['message'])} |" for k in CASES]
    counts = ["", "| | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for label, data in (("before", before), ("after", after)):
        kinds = [data[k]["kind"] for k in CASES]
        counts.append(f"| {label} | " + " | ".join(str(kinds.count(c)) for c in classes) + " |")
    return "\n".join(counts[1:] + [""] + lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1] == "child":
        child(sys.argv[2:])
    elif sys.argv[1] == "classify":  # classify OUT.json
        Path(sys.argv[2]).write_text(json.dumps(classify_all(), indent=1) + "\n")
    elif sys.argv[1] == "table":
        print(table(*(json.loads(Path(p).read_text()) for p in sys.argv[2:4])), end="")
