"""Image runs through the one training loop: the image data source, each generator of the
paper's Figures 5 to 7 for a few iterations, exact resume, the authors' defaults, and one-line
errors for bad input. Everything is 16 x 16 with tiny models so that it runs on the CPU."""

import json
import re

import numpy as np
import pytest
import torch

from labkit.datasets import ImageDataset, iters_for_epochs, synthetic_images
from labkit.images import save_cache, to_unit_range
from labkit.train import TrainConfig, Trainer, check_runtime, image_config

N_IMAGES, HOLDOUT = 80, 16
TINY = dict(image_size=16, ngf=4, ndf=4, hidden=16, batch_size=8, n_critic=2,
            critic_warmup=False, eval_every=2, eval_samples=HOLDOUT)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return save_cache(synthetic_images(N_IMAGES, 16), tmp_path_factory.mktemp("cache"),
                      "synthetic_images(80, 16)")


def tiny(cache, **kwargs) -> TrainConfig:
    return image_config(cache.path, **{"iters": 4, **TINY, **kwargs})


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------ data source
def test_dataset_returns_the_drawn_rows_in_unit_range(cache):
    data = ImageDataset(cache, holdout=HOLDOUT)
    got = data.sample(200, torch.Generator().manual_seed(5))
    rows = torch.randint(N_IMAGES - HOLDOUT, (200,), generator=torch.Generator().manual_seed(5))
    expected = np.asarray(cache.images)[rows.numpy()].astype(np.float64) / 127.5 - 1
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    assert int(rows.max()) < N_IMAGES - HOLDOUT  # the held-out images are never drawn
    torch.testing.assert_close(data.heldout(), to_unit_range(cache.images[N_IMAGES - HOLDOUT:]))


def test_ranks_share_one_draw(cache):
    whole = ImageDataset(cache).sample(12, torch.Generator().manual_seed(1))
    shares = [ImageDataset(cache, rank=r, world=3).sample(12, torch.Generator().manual_seed(1))
              for r in range(3)]
    for r, share in enumerate(shares):
        torch.testing.assert_close(share, whole[r::3], rtol=0, atol=0)


def test_epochs_map_to_generator_iterations(cache):
    # One epoch = (N - holdout) / batch_size critic steps = that / n_critic generator iterations.
    assert iters_for_epochs(640, 1, 64, 5) == 2
    assert iters_for_epochs(3_033_042, 25, 64, 5) == 236_957
    assert image_config(cache.path, image_size=16, eval_samples=HOLDOUT).iters == \
        int(np.ceil(25 * (N_IMAGES - HOLDOUT) / (64 * 5)))


def test_image_defaults_are_the_authors(cache):
    c = image_config(cache.path, image_size=16, eval_samples=HOLDOUT)
    assert (c.batch_size, c.nz, c.ngf, c.ndf, c.optimizer, c.lr, c.clip, c.n_critic) == \
        (64, 100, 64, 64, "rmsprop", 5e-5, 0.01, 5)
    assert (c.critic_warmup, c.generator, c.critic_batchnorm, c.target) == \
        (True, "dcgan", True, "images")
    assert TrainConfig().image_size == 64


# ------------------------------------------------------------------ training
@pytest.mark.parametrize("generator", ["dcgan", "dcgan-nobn", "dcgan-const", "mlp"])
def test_each_generator_trains_a_few_iterations(cache, generator):
    grids = {}
    t = Trainer(tiny(cache, generator=generator), progress=False,
                callbacks=[lambda e: e.name == "eval" and grids.update({e.iteration: e.grid})])
    before = state(t.generator)
    t.run()
    assert len(t.history.rows) == 4 and all(np.isfinite(r["w_estimate"]) for r in t.history.rows)
    assert [e["iteration"] for e in t.history.evals] == [0, 2, 4]
    assert all(e["swd"] > 0 and e["swd"] == e["swd_16"] for e in t.history.evals)
    assert list(grids) == [0, 2, 4] and not torch.equal(grids[0], grids[4])
    # the eval event's grid is the fixed noise's samples from the generator at that iteration
    torch.testing.assert_close(grids[4], t.samples()[1][0], rtol=0, atol=0)
    assert tuple(grids[4].shape) == (64, 3, 16, 16)
    assert grids[4].abs().max() <= 1 or generator == "mlp"  # only DCGAN ends in tanh
    assert max(p.abs().max().item() for p in t.critic.parameters()) <= 0.01
    assert any(not torch.equal(before[k], v) for k, v in state(t.generator).items())
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in t.generator.modules())
    assert has_bn == (generator == "dcgan")
    if generator.startswith("dcgan"):  # at 16 x 16, ngf 4: 8 then 4 filters, or 4 and 4
        widths = [m.out_channels for m in t.generator.modules()
                  if isinstance(m, torch.nn.ConvTranspose2d)][:2]
        assert widths == ([4, 4] if generator == "dcgan-const" else [8, 4])


def test_mlp_critic_for_images_is_the_authors_mlp_d(cache):
    # Figure 3, lower half: MLP generator and MLP critic (the authors' --mlp_G --mlp_D).
    t = Trainer(tiny(cache, generator="mlp", mlp_critic=True), progress=False)
    linears = [m for m in t.critic.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == \
        [(3 * 16 * 16, 16), (16, 16), (16, 16), (16, 1)]
    assert t.step.reference.joint_critic_pass  # no BatchNorm: real and fake go through together
    t.run()
    assert all(np.isfinite(r["w_estimate"]) for r in t.history.rows)
    assert max(p.abs().max().item() for p in t.critic.parameters()) <= 0.01
    default = Trainer(tiny(cache), progress=False)
    assert type(default.critic).__name__ == "DCGANCritic"


def test_checkpoint_without_a_later_field_resumes_with_its_default(cache, tmp_path):
    path = str(tmp_path / "ckpt.pt")
    Trainer(tiny(cache, iters=2, checkpoint=path), progress=False).run()
    saved = torch.load(path, weights_only=True)
    del saved["config"]["mlp_critic"]  # as saved before the field existed
    torch.save(saved, path)
    resumed = Trainer.resume(path, tiny(cache, iters=4, checkpoint=path), progress=False)
    assert resumed.iteration == 2
    with pytest.raises(ValueError, match="mlp_critic: False -> True"):
        Trainer.resume(path, tiny(cache, iters=4, checkpoint=path, mlp_critic=True,
                                  generator="mlp"), progress=False)


def test_image_resume_is_bit_exact(cache, tmp_path):
    cfg = dict(clip_timing="before", n_critic=3)
    one_go = Trainer(tiny(cache, iters=6, **cfg), progress=False)
    one_go.run()
    path = str(tmp_path / "ckpt.pt")
    Trainer(tiny(cache, iters=3, checkpoint=path, **cfg), progress=False).run()
    resumed = Trainer.resume(path, tiny(cache, iters=6, checkpoint=path, **cfg), progress=False)
    resumed.run()
    for a, b in [(one_go.generator, resumed.generator), (one_go.critic, resumed.critic)]:
        sa, sb = state(a), state(b)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)  # BatchNorm running stats included
    cols_a, cols_b = one_go.history.as_dict(), resumed.history.as_dict()
    cols_a.pop("time"), cols_b.pop("time")
    assert json.dumps(cols_a) == json.dumps(cols_b)
    assert torch.equal(one_go.evaluator.grid, resumed.evaluator.grid)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, message", [
    (dict(image_size=48), "image_size must be a power of two >= 16 (16, 32, 64, ...: what the "
                          "DCGAN models build), got 48"),
    (dict(image_size=8), "image_size must be a power of two >= 16 "),
    (dict(generator="resnet"), "generator must be one of dcgan, dcgan-nobn, dcgan-const, mlp, "
                                     "got 'resnet'"),
    (dict(data=None), "data must be the folder of an image cache (python -m labkit lsun prepare) "
                      "when target='images', got None"),
    (dict(n_seeds=2), "n_seeds must be 1 for image runs, got 2"),
])
def test_bad_image_config_is_one_line_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        TrainConfig(**{"target": "images", "data": "somewhere", **kwargs})


def test_cache_of_another_size_or_too_small_is_refused(cache, tmp_path):
    with pytest.raises(ValueError, match="^image_size=32 does not match the cache at .* made at "
                                         "size 16"):
        Trainer(tiny(cache, image_size=32), progress=False)
    with pytest.raises(ValueError, match=r"^eval_samples must be fewer than the 80 images of the "
                                         r"cache at .*, got 80 \(the rest are trained on\)$"):
        Trainer(tiny(cache, eval_samples=80), progress=False)
    with pytest.raises(FileNotFoundError, match="^data must be the folder of an image cache, got "
                                                ".*: no such folder$"):
        Trainer(TrainConfig(**{**TINY, "target": "images", "data": str(tmp_path / "none")}),
                progress=False)


def test_toys_refuse_image_generators():
    with pytest.raises(ValueError, match="^generator must be 'mlp' for toy targets"):
        TrainConfig(generator="dcgan")


def test_runtime_checks_name_the_problem():
    with pytest.raises(ValueError, match="^target must be 'images' with 2 processes"):
        check_runtime(TrainConfig(), 2)
    with pytest.raises(ValueError, match="^batch_size must be divisible by the 3 processes, "
                                         "got 64"):
        check_runtime(TrainConfig(target="images", data="x"), 3)
    check_runtime(TrainConfig(target="images", data="x"), 2)
