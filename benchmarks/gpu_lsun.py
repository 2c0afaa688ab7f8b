"""GPU speed of LSUN training: the authors' recipe against labkit's plain loop and its fast path.

One process, one GPU, on a generated LSUN-format LMDB (``labkit.lsun.make_fake_lmdb``: synthetic
WebP pictures, not photographs). Measures, in generator iterations per second (5 critic steps +
1 generator step, batch 64, 64 x 64, DCGAN ngf = ndf = 64, RMSprop, clipping; the 100-step
warm-up off so that every timed iteration is alike):

  (a) reference: a loop written the way the authors' ``main.py`` is (an LMDB dataset decoding
      every item with their transforms, a DataLoader with their 2 workers, a per-parameter
      ``clamp_`` loop, separate real and fake backward passes, ``.item()`` every iteration),
      end to end, and with the data already on the device;
  (b) labkit's plain loop (``Trainer``, ``fast=False``) on the prepared cache;
  (c) labkit's fast path (``Trainer``, ``fast=True``: cache on the GPU, CUDA graphs) end to end
      from the prepared cache, fp32, and bf16 with channels_last.

It also reports the FLOPs of one generator iteration (``FlopCounterMode``; a first count,
docs/paper_facts.md: 541.5 GFLOP),
achieved TFLOP/s, peak GPU memory, the cache preparation rate (``labkit.images.prepare``), and
the projected time of the paper's 25-epoch schedule on LSUN bedrooms. Results go to ``--out`` as
JSON. ``--smoke`` runs everything tiny on the CPU (16 x 16; bf16 and graphs skipped)::

    python benchmarks/gpu_lsun.py --out gpu_lsun.json                 # on a GPU machine
    python benchmarks/gpu_lsun.py --smoke --out /tmp/smoke.json       # CPU, a few seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labkit import images, lsun
from labkit.datasets import iters_for_epochs
from labkit.train import Trainer, build_models, critic_steps, image_config
from labkit.train.fast import FastStep

#: The first count of one generator iteration's FLOPs, authors' config (docs/paper_facts.md).
PAPER_GFLOP = 541.5
#: LSUN bedrooms, and the paper's schedule.
LSUN_BEDROOMS, EPOCHS = 3_033_042, 25
GOALS = {"fast_vs_reference_on_device": 4.0, "fast_it_per_s": 130.0,
         "fast_vs_reference_end_to_end": 40.0, "full_schedule_minutes": 35.0,
         "prepare_images_per_s": 4000.0}


# ------------------------------------------------------------------ (a) the authors' recipe
class LmdbImages(torch.utils.data.Dataset):
    """torchvision's ``LSUNClass`` as the authors used it: every item read from the LMDB and
    decoded with PIL, then ``Scale(size)``, ``CenterCrop(size)``, ``ToTensor()``,
    ``Normalize((0.5,) * 3, (0.5,) * 3)``. One LMDB environment per worker."""

    def __init__(self, path: Path, size: int) -> None:
        with lsun.LmdbReader(path) as reader:
            self.keys = list(reader.keys())
        self.path, self.size, self.env = path, size, None

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        import lmdb

        if self.env is None:
            self.env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False,
                                 meminit=False, max_readers=1)
        with self.env.begin(write=False) as txn:
            data = txn.get(self.keys[index])
        image = Image.open(io.BytesIO(data)).convert("RGB")
        pixels = images.preprocess(image, self.size)  # Scale + CenterCrop, as the authors'
        x = torch.from_numpy(pixels).float().div_(255)  # ToTensor
        return x.sub_(0.5).div_(0.5), 0  # Normalize


def loader_batches(lmdb_path: Path, size: int, batch: int, workers: int,
                   device: torch.device) -> Iterator[torch.Tensor]:
    """Batches from the authors' DataLoader (shuffled, ``workers`` processes), endlessly."""
    loader = torch.utils.data.DataLoader(LmdbImages(lmdb_path, size), batch_size=batch,
                                         shuffle=True, num_workers=workers, drop_last=True)
    while True:
        for x, _ in loader:
            yield x.to(device)


def device_batches(pixels: torch.Tensor, batch: int) -> Iterator[torch.Tensor]:
    """Batches drawn from uint8 images already on the device, endlessly."""
    while True:
        rows = torch.randint(len(pixels), (batch,), device=pixels.device)
        yield pixels[rows].float().div_(127.5).sub_(1.0)


def reference_loop(config, batches: Iterator[torch.Tensor], iters: int,
                   sync: Callable[[], None]) -> float:
    """The authors' training loop (``main.py``, ported to current PyTorch); returns seconds for
    ``iters`` generator iterations after one untimed iteration."""
    device = torch.device(config.device)
    generator, critic = (m.to(device) for m in build_models(config))
    opt_c = torch.optim.RMSprop(critic.parameters(), lr=config.lr)
    opt_g = torch.optim.RMSprop(generator.parameters(), lr=config.lr)
    one = torch.tensor(1.0, device=device)
    noise = torch.empty(config.batch_size, config.nz, device=device)
    losses = []
    start = 0.0
    for gen_iteration in range(iters + 1):
        if gen_iteration == 1:
            sync()
            start = time.perf_counter()
        for p in critic.parameters():
            p.requires_grad = True
        for _ in range(critic_steps(config, gen_iteration)):
            for p in critic.parameters():
                p.data.clamp_(-config.clip, config.clip)
            real = next(batches)
            critic.zero_grad()
            err_real = critic(real).mean()
            err_real.backward(one)
            noise.normal_(0, 1)
            with torch.no_grad():
                fake = generator(noise)
            err_fake = critic(fake).mean()
            err_fake.backward(-one)
            err_critic = err_real - err_fake
            opt_c.step()
        for p in critic.parameters():
            p.requires_grad = False
        generator.zero_grad()
        noise.normal_(0, 1)
        err_gen = critic(generator(noise)).mean()
        err_gen.backward(one)
        opt_g.step()
        losses.append((err_critic.item(), err_gen.item(), err_real.item(), err_fake.item()))
    sync()
    return time.perf_counter() - start


# ------------------------------------------------------------------ (b), (c) labkit
def trainer_seconds(trainer: Trainer, iters: int, sync: Callable[[], None],
                    warmup: int = 3) -> tuple[float, float]:
    """(setup seconds: the untimed first ``warmup`` iterations, which capture the graphs;
    seconds for ``iters`` more) of ``trainer.train_step`` with the step values kept on the
    device as ``Trainer.run`` does."""
    start = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    sync()
    setup = time.perf_counter() - start
    start = time.perf_counter()
    values = [trainer.train_step() for _ in range(iters)]
    torch.stack(values).cpu()  # the one flush, as at the Trainer's logging points
    sync()
    return setup, time.perf_counter() - start


def flops_per_iteration(config) -> float:
    """FLOPs of one generator iteration (``n_critic`` critic steps and one generator step) of
    the plain loop, counted by ``torch.utils.flop_counter.FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    trainer = Trainer(config, progress=False)
    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    return float(counter.get_total_flops())


def projected_minutes(rate: float, config, n_images: int = LSUN_BEDROOMS) -> dict[str, float]:
    """Minutes for the 25-epoch schedule on ``n_images`` at ``rate`` warm-up-free generator
    iterations/s. A warm-up iteration (100 critic steps) is costed as (100 + 1) / (n_critic + 1)
    ordinary ones (a generator step taken as one critic step); evaluation is not counted."""
    iters = iters_for_epochs(n_images - config.eval_samples, EPOCHS, config.batch_size,
                             config.n_critic)
    warm = dataclasses.replace(config, critic_warmup=True)
    units = sum((critic_steps(warm, i) + 1) / (config.n_critic + 1) for i in range(iters))
    return {"generator_iterations": iters, "minutes": units / rate / 60}


# ------------------------------------------------------------------ the run
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny, on the CPU (16 x 16, ngf = ndf = 8, batch 16, 2 iterations)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dir", default=None, help="folder for the LMDB and the cache "
                        "(default: a temporary folder, deleted at the end)")
    parser.add_argument("--images", type=int, default=100_000, help="pictures in the LMDB")
    parser.add_argument("--lmdb-size", type=int, default=256, help="their shorter side (px)")
    parser.add_argument("--prepare-workers", type=int, default=16)
    parser.add_argument("--loader-workers", type=int, default=2, help="authors' default: 2")
    parser.add_argument("--iters", type=int, default=300,
                        help="timed generator iterations of the on-device loops")
    parser.add_argument("--e2e-iters", type=int, default=20,
                        help="timed generator iterations of the reference end to end")
    args = parser.parse_args(argv)
    if args.smoke:
        args.device, args.images, args.lmdb_size, args.prepare_workers = "cpu", 160, 24, 2
        args.iters = args.e2e_iters = 2
    model = (dict(image_size=16, ngf=8, ndf=8, batch_size=16, eval_samples=32) if args.smoke
             else dict(image_size=64, eval_samples=1024))
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU is visible (use --smoke on the CPU)")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    notes = []
    if not cuda:
        notes.append("CPU run: bf16 and CUDA graphs skipped; the fast path runs eagerly; "
                     "timings say nothing about a GPU")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        lmdb_path, cache_path = folder / "lmdb", folder / f"cache{model['image_size']}"
        start = time.perf_counter()
        if not (lmdb_path / "data.mdb").exists():
            lsun.make_fake_lmdb(lmdb_path, args.images, size=args.lmdb_size)
        made = time.perf_counter() - start
        start = time.perf_counter()
        cache = images.prepare(lmdb_path, cache_path, size=model["image_size"],
                               workers=args.prepare_workers, progress=False)
        prepare_s = time.perf_counter() - start
        prepare = {"images": cache.count, "workers": args.prepare_workers, "seconds": prepare_s,
                   "images_per_s": cache.count / prepare_s, "lmdb_seconds": made}
        print(f"cache: {cache.count} images prepared with {args.prepare_workers} workers in "
              f"{prepare_s:.1f} s = {prepare['images_per_s']:.0f} images/s", flush=True)

        def config(**kw):
            return image_config(cache_path, iters=10**9, critic_warmup=False, device=args.device,
                                **model, **kw)

        flops = flops_per_iteration(config(fast=False))
        print(f"FLOPs per generator iteration: {flops / 1e9:.1f} GFLOP"
              + ("" if args.smoke else f" (first count: {PAPER_GFLOP} GFLOP)"), flush=True)

        results = {}

        def record(name, seconds, iters, setup=None):
            rate = iters / seconds
            peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
            results[name] = {"it_per_s": rate, "tflop_per_s": flops * rate / 1e12,
                             "peak_gpu_gib": peak, "setup_s": setup, "timed_iters": iters}
            if cuda:
                torch.cuda.reset_peak_memory_stats()

        cfg = config(fast=False)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        pixels = torch.from_numpy(np.array(cache.images)).to(device)
        record("a_reference_on_device", reference_loop(
            cfg, device_batches(pixels, cfg.batch_size), args.iters, sync), args.iters)
        del pixels
        record("a_reference_end_to_end", reference_loop(
            cfg, loader_batches(lmdb_path, cfg.image_size, cfg.batch_size, args.loader_workers,
                                device), args.e2e_iters, sync), args.e2e_iters)
        setup, seconds = trainer_seconds(Trainer(cfg, progress=False), args.iters, sync)
        record("b_labkit_plain", seconds, args.iters, setup)
        for name, options in (("c_fast_fp32", {}),
                              ("c_fast_bf16_channels_last", {"bf16": True,
                                                             "channels_last": True})):
            if options and not cuda:
                notes.append(f"{name} skipped: bf16 is timed on CUDA only")
                continue
            start = time.perf_counter()  # end to end: loading the cache counts as setup
            trainer = Trainer(config(fast=True), progress=False)
            if options:
                trainer.step = FastStep(trainer.step.reference, **options)
            built = time.perf_counter() - start
            setup, seconds = trainer_seconds(trainer, args.iters, sync)
            record(name, seconds, args.iters, built + setup)
            del trainer

    base_device = results["a_reference_on_device"]["it_per_s"]
    base_e2e = results["a_reference_end_to_end"]["it_per_s"]
    for row in results.values():
        row["vs_reference_on_device"] = row["it_per_s"] / base_device
        row["vs_reference_end_to_end"] = row["it_per_s"] / base_e2e
    best = max((k for k in results if k.startswith("c_")), key=lambda k: results[k]["it_per_s"])
    projection = projected_minutes(results[best]["it_per_s"], config(fast=True))
    fast = results[best]
    goals = {"fast_vs_reference_on_device": fast["vs_reference_on_device"],
             "fast_it_per_s": fast["it_per_s"],
             "fast_vs_reference_end_to_end": fast["vs_reference_end_to_end"],
             "full_schedule_minutes": projection["minutes"],
             "prepare_images_per_s": prepare["images_per_s"]}
    met = {k: None if args.smoke else (v <= GOALS[k] if k == "full_schedule_minutes"
                                        else v >= GOALS[k]) for k, v in goals.items()}

    print(f"\n{'loop':<28}{'it/s':>9}{'x ref dev':>11}{'x ref e2e':>11}{'TFLOP/s':>9}"
          f"{'peak GiB':>10}")
    for name, row in results.items():
        peak = "-" if row["peak_gpu_gib"] is None else f"{row['peak_gpu_gib']:.2f}"
        print(f"{name:<28}{row['it_per_s']:>9.2f}{row['vs_reference_on_device']:>10.2f}x"
              f"{row['vs_reference_end_to_end']:>10.2f}x{row['tflop_per_s']:>9.3f}{peak:>10}")
    print(f"\nfull schedule ({EPOCHS} epochs of {LSUN_BEDROOMS:,} bedrooms, "
          f"{projection['generator_iterations']:,} generator iterations, warm-up included) at "
          f"{best}: {projection['minutes']:.1f} minutes")
    for key, value in goals.items():
        verdict = {None: "not judged (smoke)", True: "met", False: "NOT met"}[met[key]]
        print(f"goal {key}: {value:.2f} (goal {GOALS[key]}) {verdict}")
    for note in notes:
        print("note:", note)
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "device": torch.cuda.get_device_name(device) if cuda else platform.processor()
              or platform.machine(),
              "torch": torch.__version__, "smoke": args.smoke, "cpu_count": os.cpu_count(),
              "config": {**config().to_dict(), "images": args.images,
                         "lmdb_size": args.lmdb_size, "loader_workers": args.loader_workers},
              "gflop_per_iteration": flops / 1e9, "paper_gflop_per_iteration": PAPER_GFLOP,
              "prepare": prepare, "results": results, "projection": projection,
              "goals": {k: {"value": goals[k], "goal": GOALS[k], "met": met[k]} for k in goals},
              "notes": notes}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
