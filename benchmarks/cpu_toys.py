"""Speed of labkit's training loop on the CPU against a loop written like the authors' ``main.py``.

On the 8-Gaussian ring (``labkit.toys.ring()``) with MLP generator and critic (3 hidden ReLU layers
of 512 and of 128 units), 2-D latent, batch 256, n_critic 5, clipping 0.01, RMSprop lr 5e-5, it
times, in one process and interleaved (reference, labkit, labkit, reference, ...):

* the reference: martinarjovsky/WassersteinGAN ``main.py`` and ``models/mlp.py`` ported to
  current PyTorch as written (per-parameter ``clamp_`` loop at the start of each critic step,
  separate forward/backward passes for real and fake, ``torch.optim.RMSprop`` with its defaults,
  ``requires_grad`` toggling of the critic around the generator step, ``.item()`` of the four
  printed losses every generator iteration, fresh noise and a fresh real batch every critic
  step, ``nn.ReLU(True)``), starting from the same weights as labkit's run;
* labkit: ``labkit.train.Trainer`` on the same config (evaluation excluded from the timing);

and prints generator iterations per second of each, their ratio (median of the per-pair ratios),
and the aggregate throughput of an 8-seed ensemble (``TrainConfig(n_seeds=8)``, stacked
parameters) against 8 sequential single runs. Run ``.venv/bin/python benchmarks/cpu_toys.py``
(about 2 minutes on two idle cores) or ``--quick`` (about 15 s); see ``--help`` and
``benchmarks/README.md``, which records the results and explains them.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import time
from typing import Any

import torch
from torch import nn

from labkit import toys
from labkit.models import MLPCritic, MLPGenerator
from labkit.train import DEFAULT_THREADS, TrainConfig, Trainer, choose_threads, member_seeds

# The config: everything the two loops share.
BATCH, NZ, N_CRITIC, CLIP, LR, DEPTH = 256, 2, 5, 0.01, 5e-5, 3


# --------------------------------------------------------------------------- the reference
class MLP_G(nn.Module):
    """The authors' ``models/mlp.py`` generator: (Linear, ReLU(True)) x 3, Linear to 2-D."""

    def __init__(self, nz: int, ngf: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(nz, ngf), nn.ReLU(True),
            nn.Linear(ngf, ngf), nn.ReLU(True),
            nn.Linear(ngf, ngf), nn.ReLU(True),
            nn.Linear(ngf, 2),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        input = input.view(input.size(0), input.size(1))
        return self.main(input)


class MLP_D(nn.Module):
    """The authors' ``models/mlp.py`` critic: (Linear, ReLU(True)) x 3, Linear to 1, batch mean."""

    def __init__(self, ndf: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(2, ndf), nn.ReLU(True),
            nn.Linear(ndf, ndf), nn.ReLU(True),
            nn.Linear(ndf, ndf), nn.ReLU(True),
            nn.Linear(ndf, 1),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        output = self.main(input)
        output = output.mean(0)
        return output.view(1)


def reference_models(hidden: int, seed: int) -> tuple[nn.Module, nn.Module]:
    """The authors' MLPs holding the weights a single labkit run with ``seed`` starts from."""
    rng = torch.Generator().manual_seed(member_seeds(seed)[0])
    g = MLPGenerator(NZ, 2, hidden, DEPTH, generator=rng)
    d = MLPCritic(2, hidden, DEPTH, generator=rng)
    netG, netD = MLP_G(NZ, hidden), MLP_D(hidden)
    netG.load_state_dict(g.state_dict())
    netD.load_state_dict(d.state_dict())
    return netG, netD


#: Torch threads of every timed run (``--threads``; default torch's own, one per core). labkit's
#: Trainer sets its threads from its config, so both loops get this number explicitly.
THREADS = {"n": torch.get_num_threads()}


def reference_run(hidden: int, iters: int, warmup: int, seed: int = 0) -> float:
    """Generator iterations per second of the authors' loop, timed after ``warmup`` iterations.

    A line-by-line port of martinarjovsky/WassersteinGAN ``main.py`` (without the 100-critic-step
    warm-up schedule, which labkit's config also leaves off here) to current PyTorch:
    ``Variable(..., volatile=True)`` becomes ``torch.no_grad()``, ``.data[0]`` becomes ``.item()``,
    and the data loader becomes the toy sampler. The four losses are fetched with ``.item()``
    every generator iteration as for the authors' print, but collected instead of printed.
    """
    torch.set_num_threads(THREADS["n"])
    netG, netD = reference_models(hidden, seed)
    target = toys.ring()
    rng = torch.Generator().manual_seed(member_seeds(seed)[1])
    optimizerD = torch.optim.RMSprop(netD.parameters(), lr=LR)
    optimizerG = torch.optim.RMSprop(netG.parameters(), lr=LR)
    noise = torch.FloatTensor(BATCH, NZ)
    one = torch.FloatTensor([1])
    mone = one * -1
    log = []

    def generator_iteration() -> None:
        # (1) Update D network
        for p in netD.parameters():  # reset requires_grad
            p.requires_grad = True  # they are set to False below in netG update
        for _ in range(N_CRITIC):
            # clamp parameters to a cube
            for p in netD.parameters():
                p.data.clamp_(-CLIP, CLIP)
            real = target.sample(BATCH, generator=rng)  # data = data_iter.next()
            netD.zero_grad()
            # train with real
            errD_real = netD(real)
            errD_real.backward(one)
            # train with fake
            noise.resize_(BATCH, NZ).normal_(0, 1, generator=rng)
            with torch.no_grad():  # Variable(noise, volatile=True): totally freeze netG
                fake = netG(noise)
            errD_fake = netD(fake)
            errD_fake.backward(mone)
            errD = errD_real - errD_fake
            optimizerD.step()
        # (2) Update G network
        for p in netD.parameters():
            p.requires_grad = False  # to avoid computation
        netG.zero_grad()
        noise.resize_(BATCH, NZ).normal_(0, 1, generator=rng)
        fake = netG(noise)
        errG = netD(fake)
        errG.backward(one)
        optimizerG.step()
        # print('... Loss_D: %f Loss_G: %f Loss_D_real: %f Loss_D_fake %f' % (errD.data[0], ...))
        log.append((errD.item(), errG.item(), errD_real.item(), errD_fake.item()))

    for _ in range(warmup):
        generator_iteration()
    start = time.perf_counter()
    for _ in range(iters):
        generator_iteration()
    return iters / (time.perf_counter() - start)


# --------------------------------------------------------------------------- labkit
def labkit_run(hidden: int, iters: int, warmup: int, seed: int = 0, n_seeds: int = 1,
               threads: int | None = None) -> float:
    """Generator iterations per second of ``Trainer.run`` (per run, not per seed), timed with the
    history's per-iteration ``time`` column from iteration ``warmup`` to the end, so the
    evaluation at iteration 0 and the warm-up iterations are left out. ``threads``: torch
    threads of the run (default the benchmark's :data:`THREADS`; 0 lets labkit choose)."""
    total = warmup + iters
    config = TrainConfig(hidden=hidden, depth=DEPTH, nz=NZ, batch_size=BATCH, n_critic=N_CRITIC,
                         clip=CLIP, lr=LR, iters=total, seed=seed, n_seeds=n_seeds,
                         eval_every=total + 1, eval_samples=10, checkpoint_every=total + 1,
                         threads=THREADS["n"] if threads is None else threads)
    trainer = Trainer(config, progress=False)
    trainer.run()
    times = {r["iteration"]: r["time"] for r in trainer.history.rows}
    return iters / (times[total] - times[warmup])


# --------------------------------------------------------------------------- the benchmark
def _median_ratio(num: list[float], den: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def single_runs(hidden: int, iters: int, warmup: int, repeats: int) -> dict[str, Any]:
    """``repeats`` adjacent (reference, labkit) pairs, the order alternating (AB BA AB ...);
    medians of the it/s of each side and of the per-pair ratio labkit / reference."""
    ref, lab = [], []
    for k in range(repeats):
        runs = [("ref", reference_run), ("lab", labkit_run)]
        for name, run in runs if k % 2 == 0 else runs[::-1]:
            (ref if name == "ref" else lab).append(run(hidden, iters, warmup))
    return {"reference": statistics.median(ref), "labkit": statistics.median(lab),
            "ratio": _median_ratio(lab, ref), "ref_all": ref, "lab_all": lab}


def ensemble_runs(hidden: int, iters: int, warmup: int, repeats: int,
                  n_seeds: int) -> dict[str, Any]:
    """Aggregate generator iterations per second (all seeds together) of one ``n_seeds`` ensemble
    against ``n_seeds`` sequential single runs (seeds 0..n_seeds-1), alternating; medians.

    Aggregate = n_seeds * iters / wall seconds of the timed iterations (for the sequential runs,
    the sum of their timed seconds)."""
    ens, seq = [], []
    for k in range(repeats):
        def ensemble() -> None:
            ens.append(n_seeds * labkit_run(hidden, iters, warmup, n_seeds=n_seeds))

        def sequential() -> None:
            seconds = sum(iters / labkit_run(hidden, iters, warmup, seed=s)
                          for s in range(n_seeds))
            seq.append(n_seeds * iters / seconds)

        for run in (ensemble, sequential) if k % 2 == 0 else (sequential, ensemble):
            run()
    return {"ensemble": statistics.median(ens), "sequential": statistics.median(seq),
            "ratio": _median_ratio(ens, seq), "ens_all": ens, "seq_all": seq}


def thread_runs(hidden: int, iters: int, warmup: int, repeats: int) -> dict[str, Any]:
    """labkit single runs with one thread against torch's default (one per core), alternating;
    medians and the median per-pair ratio one / default. What labkit's automatic choice
    (``TrainConfig.threads = 0``) picks for this width is reported beside them."""
    one, default = [], []
    for k in range(repeats):
        runs = [(one, 1), (default, DEFAULT_THREADS)]
        for values, n in runs if k % 2 == 0 else runs[::-1]:
            values.append(labkit_run(hidden, iters, warmup, threads=n))
    auto = choose_threads(TrainConfig(hidden=hidden, batch_size=BATCH))
    return {"one": statistics.median(one), "default": statistics.median(default),
            "ratio": _median_ratio(one, default), "one_all": one, "default_all": default,
            "auto": auto}


def _load() -> tuple[float, float, float]:
    return os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3


def _runs(values: list[float]) -> str:
    return " ".join(f"{v:.1f}" for v in values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Generator iterations per second of labkit's Trainer against a loop written "
                    "like the authors' main.py, on the CPU (see benchmarks/README.md).")
    parser.add_argument("--iters", type=int, default=None,
                        help="timed generator iterations per run at width 128 (default 150, "
                             "--quick 30); widths >= 512 get a quarter")
    parser.add_argument("--ensemble-iters", type=int, default=None,
                        help="timed generator iterations per ensemble run and per sequential "
                             "single run (default 30, --quick 10)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed generator iterations before each timed run (default 3, "
                             "--quick 2)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="reference/labkit pairs per width (default 5, --quick 1)")
    parser.add_argument("--ensemble-repeats", type=int, default=None,
                        help="ensemble/sequential pairs (default 3, --quick 1)")
    parser.add_argument("--seeds", type=int, default=8, help="ensemble size S (default 8)")
    parser.add_argument("--ensemble-width", type=int, default=128,
                        help="hidden width of the ensemble comparison (default 128)")
    parser.add_argument("--widths", type=int, nargs="*", default=[512, 128],
                        help="hidden widths of the single-run comparison (default 512 128)")
    parser.add_argument("--no-ensemble", action="store_true", help="skip the ensemble comparison")
    parser.add_argument("--thread-widths", type=int, nargs="*", default=None,
                        help="widths of the one-thread against default-threads comparison of "
                             "labkit single runs (default: the --widths; none to skip)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: under 30 s on two "
                        "idle cores")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for both loops (default: torch's own, "
                             "one per core)")
    args = parser.parse_args(argv)
    quick = args.quick
    iters = args.iters or (30 if quick else 150)
    ens_iters = args.ensemble_iters or (10 if quick else 30)
    warmup = max(1, args.warmup if args.warmup is not None else (2 if quick else 3))
    repeats = args.repeats or (1 if quick else 5)
    ens_repeats = args.ensemble_repeats or (1 if quick else 3)
    if args.threads:
        THREADS["n"] = args.threads

    load = _load()
    started = time.perf_counter()
    print(f"# benchmarks/cpu_toys.py  {datetime.datetime.now().isoformat(timespec='minutes')}  "
          f"{platform.machine()}, {os.cpu_count()} cpus  torch {torch.__version__} "
          f"(threads {THREADS['n']})  python {platform.python_version()}  "
          f"load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"# ring(8), MLP depth {DEPTH}, nz {NZ}, batch {BATCH}, n_critic {N_CRITIC}, "
          f"clip {CLIP}, RMSprop lr {LR}; {warmup} untimed warm-up it per run; medians")
    if load[0] > 1.5:
        print(f"# WARNING: load average {load[0]:.2f} > 1.5: other processes compete for the "
              f"cores and {THREADS['n']}-thread runs slow down erratically (up to "
              f"50x on two cores); these numbers are not representative")
    if args.widths:
        print()
        print(f"{'width':>5}  {'timed it':>8}  {'reference it/s':>14}  {'labkit it/s':>11}  "
              f"{'labkit/ref':>10}  runs (reference | labkit), {repeats} interleaved pair(s)")
    ref_rate = {}
    for hidden in args.widths:
        n = max(1, iters // 4) if hidden >= 512 else iters
        r = single_runs(hidden, n, warmup, repeats)
        ref_rate[hidden] = r["reference"]
        print(f"{hidden:>5}  {n:>8}  {r['reference']:>14.1f}  {r['labkit']:>11.1f}  "
              f"{r['ratio']:>9.2f}x  {_runs(r['ref_all'])} | {_runs(r['lab_all'])}", flush=True)
    if not args.no_ensemble:
        hidden, s = args.ensemble_width, args.seeds
        e = ensemble_runs(hidden, ens_iters, warmup, ens_repeats, s)
        print()
        print(f"{'width':>5}  {'seeds':>5}  {'timed it':>8}  {'sequential agg it/s':>19}  "
              f"{'ensemble agg it/s':>17}  {'ens/seq':>7}  runs (sequential | ensemble), "
              f"{ens_repeats} interleaved pair(s)")
        print(f"{hidden:>5}  {s:>5}  {ens_iters:>8}  {e['sequential']:>19.1f}  "
              f"{e['ensemble']:>17.1f}  {e['ratio']:>6.2f}x  "
              f"{_runs(e['seq_all'])} | {_runs(e['ens_all'])}")
        if hidden in ref_rate:
            print(f"# ensemble aggregate / reference single run at width {hidden}: "
                  f"{e['ensemble'] / ref_rate[hidden]:.2f}x")
    thread_widths = args.widths if args.thread_widths is None else args.thread_widths
    if thread_widths:
        print()
        print(f"{'width':>5}  {'timed it':>8}  {'1 thread it/s':>13}  "
              f"{f'{DEFAULT_THREADS} threads it/s':>14}  {'1/default':>9}  {'auto':>4}  "
              f"runs (1 | default), {repeats} interleaved pair(s), load avg {_load()[0]:.2f}")
        for hidden in thread_widths:
            n = max(1, iters // 4) if hidden >= 512 else iters
            t = thread_runs(hidden, n, warmup, repeats)
            print(f"{hidden:>5}  {n:>8}  {t['one']:>13.1f}  {t['default']:>14.1f}  "
                  f"{t['ratio']:>8.2f}x  {t['auto']:>4}  {_runs(t['one_all'])} | "
                  f"{_runs(t['default_all'])}", flush=True)
    load = _load()
    print(f"\n# {time.perf_counter() - started:.0f} s; load avg at the end "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
