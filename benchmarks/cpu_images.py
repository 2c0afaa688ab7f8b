"""CPU speed of the image training loop: generator iterations per second of ``Trainer``.

Two configurations on a synthetic uint8 cache (``labkit.datasets.synthetic_images``): the authors'
(64 x 64, DCGAN with ngf = ndf = 64, batch 64, nz 100, n_critic 5) and a tiny one (16 x 16,
ngf = ndf = 4, batch 8, n_critic 2, as the tests use). The 100-step warm-up is off, so every timed
iteration is 5 (or 2) critic steps plus one generator step; evaluation is not timed. Prints the
median over repeats and the load average, since other processes change CPU timings a lot.

    python benchmarks/cpu_images.py [--threads 1 2] [--iters 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from labkit.datasets import synthetic_images
from labkit.images import save_cache
from labkit.train import Trainer, image_config

CONFIGS = {
    "authors 64x64": dict(image_size=64, batch_size=64, n_critic=5),
    "tiny 16x16": dict(image_size=16, ngf=4, ndf=4, batch_size=8, n_critic=2),
}


def iterations_per_second(cache_dir: str, config: dict, iters: int, threads: int) -> float:
    trainer = Trainer(image_config(cache_dir, iters=10**9, critic_warmup=False, eval_samples=64,
                                   threads=threads, **config), progress=False)
    trainer.train_step()  # warm up allocators and kernels
    start = time.perf_counter()
    for _ in range(iters):
        trainer.train_step()
    return iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iters", type=int, default=5, help="timed iterations at 64 x 64 "
                                                              "(x 20 for the tiny config)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        caches = {}
        for name, config in CONFIGS.items():
            size = config["image_size"]
            caches[name] = save_cache(synthetic_images(512, size), os.path.join(tmp, str(size)),
                                      f"synthetic_images(512, {size})").path
        for threads in args.threads:
            for name, config in CONFIGS.items():
                iters = args.iters * (20 if config["image_size"] == 16 else 1)
                rates = [iterations_per_second(caches[name], config, iters, threads)
                         for _ in range(args.repeats)]
                load = os.getloadavg()[0]
                print(f"{name:>14}, {threads} thread(s): {statistics.median(rates):7.2f} it/s "
                      f"(median of {args.repeats}: {', '.join(f'{r:.2f}' for r in rates)}; "
                      f"load average {load:.2f})", flush=True)


if __name__ == "__main__":
    main()
