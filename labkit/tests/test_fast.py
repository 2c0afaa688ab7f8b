"""The fast path (:mod:`labkit.train.fast`) against the plain loop: the same parameters after N
steps on the same batches, the warm-up schedule, clipping timing, exact resume, and one-line
errors.
CPU tests run it eagerly (16 x 16, tiny models); the CUDA-graph variants need a GPU."""

import pytest
import torch

from labkit.cli import build_parser
from labkit.datasets import synthetic_images
from labkit.images import save_cache
from labkit.train import ReferenceStep, TrainConfig, Trainer, critic_steps, image_config, use_fast
from labkit.train.fast import DEVICE_HEADROOM, FastStep, choose_placement

HOLDOUT = 16
TINY = dict(image_size=16, ngf=4, ndf=4, batch_size=8, n_critic=2, critic_warmup=False,
            eval_every=100, eval_samples=HOLDOUT)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


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
@pytest.mark.parametrize("extra", [{}, {"clip_timing": "before", "lr": 1e-2}])
def test_cuda_graphs_match_the_plain_loop_on_the_same_batches(cache, extra):
    # Host placement draws from the plain loop's CPU stream, so both see the same batches.
    torch.backends.cudnn.deterministic = True
    plain = Trainer(tiny(cache, iters=6, device="cuda", fast=False, **extra), progress=False)
    fast = Trainer(tiny(cache, iters=6, device="cuda", fast=True, **extra), progress=False)
    fast.step = FastStep(fast.step.reference, graphs=True, placement="host")
    plain.run()
    fast.run()
    assert_same_run(plain, fast, atol=1e-5)


@CUDA
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
