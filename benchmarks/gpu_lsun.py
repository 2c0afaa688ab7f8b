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
      from the prepared cache, fp32, and bf16 with channels_last; each also without graphs
      (eager, non-capturable optimizers).

It also reports the FLOPs of one generator iteration (``FlopCounterMode``; a first count,
docs/paper_facts.md: 541.5 GFLOP),
achieved TFLOP/s, peak GPU memory, the cache preparation rate (``labkit.images.prepare``), and
the projected time of the paper's 25-epoch schedule on LSUN bedrooms. Results go to ``--out`` as
JSON, rewritten after every measurement (``"complete": false`` until the end), so a run that is
stopped still leaves what it measured. ``--profile`` writes a ``torch.profiler`` table of one
fast-path generator iteration, eager and graphed. ``--lmdb-workers`` encodes the pictures in
parallel (shards written by this process), ``--lmdb-seconds`` stops making the LMDB at whole
shards after that long (the JSON says how many pictures it holds), and ``--time-limit`` and
``--e2e-time-limit`` cap each timed loop (fewer timed iterations, never a partial one).
``--smoke`` runs everything tiny on the CPU (16 x 16; bf16 and graphs skipped)::

    python benchmarks/gpu_lsun.py --out gpu_lsun.json                 # on a GPU machine
    python benchmarks/gpu_lsun.py --smoke --out /tmp/smoke.json       # CPU, a few seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import gc
import hashlib
import io
import json
import multiprocessing
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labkit import images, lsun
from labkit.datasets import iters_for_epochs
from labkit.train import Trainer, build_models, critic_steps, image_config
from labkit.train.fast import FastStep
from labkit.train.step import build_optimizer

#: The first count of one generator iteration's FLOPs, authors' config (docs/paper_facts.md).
PAPER_GFLOP = 541.5
#: LSUN bedrooms, and the paper's schedule.
LSUN_BEDROOMS, EPOCHS = 3_033_042, 25
GOALS = {"fast_vs_reference_on_device": 4.0, "fast_it_per_s": 130.0,
         "fast_vs_reference_end_to_end": 40.0, "full_schedule_minutes": 35.0,
         "prepare_images_per_s": 4000.0}
#: Pictures per task of the parallel LMDB maker, and the Trainer's logging interval (its one host
#: sync every ``FLUSH_EVERY`` iterations, which the timed Trainer loops reproduce).
SHARD, FLUSH_EVERY = 256, 100


# ------------------------------------------------------------------ the generated LSUN LMDB
def _encode_shard(task: tuple[int, int, int, int]) -> list[tuple[bytes, bytes]]:
    """Records ``start`` to ``stop`` of a generated LMDB: LSUN-style keys (SHA-1 of seed and
    record number, as ``lsun.make_fake_lmdb``) and WebP pictures (``lsun.fake_image``), drawn
    from a stream of their own (seeded by ``seed`` and ``start``), so shards run in any order."""
    seed, start, stop, size = task
    rng = np.random.default_rng([seed, start])
    records = []
    for i in range(start, stop):
        key = hashlib.sha1(f"{seed}-{i}".encode()).hexdigest().encode()
        long = int(size * rng.uniform(1.0, 1.6)) if rng.random() < 0.8 else size
        width, height = (long, size) if rng.random() < 0.5 else (size, long)
        buffer = io.BytesIO()
        lsun.fake_image(rng, width, height).save(buffer, "WEBP", quality=80)
        records.append((key, buffer.getvalue()))
    return records


def make_lmdb(path: Path, n: int, size: int, workers: int = 1, seconds: float | None = None,
              minimum: int = 0, seed: int = 0) -> int:
    """An LSUN-format LMDB of up to ``n`` generated WebP pictures at ``path``; returns how many
    it holds. One worker and no time limit: ``lsun.make_fake_lmdb`` itself. Otherwise the
    pictures are encoded by ``workers`` processes in shards of :data:`SHARD` and written here,
    one transaction per shard, stopping at the first whole shard after ``seconds`` once at
    least ``minimum`` are written."""
    if workers <= 1 and seconds is None:
        lsun.make_fake_lmdb(path, n, size=size, seed=seed)
        return n
    import lmdb

    path.mkdir(parents=True, exist_ok=True)
    for stale in ("data.mdb", "lock.mdb"):
        (path / stale).unlink(missing_ok=True)
    # a bound on the file, not its size: LMDB grows the file as pages are written
    env = lmdb.open(str(path), map_size=(1 << 26) + n * (int(1.6 * size) * size * 3 + 256),
                    subdir=True)
    tasks = [(seed, start, min(start + SHARD, n), size) for start in range(0, n, SHARD)]
    start, written = time.perf_counter(), 0
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    try:
        with context.Pool(max(1, workers)) as pool:  # leaving it terminates unfinished shards
            for records in pool.imap(_encode_shard, tasks):
                with env.begin(write=True) as txn:
                    for key, value in records:
                        txn.put(key, value)
                written += len(records)
                if seconds is not None and written >= minimum and \
                        time.perf_counter() - start > seconds:
                    break
    finally:
        env.close()
    return written


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
                   sync: Callable[[], None],
                   time_limit: float | None = None) -> tuple[float, int]:
    """The authors' training loop (``main.py``, ported to current PyTorch); returns (seconds,
    generator iterations timed): ``iters`` after one untimed iteration, fewer if ``time_limit``
    seconds have passed (checked after each iteration: its ``.item()`` calls synchronise)."""
    device = torch.device(config.device)
    generator, critic = (m.to(device) for m in build_models(config))
    opt_c = torch.optim.RMSprop(critic.parameters(), lr=config.lr)
    opt_g = torch.optim.RMSprop(generator.parameters(), lr=config.lr)
    one = torch.tensor(1.0, device=device)
    noise = torch.empty(config.batch_size, config.nz, device=device)
    losses = []
    start = 0.0
    timed = 0
    for gen_iteration in range(iters + 1):
        if gen_iteration == 1:
            sync()
            start = time.perf_counter()
        elif gen_iteration > 1 and time_limit is not None and \
                time.perf_counter() - start > time_limit:
            break
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
        timed = gen_iteration
    sync()
    return time.perf_counter() - start, timed


# ------------------------------------------------------------------ (b), (c) labkit
def trainer_seconds(trainer: Trainer, iters: int, sync: Callable[[], None],
                    warmup: int = 3,
                    time_limit: float | None = None) -> tuple[float, float, int]:
    """(setup seconds: the untimed first ``warmup`` iterations, which capture the graphs;
    seconds for the timed iterations; their number) of ``trainer.train_step`` with the step
    values kept on the device and flushed every :data:`FLUSH_EVERY` iterations, as
    ``Trainer.run`` does: ``iters`` of them, fewer if ``time_limit`` seconds have passed at a
    flush (with a limit, the first flush comes after 10 iterations and the later ones where the
    rate so far says the limit is reached)."""
    start = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    sync()
    setup = time.perf_counter() - start
    start, done = time.perf_counter(), 0
    while done < iters:
        block = min(FLUSH_EVERY, iters - done)
        if time_limit is not None:  # a first short block, then as many as the limit leaves
            spent = time.perf_counter() - start
            block = min(block, 10 if not done else
                        max(1, int(done / spent * (time_limit - spent))))
        torch.stack([trainer.train_step() for _ in range(block)]).cpu()  # the flush
        done += block
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
    sync()
    return setup, time.perf_counter() - start, done


def eager_optimizers(reference) -> None:
    """Give a fresh run's reference step the fast path's multi-tensor optimizers without
    ``capturable`` (what the fast path uses when it runs without graphs)."""
    config = reference.config
    reference.opt_critic = build_optimizer(config, reference.critic.parameters(), fast=True)
    reference.opt_generator = build_optimizer(config, reference.generator.parameters(), fast=True)


def profile_table(trainer: Trainer, cuda: bool, sync: Callable[[], None], warmup: int = 3,
                  rows: int = 25) -> str:
    """``torch.profiler`` table of one generator iteration (``n_critic`` critic steps and one
    generator step) of ``trainer``, after ``warmup`` untimed ones, by self device time on CUDA
    (self CPU time on the CPU)."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        trainer.train_step()
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        trainer.train_step()
        sync()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def free_memory(cuda: bool) -> None:
    """Drop what earlier measurements left (graphs' pools, models), so peaks are per loop."""
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


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
def summary(results: dict, prepare: dict | None, config, smoke: bool) -> dict:
    """Ratios against the reference loops, the projection at the fastest fast-path setting and
    the goals, from whatever has been measured so far (missing entries are left out)."""
    out: dict = {}
    for base in ("a_reference_on_device", "a_reference_end_to_end"):
        if base in results:
            suffix = base.removeprefix("a_reference_")
            for row in results.values():
                row[f"vs_reference_{suffix}"] = row["it_per_s"] / results[base]["it_per_s"]
    fast = [k for k in results if k.startswith("c_")]
    if not fast:
        return out
    best = max(fast, key=lambda k: results[k]["it_per_s"])
    projection = projected_minutes(results[best]["it_per_s"], config)
    row = results[best]
    goals = {"fast_vs_reference_on_device": row.get("vs_reference_on_device"),
             "fast_it_per_s": row["it_per_s"],
             "fast_vs_reference_end_to_end": row.get("vs_reference_end_to_end"),
             "full_schedule_minutes": projection["minutes"],
             "prepare_images_per_s": prepare["images_per_s"] if prepare else None}
    met = {k: None if smoke or v is None else (v <= GOALS[k] if k == "full_schedule_minutes"
                                               else v >= GOALS[k]) for k, v in goals.items()}
    out["best"] = best
    out["projection"] = projection
    out["goals"] = {k: {"value": goals[k], "goal": GOALS[k], "met": met[k]} for k in goals}
    return out


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
    parser.add_argument("--lmdb-workers", type=int, default=1,
                        help="processes encoding the LMDB's pictures (1: lsun.make_fake_lmdb)")
    parser.add_argument("--lmdb-seconds", type=float, default=None,
                        help="stop making the LMDB after this long, at a whole shard")
    parser.add_argument("--lmdb-min", type=int, default=4096,
                        help="pictures made whatever --lmdb-seconds says (the held-out 1,024 "
                        "and enough to train on)")
    parser.add_argument("--prepare-workers", type=int, default=16)
    parser.add_argument("--loader-workers", type=int, default=2, help="authors' default: 2")
    parser.add_argument("--iters", type=int, default=300,
                        help="timed generator iterations of the on-device loops")
    parser.add_argument("--e2e-iters", type=int, default=20,
                        help="timed generator iterations of the reference end to end")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds of timed iterations per on-device loop, at most")
    parser.add_argument("--e2e-time-limit", type=float, default=None,
                        help="seconds of timed iterations of the reference end to end, at most")
    parser.add_argument("--profile", default=None,
                        help="text file for a torch.profiler table of one fast-path iteration")
    parser.add_argument("--no-eager", action="store_true",
                        help="skip the fast path without graphs on CUDA")
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
    notes = ["generated data: an LMDB of synthetic WebP pictures (labkit.lsun.fake_image), "
             "not LSUN photographs"]
    if not cuda:
        notes.append("CPU run: bf16 and CUDA graphs skipped; the fast path runs eagerly; "
                     "timings say nothing about a GPU")
    results: dict = {}
    # CUDA is first touched after the LMDB and the cache are made (their worker processes fork)
    report: dict = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "device": None, "torch": torch.__version__, "cuda": torch.version.cuda,
                    "cudnn": None, "smoke": args.smoke, "cpu_count": os.cpu_count(),
                    "complete": False, "results": results, "notes": notes}
    out = Path(args.out)

    def write() -> None:  # after every measurement: a stopped run keeps what it measured
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, out)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        lmdb_path, cache_path = folder / "lmdb", folder / f"cache{model['image_size']}"
        start = time.perf_counter()
        if (lmdb_path / "data.mdb").exists():
            with lsun.LmdbReader(lmdb_path) as reader:
                n_images = len(reader)
        else:
            n_images = make_lmdb(lmdb_path, args.images, args.lmdb_size, args.lmdb_workers,
                                 args.lmdb_seconds, min(args.lmdb_min, args.images))
        made = time.perf_counter() - start
        print(f"LMDB: {n_images} generated {args.lmdb_size} px WebP pictures in {made:.1f} s "
              f"({args.lmdb_workers} workers)", flush=True)
        start = time.perf_counter()
        cache = images.prepare(lmdb_path, cache_path, size=model["image_size"],
                               workers=args.prepare_workers, progress=False)
        prepare_s = time.perf_counter() - start
        prepare = {"images": cache.count, "workers": args.prepare_workers, "seconds": prepare_s,
                   "images_per_s": cache.count / prepare_s, "lmdb_seconds": made,
                   "lmdb_workers": args.lmdb_workers}
        print(f"cache: {cache.count} images prepared with {args.prepare_workers} workers in "
              f"{prepare_s:.1f} s = {prepare['images_per_s']:.0f} images/s", flush=True)

        def config(**kw):
            return image_config(cache_path, iters=10**9, critic_warmup=False, device=args.device,
                                **model, **kw)

        report.update({"device": torch.cuda.get_device_name(device) if cuda
                       else platform.processor() or platform.machine(),
                       "cudnn": torch.backends.cudnn.version() if cuda else None,
                       "config": {**config().to_dict(), "images": n_images,
                                  "images_asked": args.images, "lmdb_size": args.lmdb_size,
                                  "loader_workers": args.loader_workers,
                                  "time_limit": args.time_limit,
                                  "e2e_time_limit": args.e2e_time_limit},
                       "prepare": prepare, "paper_gflop_per_iteration": PAPER_GFLOP})
        write()
        flops = flops_per_iteration(config(fast=False))
        report["gflop_per_iteration"] = flops / 1e9
        print(f"FLOPs per generator iteration: {flops / 1e9:.1f} GFLOP"
              + ("" if args.smoke else f" (first count: {PAPER_GFLOP} GFLOP)"), flush=True)

        def begin() -> None:  # the peak of the loop about to run, its data and models included
            free_memory(cuda)
            if cuda:
                torch.cuda.reset_peak_memory_stats()

        def record(name, seconds, iters, setup=None, **extra):
            rate = iters / seconds
            peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
            results[name] = {"it_per_s": rate, "tflop_per_s": flops * rate / 1e12,
                             "peak_gpu_gib": peak, "setup_s": setup, "timed_iters": iters,
                             "seconds": seconds, **extra}
            report.update(summary(results, prepare, config(fast=True), args.smoke))
            write()
            print(f"{name}: {rate:.2f} it/s over {iters} iterations"
                  + ("" if peak is None else f", peak {peak:.2f} GiB"), flush=True)

        errors: dict[str, str] = report.setdefault("errors", {})

        def attempt(name: str, measure: Callable[[], None]) -> None:
            """Run one measurement; on a GPU an error is recorded and the others still run
            (one device session, no second try); the smoke test lets it raise."""
            try:
                measure()
            except Exception as error:
                if args.smoke:
                    raise
                errors[name] = f"{type(error).__name__}: {error}"
                traceback.print_exc()
                write()

        cfg = config(fast=False)

        def reference_on_device() -> None:
            begin()
            pixels = torch.from_numpy(np.array(cache.images)).to(device)
            record("a_reference_on_device", *reference_loop(
                cfg, device_batches(pixels, cfg.batch_size), args.iters, sync, args.time_limit))

        def reference_end_to_end() -> None:
            begin()
            batches = loader_batches(lmdb_path, cfg.image_size, cfg.batch_size,
                                     args.loader_workers, device)
            try:
                record("a_reference_end_to_end", *reference_loop(
                    cfg, batches, args.e2e_iters, sync, args.e2e_time_limit))
            finally:
                batches.close()  # ends the loader's workers

        def plain() -> None:
            trainer = Trainer(cfg, progress=False)
            begin()
            setup, seconds, done = trainer_seconds(trainer, args.iters, sync,
                                                   time_limit=args.time_limit)
            record("b_labkit_plain", seconds, done, setup)

        def fast_trainer(graphs: bool, **options) -> Trainer:
            """A fast-path run; on CUDA without graphs, with non-capturable optimizers."""
            trainer = Trainer(config(fast=True), progress=False)
            if cuda and not graphs:
                eager_optimizers(trainer.step.reference)
            if options or (cuda and not graphs):
                trainer.step = FastStep(trainer.step.reference, graphs=graphs if cuda else None,
                                        **options)
            return trainer

        def fast(name: str, graphs: bool, options: dict) -> None:
            free_memory(cuda)
            start = time.perf_counter()  # end to end: loading the cache counts as setup
            trainer = fast_trainer(graphs, **options)
            built = time.perf_counter() - start
            begin()
            setup, seconds, done = trainer_seconds(trainer, args.iters, sync,
                                                   time_limit=args.time_limit)
            record(name, seconds, done, built + setup, graphs=bool(trainer.step.graphs))

        def profiles() -> None:
            tables = []
            for title, graphs in (("eager (graphs off), fp32", False),
                                  ("CUDA graphs, fp32", True)):
                if graphs and not cuda:
                    continue
                free_memory(cuda)
                trainer = fast_trainer(graphs)
                try:
                    table = profile_table(trainer, cuda, sync)
                except Exception as error:
                    if args.smoke:
                        raise
                    table = f"failed: {type(error).__name__}: {error}"
                tables.append(f"## fast path, {title}: one generator iteration "
                              f"({trainer.config.n_critic} critic steps + 1 generator step), "
                              f"{report['device']}, torch {torch.__version__}\n{table}")
                Path(args.profile).write_text("\n\n".join(tables) + "\n")
                del trainer
            print(f"wrote {args.profile}", flush=True)

        attempt("a_reference_on_device", reference_on_device)
        attempt("a_reference_end_to_end", reference_end_to_end)
        attempt("b_labkit_plain", plain)
        variants = [("c_fast_fp32", {}, True),
                    ("c_fast_bf16_channels_last", {"bf16": True, "channels_last": True}, True),
                    ("c_fast_fp32_no_graphs", {}, False),
                    ("c_fast_bf16_channels_last_no_graphs",
                     {"bf16": True, "channels_last": True}, False)]
        for name, options, graphs in variants:
            if not cuda and (options or not graphs):
                notes.append(f"{name} skipped: timed on CUDA only")
            elif cuda and not graphs and args.no_eager:
                notes.append(f"{name} skipped (--no-eager)")
            else:
                attempt(name, functools.partial(fast, name, graphs, options))
        if args.profile:
            attempt("profile", profiles)

    report["complete"] = True
    write()
    print(f"\n{'loop':<38}{'it/s':>9}{'x ref dev':>11}{'x ref e2e':>11}{'TFLOP/s':>9}"
          f"{'peak GiB':>10}")
    for name, row in results.items():
        peak = "-" if row["peak_gpu_gib"] is None else f"{row['peak_gpu_gib']:.2f}"
        ratios = "".join(f"{row[k]:>10.2f}x" if k in row else f"{'-':>11}"
                         for k in ("vs_reference_on_device", "vs_reference_end_to_end"))
        print(f"{name:<38}{row['it_per_s']:>9.2f}{ratios}{row['tflop_per_s']:>9.3f}{peak:>10}")
    if "projection" in report:
        projection = report["projection"]
        print(f"\nfull schedule ({EPOCHS} epochs of {LSUN_BEDROOMS:,} bedrooms, "
              f"{projection['generator_iterations']:,} generator iterations, warm-up included) "
              f"at {report['best']}: {projection['minutes']:.1f} minutes")
        for key, goal in report["goals"].items():
            verdict = {None: "not judged", True: "met", False: "NOT met"}[goal["met"]]
            value = "-" if goal["value"] is None else f"{goal['value']:.2f}"
            print(f"goal {key}: {value} (goal {GOALS[key]}) {verdict}")
    for name, error in errors.items():
        print(f"error in {name}: {error}")
    for note in notes:
        print("note:", note)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
