"""Tests of labkit.critics: trained discriminators and critics on fixed pairs, against the paper's
closed forms (Example 1: JS = log 2, W1 = |theta|), the analytic optimal discriminator
p_r / (p_r + p_g), exact OT gradients, and one-line errors."""

import math

import numpy as np
import pytest
import torch

from labkit import critics, ot, toys
from labkit.critics import CriticConfig, train_critic
from labkit.tests.conftest import seeded
from labkit.widgets import example1_samples

GAN = CriticConfig(loss="gan", constraint="none", steps=300)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("theta", [-1.0, -0.2, 0.2, 0.5])
def test_discriminator_js_estimate_is_log2_on_example1(theta):
    # Paper, Example 1 and Figure 1: JS = log 2 for every theta != 0; a discriminator trained
    # to near optimality reaches it, however close the lines are.
    real, fake = example1_samples(theta, 128, seed=0)
    fit = train_critic(real, fake, GAN)
    assert fit.estimate == pytest.approx(math.log(2), abs=0.05)
    assert fit.estimate <= math.log(2) + 1e-6  # a lower bound on JS of the empirical laws


def test_clipped_critic_estimate_is_monotone_in_abs_theta_and_a_fixed_fraction_of_w1():
    thetas = [0.1, 0.2, 0.5, 1.0]
    estimates, exact = [], []
    for theta in thetas:
        real, fake = example1_samples(theta, 128, seed=0)
        estimates.append(train_critic(real, fake, CriticConfig(steps=300)).estimate)
        exact.append(ot.w1(real, fake))
    assert np.all(np.diff(estimates) > 0)
    ratios = np.array(estimates) / np.array(exact)
    # "Up to a constant" (paper, Section 3): one K for every theta, far below 1 at c = 0.01.
    assert ratios.max() < 0.01 and ratios.min() > 0.5 * ratios.max()
    gp = train_critic(*example1_samples(0.5, 128, seed=0), CriticConfig(constraint="gp", steps=300))
    assert gp.estimate == pytest.approx(exact[2], rel=0.1)  # the penalised critic has K close to 1


def test_optimal_discriminator_is_the_density_ratio():
    # Goodfellow et al. 2014, Prop. 1: D*(x) = p_r / (p_r + p_g). The paper's pair (means -5, +5)
    # has no region where both densities are appreciable, so the close pair (-1, +1) checks the
    # formula and the paper's pair checks saturation where either density is not tiny.
    for mu, floor, tol in [(1.0, 0.05, 0.05), (5.0, 1e-3, 1e-3)]:
        pair = toys.figure2_pair(-mu, mu)
        g = seeded(0)
        real, fake = pair.real.sample(1000, g), pair.fake.sample(1000, g)
        config = CriticConfig(loss="gan", constraint="none", hidden=16, depth=1, steps=300, lr=3e-2)
        fit = train_critic(real, fake, config)
        x = pair.grid(161)
        p_r, p_g = pair.real.pdf(x), pair.fake.pdf(x)
        with torch.no_grad():
            d = torch.sigmoid(fit.critic(torch.tensor(x, dtype=torch.float32)[:, None])).numpy()
        where = (p_r > floor) & (p_g > floor) if mu == 1.0 else (p_r + p_g > floor)
        assert where.sum() > 10
        np.testing.assert_allclose(d[where], (p_r / (p_r + p_g))[where], atol=tol)


def test_figure2_discriminator_gradient_vanishes_and_critic_gradient_does_not():
    pair = toys.figure2_pair()
    g = seeded(1)
    real, fake = pair.real.sample(256, g), pair.fake.sample(256, g)
    gan = train_critic(real, fake, GAN, record_every=100)
    wgan = train_critic(real, fake, CriticConfig(constraint="gp", steps=300), record_every=100)
    assert gan.history["step"] == [0, 100, 200, 300]
    assert gan.history["grad_fake"][-1] < 1e-4 * gan.history["grad_fake"][0]
    # The critic's slope at the fakes grows and stays (about 1.5: the penalty is a soft constraint).
    assert 1.0 < wgan.history["grad_fake"][-1] < 2.0
    assert min(wgan.history["grad_fake"][1:]) > 0.5 * max(wgan.history["grad_fake"])


def test_gp_critic_gradient_points_along_the_exact_ot_gradient():
    g = seeded(2)
    real = toys.ring().sample(128, g)
    fake = 0.3 * torch.randn(128, 2, generator=g)
    fit = train_critic(real, fake, CriticConfig(constraint="gp", steps=300))
    cos = critics.exact_gradient_cosine(fit.critic, real, fake)
    assert cos.shape == (128,) and np.nanmean(cos) > 0.9
    # The generator's WGAN gradient is -grad f, and the minimax GAN's -D grad f.
    grad_f = critics.input_gradient(fit.critic, fake)
    np.testing.assert_allclose(critics.input_gradient(fit.critic, fake, "wgan"), -grad_f)


def test_clipped_weights_stay_in_the_box_and_layer_norms_have_one_entry_per_layer():
    real, fake = example1_samples(0.5, 64, seed=0)
    config = CriticConfig(clip=0.05, depth=4, steps=50)
    fit = train_critic(real, fake, config)
    w = critics.weight_values(fit.critic)
    assert w.shape == (2 * 64 + 3 * 64 * 64 + 64,)
    assert np.abs(w).max() <= 0.05 + 1e-7 and np.mean(np.abs(w) > 0.049) > 0.2  # piled at +-c
    norms = critics.layer_gradient_norms(fit.critic, real, fake)
    assert norms.shape == (5,) and np.all(norms > 0)
    assert all(p.grad is None for p in fit.critic.parameters())
    sn = train_critic(real, fake, CriticConfig(constraint="sn", depth=2, steps=200))
    assert critics.layer_gradient_norms(sn.critic, real, fake).shape == (3,)
    top = [
        torch.linalg.matrix_norm(m.weight.detach(), ord=2).item()
        for m in sn.critic.modules()
        if isinstance(m, torch.nn.Linear)
    ]
    assert top == pytest.approx([1.0] * 3, abs=0.05)  # spectral norm: sigma(W) = 1


@pytest.mark.parametrize("constraint", ["gp", "sn"])
def test_training_is_deterministic_for_a_seed(constraint):
    real, fake = example1_samples(0.3, 64, seed=0)
    config = CriticConfig(constraint=constraint, steps=20, seed=3)
    first = train_critic(real, fake, config).estimate
    torch.manual_seed(123)  # the global RNG (spectral norm's power iteration) must not matter
    assert train_critic(real, fake, config).estimate == first


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clip": 0.0}, "clip must be a finite number > 0, got 0.0"),
        ({"clip": -1}, "clip must be"),
        ({"clip": float("nan")}, "clip must be a finite number > 0, got nan"),
        ({"depth": 0}, "depth must be an integer >= 1, got 0"),
        ({"constraint": "weight-norm"}, "constraint must be one of"),
        ({"loss": "gan-logd"}, "loss must be one of"),
        ({"lr": float("inf")}, "lr must be"),
        ({"steps": -1}, "steps must be an integer >= 0"),
        ({"betas": (0.5, 1.0)}, "betas must be"),
    ],
)
def test_bad_config_raises_one_line_error_naming_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        CriticConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_points_raise():
    real, fake = example1_samples(0.5, 8)
    with pytest.raises(ValueError, match="fake must be finite"):
        train_critic(real, torch.full((8, 2), float("nan")))
    with pytest.raises(ValueError, match="real and fake must have the same dimension"):
        train_critic(real, fake[:, :1])
    with pytest.raises(ValueError, match="record_every must be an integer >= 0"):
        train_critic(real, fake, record_every=-1)
