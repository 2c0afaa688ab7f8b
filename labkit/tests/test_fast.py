"""The fast path (:mod:`labkit.train.fast`) against the plain loop: the same parameters after N
steps on the same batches, the warm-up schedule, clipping timing, exact resume, and one-line
errors.
CPU tests run it eagerly (16 x 16, tiny models); the CUDA-graph variants need a GPU. Tests
that run on both compare the CPU's eager fast path, and on a GPU its CUDA graphs, with the plain
loop."""

import os
import signal

import pytest
import torch

from labkit import checkpoint
from labkit.cli import build_parser
from labkit.datasets import synthetic_images
from labkit.images import save_cache
from labkit.train import ReferenceStep, TrainConfig, Trainer, critic_steps, image_config, use_fast
from labkit.train.fast import CAPTURE_WARMUP, DEVICE_HEADROOM, FastStep, choose_placement

HOLDOUT = 16
TINY = dict(image_size=16, ngf=4, ndf=4, batch_size=8, n_critic=2, critic_warmup=False,
            eval_every=100, eval_samples=HOLDOUT)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
#: The eager fast path on the CPU, and the CUDA-graph one on a GPU.
DEVICES = [pytest.param("cpu", id="cpu-eager"), pytest.param("cuda", marks=CUDA, id="cuda-graphs")]
#: Parameters of two runs doing the same float32 arithmetic in a different order or with
#: differently fused kernels (foreach and capturable RMSprop, a graph's replay) differ by fp32
#: round-off: about 1e-7 relative per step, far below 1e-5 after a few hundred steps with
#: weights clipped to 0.01 (training itself moves them by more than 1e-4).
FP32_ROUNDOFF = 1e-5


@pytest.fixture
def same_maths():
    """Full float32 on the GPU while the test runs: no TF32 in matrix products or convolutions
    (cuDNN allows it by default, which would round the inputs to 10 bits of mantissa), and
    deterministic cuDNN algorithms chosen without benchmarking, so that two loops doing the same
    arithmetic differ by fp32 round-off only. The previous settings are restored after."""
    flags = ((torch.backends.cuda.matmul, "allow_tf32", False),
             (torch.backends.cudnn, "allow_tf32", False),
             (torch.backends.cudnn, "deterministic", True),
             (torch.backends.cudnn, "benchmark", False))
    saved = [getattr(owner, name) for owner, name, _ in flags]
    for owner, name, value in flags:
        setattr(owner, name, value)
    yield
    for (owner, name, _), value in zip(flags, saved, strict=True):
        setattr(owner, name, value)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return save_cache(synthetic_images(80, 16), tmp_path_factory.mktemp("cache"),
                      "synthetic_images(80, 16)")


def tiny(cache, **kwargs) -> TrainConfig:
    return image_config(cache.path, **{"iters": 4, **TINY, **kwargs})


def record_critic_batches(trainer: Trainer) -> list[torch.Tensor]:
    """Wrap the reference step's ``critic_step`` so that every real batch it is given is kept
    (on the CPU)."""
    reference = trainer.step.reference
    seen, step = [], reference.critic_step

    def recording(real, fake):
        seen.append(real.detach().cpu().clone())
        return step(real, fake)

    reference.critic_step = recording
    return seen


def max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p.float() - q.float()).abs().max().item()
               for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def assert_same_run(plain: Trainer, fast: Trainer, atol: float) -> None:
    assert max_difference(plain.generator, fast.generator) <= atol
    assert max_difference(plain.critic, fast.critic) <= atol
    for row_p, row_f in zip(plain.history.rows, fast.history.rows, strict=True):
        for key in ("w_estimate", "loss_g", "grad_norm_critic", "grad_norm_generator"):
            assert row_f[key] == pytest.approx(row_p[key], rel=1e-4, abs=atol)


# ------------------------------------------------------------------ same maths, CPU
@pytest.mark.parametrize("extra", [{}, {"clip_timing": "before", "lr": 1e-2},
                                   {"optimizer": "adam", "generator": "dcgan-nobn"}])
def test_fast_path_matches_the_plain_loop_on_the_same_batches(cache, extra):
    plain = Trainer(tiny(cache, iters=6, fast=False, **extra), progress=False)
    fast = Trainer(tiny(cache, iters=6, fast=True, **extra), progress=False)
    assert isinstance(plain.step, ReferenceStep) and isinstance(fast.step, FastStep)
    assert not fast.step.graphs  # eager on the CPU
    batches_plain, batches_fast = record_critic_batches(plain), record_critic_batches(fast)
    plain.run()
    fast.run()
    assert len(batches_fast) == len(batches_plain) == 6 * 2
    for real_p, real_f in zip(batches_plain, batches_fast, strict=True):
        torch.testing.assert_close(real_f, real_p, rtol=0, atol=0)  # the same batches
    assert max_difference(plain.critic, Trainer(tiny(cache, **extra), progress=False).critic) \
        > 1e-4  # the critic did move
    assert_same_run(plain, fast, atol=1e-6)


def test_fast_path_keeps_the_warmup_schedule(cache):
    trainer = Trainer(tiny(cache, iters=2, critic_warmup=True, fast=True), progress=False)
    batches = record_critic_batches(trainer)
    counts = []
    for _ in range(trainer.config.iters):
        before = len(batches)
        trainer.train_step()
        trainer.iteration += 1
        counts.append(len(batches) - before)
    assert counts == [100, 100]
    assert critic_steps(trainer.config, 600) == 2 and critic_steps(trainer.config, 500) == 100


@pytest.mark.parametrize("timing", ["after", "before"])
def test_fast_path_clips_when_the_plain_loop_does(cache, timing):
    config = tiny(cache, iters=3, lr=1e-2, clip_timing=timing, fast=True)
    trainer = Trainer(config, progress=False)
    trainer.run()
    largest = max(p.abs().max().item() for p in trainer.critic.parameters())
    if timing == "after":  # Algorithm 1: every critic the generator sees is clipped
        assert largest <= config.clip
    else:  # the authors' code: the last critic step of a phase is not clamped yet
        assert largest > config.clip * 1.5


def test_fast_path_resumes_exactly(cache, tmp_path):
    ckpt = str(tmp_path / "ckpt.pt")
    whole = Trainer(tiny(cache, iters=4, fast=True), progress=False)
    whole.run()
    first = Trainer(tiny(cache, iters=2, checkpoint=ckpt, checkpoint_every=2, fast=True),
                    progress=False)
    first.run()
    resumed = Trainer.resume(ckpt, tiny(cache, iters=4, checkpoint=ckpt, fast=True),
                             progress=False)
    resumed.run()
    assert max_difference(whole.generator, resumed.generator) == 0
    assert max_difference(whole.critic, resumed.critic) == 0
    assert [r["w_estimate"] for r in resumed.history.rows] == \
        [r["w_estimate"] for r in whole.history.rows]


def test_fast_path_in_bf16_and_channels_last_stays_close_on_the_cpu(cache):
    start, fp32, bf16 = (Trainer(tiny(cache, iters=2, fast=True), progress=False)
                         for _ in range(3))
    bf16.step = FastStep(bf16.step.reference, bf16=True, channels_last=True)
    fp32.run()
    bf16.run()
    assert bf16.critic.main[0].weight.is_contiguous(memory_format=torch.channels_last)
    for name in ("generator", "critic"):
        w0, w32, w16 = (torch.cat([p.detach().flatten() for p in getattr(t, name).parameters()])
                        for t in (start, fp32, bf16))
        # bf16 rounds the forward passes: the weights differ, by much less than training moved them
        assert 0 < (w16 - w32).abs().mean() < 0.25 * (w32 - w0).abs().mean()


# ------------------------------------------------------------------ choice and bad input
def test_fast_is_chosen_by_one_option(cache, monkeypatch):
    assert not use_fast(tiny(cache))  # CPU: off unless asked
    # Pretend one GPU is visible so that device="cuda" passes TrainConfig's device check.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cuda = TrainConfig(target="images", data="x", device="cuda")
    assert use_fast(cuda) and not use_fast(cuda, world=2)
    assert not use_fast(TrainConfig(target="images", data="x", device="cuda", constraint="gp"))
    assert not use_fast(TrainConfig(target="images", data="x", device="cuda", fast=False))
    args = build_parser().parse_args(["lsun", "train", "--out", "x", "--no-fast"])
    assert args.fast is False


def test_the_cache_goes_to_the_gpu_only_if_it_fits_beside_the_headroom(monkeypatch):
    free = 10 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free, 80 << 30))
    gpu = torch.device("cuda")
    assert choose_placement(free - DEVICE_HEADROOM, gpu) == "device"
    assert choose_placement(free - DEVICE_HEADROOM + 1, gpu) == "host"
    assert choose_placement(10**15, torch.device("cpu")) == "device"


def test_bad_fast_settings_raise_one_line_errors(cache):
    with pytest.raises(ValueError, match=r"^fast must be False or None for a toy target, got True"):
        TrainConfig(fast=True)
    with pytest.raises(ValueError,
                       match=r"^fast must be False or None with constraint='gp', got True"):
        tiny(cache, fast=True, constraint="gp")
    with pytest.raises(ValueError, match=r"^fast must be .*, got 'yes'"):
        tiny(cache, fast="yes")
    trainer = Trainer(tiny(cache, fast=False), progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"^graphs=True is not allowed on device='cpu'"):
            FastStep(trainer.step, graphs=True)
    with pytest.raises(ValueError, match=r"^placement='disk' is not known"):
        FastStep(trainer.step, placement="disk")


# ------------------------------------------------------------------ CUDA graphs
@CUDA
@pytest.mark.usefixtures("same_maths")
@pytest.mark.parametrize("extra", [{}, {"clip_timing": "before", "lr": 1e-2}])
def test_cuda_graphs_match_the_plain_loop_on_the_same_batches(cache, extra):
    # Host placement draws from the plain loop's CPU stream, so both see the same batches.
    plain = Trainer(tiny(cache, iters=6, device="cuda", fast=False, **extra), progress=False)
    fast = Trainer(tiny(cache, iters=6, device="cuda", fast=True, **extra), progress=False)
    fast.step = FastStep(fast.step.reference, graphs=True, placement="host")
    plain.run()
    fast.run()
    assert_same_run(plain, fast, atol=FP32_ROUNDOFF)


@CUDA
@pytest.mark.usefixtures("same_maths")
def test_cuda_graphs_resume_exactly_with_the_images_on_the_gpu(cache, tmp_path):
    ckpt = str(tmp_path / "ckpt.pt")
    whole = Trainer(tiny(cache, iters=4, device="cuda"), progress=False)
    assert whole.step.graphs and whole.step.images.placement == "device"
    whole.run()
    first = Trainer(tiny(cache, iters=2, device="cuda", checkpoint=ckpt, checkpoint_every=2),
                    progress=False)
    first.run()
    resumed = Trainer.resume(ckpt, tiny(cache, iters=4, device="cuda", checkpoint=ckpt),
                             progress=False)
    resumed.run()
    assert max_difference(whole.critic, resumed.critic) <= 1e-6
    assert max(p.abs().max().item() for p in whole.critic.parameters()) <= whole.config.clip


def record_draws(step: FastStep) -> list[torch.Tensor]:
    """Wrap the fast step's image draws so that every real batch drawn is kept (on the CPU), the
    capture's warm-up draws included."""
    seen, draw = [], step.images.draw

    def recording(out, generator):
        seen.append(draw(out, generator).detach().cpu().clone())
        return out

    step.images.draw = recording
    return seen


@pytest.mark.usefixtures("same_maths")
@pytest.mark.parametrize("device", DEVICES)
def test_warmup_iterations_through_the_graphs_match_the_plain_loop(cache, device):
    # The authors' warm-up: 100 critic steps before each of the first 25 generator iterations.
    # On a GPU the one captured critic graph is replayed 100 times per iteration. Host placement
    # draws from the plain loop's CPU stream, so both loops see the same batches.
    run = dict(iters=3, critic_warmup=True, device=device)
    plain = Trainer(tiny(cache, fast=False, **run), progress=False)
    fast = Trainer(tiny(cache, fast=True, **run), progress=False)
    graphs = device == "cuda"
    fast.step = FastStep(fast.step.reference, graphs=graphs, placement="host")
    assert [critic_steps(plain.config, i) for i in range(3)] == [100] * 3
    batches_plain, batches_fast = record_critic_batches(plain), record_draws(fast.step)
    plain.run()
    fast.run()
    assert len(batches_plain) == 300
    # before capturing, the graphs' warm-up draws CAPTURE_WARMUP batches, then rewinds the stream
    warmup = CAPTURE_WARMUP if graphs else 0
    assert len(batches_fast) == warmup + 300
    for real_p, real_f in zip(batches_plain, batches_fast[warmup:], strict=True):
        torch.testing.assert_close(real_f, real_p)  # the same batches (p / 127.5 - 1, rounded)
    assert max_difference(plain.critic, Trainer(tiny(cache, **run), progress=False).critic) \
        > 1e-4  # the critic did move
    assert_same_run(plain, fast, atol=FP32_ROUNDOFF)


@pytest.mark.usefixtures("same_maths")
@pytest.mark.parametrize("device", DEVICES)
def test_ctrl_c_during_a_fast_run_saves_a_checkpoint_that_resumes_to_the_same_run(cache, tmp_path,
                                                                                  device):
    # A real SIGINT while generator iteration 3 runs (on a GPU: between replays of the graphs
    # captured at iteration 1); the run finishes that step, saves and stops; resumed (graphs
    # captured again), it ends where the run made in one go ends.
    ckpt = str(tmp_path / "ckpt.pt")
    run = dict(iters=6, device=device, fast=True)
    whole = Trainer(tiny(cache, **run), progress=False)
    whole.run()
    stopped = Trainer(tiny(cache, checkpoint=ckpt, **run), progress=False)
    assert stopped.step.graphs == (device == "cuda")
    step, draw_noise, sent = stopped.step, stopped.step._draw_noise, []

    def ctrl_c_then_draw():
        if stopped.iteration == 2 and not sent:  # iteration 3, before its first critic step
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        draw_noise()

    step._draw_noise = ctrl_c_then_draw
    stopped.run()
    assert sent and stopped.interrupted and stopped.iteration == 3
    assert checkpoint.load(ckpt)["iteration"] == 3
    resumed = Trainer.resume(ckpt, tiny(cache, checkpoint=ckpt, **run), progress=False)
    assert resumed.iteration == 3 and resumed.step.graphs == (device == "cuda")
    resumed.run()
    assert resumed.iteration == 6 and not resumed.interrupted
    # the CPU is exact; on a GPU the graphs captured again replay the same kernels, so equal
    # up to fp32 round-off at most
    atol = 0 if device == "cpu" else FP32_ROUNDOFF
    assert max_difference(whole.generator, resumed.generator) <= atol
    assert max_difference(whole.critic, resumed.critic) <= atol
    assert [r["iteration"] for r in resumed.history.rows] == list(range(1, 7))
    for row_w, row_r in zip(whole.history.rows, resumed.history.rows, strict=True):
        assert row_r["w_estimate"] == pytest.approx(row_w["w_estimate"], rel=1e-4, abs=atol)
