"""Images per second of ``labkit.images.prepare`` against a reader written the way the authors' is.

The authors' ``main.py`` reads LSUN through ``torchvision.datasets.LSUN`` (one ``txn.get`` per item,
PIL decode, ``Scale``/``CenterCrop``/``ToTensor``/``Normalize``) in a ``DataLoader`` with 2 workers,
and does it again every epoch. ``prepare`` decodes every record once into a uint8 cache. Both read
the same generated LMDB of 256 px WebP records (like LSUN's) in this process; the reference is
checked to give the same pixels as the cache. Besides images per second (wall clock), it prints
images per CPU-second (this process and its workers), which depends less on other load on the
machine. Run from the repository root::

    .venv/bin/python benchmarks/prepare.py            # about a minute on two idle cores
    .venv/bin/python benchmarks/prepare.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import lmdb
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from labkit import images, lsun


class AuthorsStyleLSUN(Dataset):
    """``torchvision.datasets.LSUNClass`` with the authors' transforms, without torchvision.

    As torchvision: the environment is opened here (workers inherit it through fork), keys are
    listed once, and each item is one ``txn.get``, a PIL decode and the transforms
    ``Scale(size)`` (shorter side, bilinear), ``CenterCrop(size)``, ``ToTensor()`` and
    ``Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))``.
    """

    def __init__(self, path: Path, size: int):
        self.size = size
        self.env = lmdb.open(str(path), max_readers=1, readonly=True, lock=False,
                             readahead=False, meminit=False)
        with self.env.begin(write=False) as txn:
            self.keys = list(txn.cursor().iternext(keys=True, values=False))

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int):
        with self.env.begin(write=False) as txn:
            buffer = io.BytesIO(txn.get(self.keys[index]))
        image = Image.open(buffer).convert("RGB")
        width, height = image.size  # Scale: the shorter side becomes size
        if width < height:
            image = image.resize((self.size, int(self.size * height / width)), Image.BILINEAR)
        elif height < width:
            image = image.resize((int(self.size * width / height), self.size), Image.BILINEAR)
        elif width != self.size:
            image = image.resize((self.size, self.size), Image.BILINEAR)
        width, height = image.size  # CenterCrop
        top = int(round((height - self.size) / 2.0))
        left = int(round((width - self.size) / 2.0))
        image = image.crop((left, top, left + self.size, top + self.size))
        tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).contiguous()
        tensor = tensor.float().div(255)  # ToTensor
        return tensor.sub_(0.5).div_(0.5), 0  # Normalize


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that have ended."""
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def reference(path: Path, size: int, workers: int) -> tuple[float, float, int]:
    """One epoch through the authors' loader (batch 64, shuffled): (seconds, CPU s, images)."""
    started, cpu = time.perf_counter(), cpu_seconds()
    loader = DataLoader(AuthorsStyleLSUN(path, size), batch_size=64, shuffle=True,
                        num_workers=workers)
    n = sum(len(batch) for batch, _ in loader)
    del loader  # its workers end with the epoch (no persistent workers)
    return time.perf_counter() - started, cpu_seconds() - cpu, n


def labkit_prepare(path: Path, size: int, workers: int,
                   scratch: Path) -> tuple[float, float, int]:
    """``prepare`` into a fresh folder: (seconds, CPU s, images); the cache is then deleted."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    started, cpu = time.perf_counter(), cpu_seconds()
    cache = images.prepare(path, out / "cache", size=size, workers=workers, progress=False)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    for name in (images.IMAGES_FILE, images.MANIFEST_FILE):
        (out / "cache" / name).unlink()
    return seconds, cpu, cache.count


def check_same_pixels(path: Path, size: int, scratch: Path) -> float:
    """Largest |difference| between the reference's tensors and the cache, first 32 records."""
    cache = images.prepare(path, scratch / "check", size=size, limit=32, progress=False)
    dataset = AuthorsStyleLSUN(path, size)
    ours = images.to_unit_range(cache.images)
    theirs = torch.stack([dataset[i][0] for i in range(32)])
    return float((ours - theirs).abs().max())


def record_count(path: Path) -> int:
    with lsun.LmdbReader(path) as reader:
        return len(reader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500, help="records in the generated LMDB")
    parser.add_argument("--record-size", type=int, default=256,
                        help="shorter side of the generated pictures (LSUN: 256)")
    parser.add_argument("--size", type=int, default=64, help="image size of the cache")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts for prepare")
    parser.add_argument("--ref-workers", type=int, default=2,
                        help="DataLoader workers of the reference (the authors' default: 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lmdb", type=Path, default=None,
                        help="keep the generated LMDB here and reuse it on later runs")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 records, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats = 200, 1

    scratch = Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    path = args.lmdb or scratch / "lmdb"
    if not (path / "data.mdb").is_file() or record_count(path) != args.n:
        started = time.perf_counter()
        lsun.make_fake_lmdb(path, args.n, size=args.record_size, fmt="webp")
        print(f"generated {args.n} WebP records ({args.record_size} px shorter side) in "
              f"{time.perf_counter() - started:.1f} s")
    mb = (path / "data.mdb").stat().st_size / 2**20
    print(f"LMDB {path}: {args.n} records, {mb:.0f} MiB; cache size {args.size}; "
          f"{os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.2f}")
    print(f"reference vs cache pixels, max |diff| in [-1, 1] units: "
          f"{check_same_pixels(path, args.size, scratch):.2g}")

    names = ["reference", *(f"prepare w{w}" for w in args.workers)]
    rates: dict[str, list[float]] = {name: [] for name in names}
    per_cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            if name == "reference":
                seconds, cpu, n = reference(path, args.size, args.ref_workers)
            else:
                seconds, cpu, n = labkit_prepare(path, args.size,
                                                 int(name[len("prepare w"):]), scratch)
            rates[name].append(n / seconds)
            per_cpu[name].append(n / cpu)

    ref, ref_cpu = statistics.median(rates["reference"]), statistics.median(per_cpu["reference"])
    print(f"\n{'reader':<34} {'images/s':>9} {'x ref':>6} {'img/CPU-s':>10} {'x ref':>6}   "
          "runs (images/s)")
    for name in names:
        label = (f"reference, {args.ref_workers} DataLoader workers" if name == "reference"
                 else f"labkit prepare, {name[len('prepare w'):]} worker(s)")
        median, median_cpu = statistics.median(rates[name]), statistics.median(per_cpu[name])
        print(f"{label:<34} {median:9.0f} {median / ref:5.2f}x {median_cpu:10.0f} "
              f"{median_cpu / ref_cpu:5.2f}x   " + " ".join(f"{x:.0f}" for x in rates[name]))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
