"""Tests of labkit.gan: loss signs and values against hand formulas and torch's BCE, the
Jensen-Shannon bound against scipy, each Lipschitz constraint against a separate computation,
and the two registries."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist, jensenshannon
from torch import nn

from labkit import ot
from labkit.gan import constraints, losses
from labkit.gan.constraints import (
    CONSTRAINTS,
    Compose,
    Constraint,
    EnsembleSpectralNorm,
    GradientPenalty,
    SpectralNorm,
    WeightClipping,
    clip_parameters_,
    critic_update,
    make_constraint,
)
from labkit.gan.losses import (
    LOSSES,
    critic_estimate,
    critic_loss,
    distance_estimate,
    generator_loss,
)
from labkit.models import DCGANCritic, EnsembleLinear, EnsembleMLPCritic, MLPCritic
from labkit.tests.conftest import seeded

# --------------------------------------------------------------------------- losses


def test_wgan_sign_and_estimate_under_a_linear_critic():
    u = torch.tensor([0.6, 0.8])  # unit vector: f(x) = <u, x> is 1-Lipschitz
    real = torch.randn(1000, 2, generator=seeded(0))
    fake_far = real - 5.0 * u
    fake_other = torch.randn(1000, 2, generator=seeded(1)) - 3.0 * u
    loss_far = critic_loss("wgan", real @ u, fake_far @ u)
    assert distance_estimate("wgan", loss_far).item() == pytest.approx(5.0, abs=1e-5)
    gap = ((real.mean(0) - fake_other.mean(0)) @ u).item()
    w_other = distance_estimate("wgan", critic_loss("wgan", real @ u, fake_other @ u)).item()
    assert w_other == pytest.approx(gap, abs=1e-5) and gap > 2.5
    assert distance_estimate("wgan", critic_loss("wgan", real @ u, real @ u)).item() == 0.0
    # The authors' network learns -f and prints Loss_D = netD(real) - netD(fake): our critic loss.
    loss_d = (-(real @ u)).mean() - (-(fake_far @ u)).mean()
    torch.testing.assert_close(loss_far, loss_d)
    assert loss_d < 0


def test_wgan_generator_loss_and_ensemble_reduction():
    f_real, f_fake = torch.randn(3, 6), torch.randn(3, 4)
    loss = critic_loss("wgan", f_real, f_fake)
    assert loss.shape == (3,)
    for s in range(3):
        assert loss[s].item() == pytest.approx(
            f_fake[s].sum().item() / 4 - f_real[s].sum().item() / 6, abs=1e-6
        )
    torch.testing.assert_close(generator_loss("wgan", f_fake), -f_fake.sum(-1) / 4)


def test_gan_critic_loss_equals_binary_cross_entropy():
    l_real, l_fake = 3 * torch.randn(2, 8), 3 * torch.randn(2, 5)
    loss = critic_loss("gan", l_real, l_fake)
    for s in range(2):
        expected = F.binary_cross_entropy(
            torch.sigmoid(l_real[s]), torch.ones(8)
        ) + F.binary_cross_entropy(torch.sigmoid(l_fake[s]), torch.zeros(5))
        torch.testing.assert_close(loss[s], expected)
    torch.testing.assert_close(critic_loss("gan-logd", l_real, l_fake), loss)


def test_gan_generator_losses_equal_log_d_formulas():
    logits = 3 * torch.randn(16, dtype=torch.float64)
    d = torch.sigmoid(logits)
    torch.testing.assert_close(generator_loss("gan", logits), torch.log(1 - d).mean())
    torch.testing.assert_close(generator_loss("gan-logd", logits), -torch.log(d).mean())


def test_gan_losses_stay_finite_when_saturated():
    big = torch.tensor([100.0])
    assert critic_loss("gan", -big, big).item() == pytest.approx(200.0)
    assert generator_loss("gan-logd", -big).item() == pytest.approx(100.0)
    assert generator_loss("gan", -big).item() == pytest.approx(-math.exp(-100.0), abs=1e-40)


def test_js_bound_approaches_log2_for_disjoint_supports():
    bounds = []
    for t in (2.0, 5.0, 10.0, 30.0, 100.0):
        l_real = torch.full((4,), t, dtype=torch.float64)
        bound = distance_estimate("gan", critic_loss("gan", l_real, -l_real)).item()
        assert bound == pytest.approx(math.log(2) - math.log1p(math.exp(-t)), abs=1e-12)
        bounds.append(bound)
    assert bounds == sorted(bounds)
    assert bounds[-1] == pytest.approx(math.log(2), abs=1e-12)


def test_js_bound_is_tight_at_the_optimal_discriminator():
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    real_points, fake_points = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 2, 2])
    logit = torch.log(p / q)  # D* = p / (p + q)
    bound = distance_estimate("gan", critic_loss("gan", logit[real_points], logit[fake_points]))
    assert bound.item() == pytest.approx(jensenshannon(p.numpy(), q.numpy()) ** 2, abs=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda: critic_loss("hinge", torch.zeros(2), torch.zeros(2)),
        lambda: generator_loss("WGAN", torch.zeros(2)),
        lambda: distance_estimate("js", 0.0),
    ],
)
def test_unknown_loss_lists_the_choices(call):
    with pytest.raises(ValueError, match=r"loss must be one of \('wgan', 'gan', 'gan-logd'\)"):
        call()
    assert LOSSES == ("wgan", "gan", "gan-logd")


# --------------------------------------------------------------------------- weight clipping


def small_bn_critic(seed=0):
    return DCGANCritic(16, nc=1, ndf=2, generator=seeded(seed))


def test_clipping_clamps_every_parameter_batchnorm_included():
    critic = small_bn_critic()
    expected = [p.detach().clamp(-0.01, 0.01) for p in critic.parameters()]  # the authors' loop
    gammas = [m.weight for m in critic.modules() if isinstance(m, nn.BatchNorm2d)]
    assert gammas and all((g > 0.5).all() for g in gammas)
    WeightClipping(0.01).after_critic_step(critic)
    for p, e in zip(critic.parameters(), expected, strict=True):
        assert torch.equal(p, e)
    assert all(torch.equal(g, torch.full_like(g, 0.01)) for g in gammas)


def _sgd_step(critic, constraint, real, fake, lr):
    """One critic step in the order the loop uses; returns the parameters afterwards."""
    optimizer = torch.optim.SGD(critic.parameters(), lr=lr)
    constraint.before_critic_step(critic)
    optimizer.zero_grad()
    critic_loss("wgan", critic(real), critic(fake)).backward()
    optimizer.step()
    constraint.after_critic_step(critic)
    return [p.detach().clone() for p in critic.parameters()]


def _hand_step(critic, real, fake, lr):
    """p - lr * grad with torch.autograd.grad on a copy."""
    params = list(critic.parameters())
    loss = critic(fake).mean() - critic(real).mean()
    grads = torch.autograd.grad(loss, params)
    return [(p - lr * g).detach() for p, g in zip(params, grads, strict=True)]


def test_clipping_timing_after_versus_before():
    c, lr = 0.01, 0.5
    real, fake = torch.randn(8, 1, 16, 16), torch.randn(8, 1, 16, 16) + 1.0
    initial = small_bn_critic()

    after = _sgd_step(copy.deepcopy(initial), WeightClipping(c, "after"), real, fake, lr)
    expected_after = [p.clamp(-c, c) for p in _hand_step(copy.deepcopy(initial), real, fake, lr)]

    critic_before = copy.deepcopy(initial)
    before = _sgd_step(critic_before, WeightClipping(c, "before"), real, fake, lr)
    clamped = clip_parameters_(copy.deepcopy(initial), c)
    expected_before = _hand_step(clamped, real, fake, lr)

    for got, want in zip(after + before, expected_after + expected_before, strict=True):
        torch.testing.assert_close(got, want)
    assert max(p.abs().max().item() for p in after) <= c
    assert max(p.abs().max().item() for p in before) > c  # the generator sees this critic
    WeightClipping(c, "before").before_critic_step(critic_before)  # next critic step
    assert max(p.abs().max().item() for p in critic_before.parameters()) <= c


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clip": 0.0}, "clip must be a finite number > 0, got 0.0"),
        ({"clip": -0.01}, "clip must be"),
        ({"clip": float("nan")}, "clip must be"),
        ({"timing": "during"}, "timing must be one of after, before, got 'during'"),
    ],
)
def test_clipping_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WeightClipping(**kwargs)


# --------------------------------------------------------------------------- gradient penalty


def test_gradient_penalty_of_a_linear_critic_is_exact_and_trains():
    critic = MLPCritic(3, depth=0, generator=seeded(0))  # f(x) = <w, x> + b, grad w everywhere
    real, fake = torch.randn(5, 3), torch.randn(5, 3)
    lam = 10.0
    penalty = GradientPenalty(lam).penalty(critic, real, fake, seeded(1))
    w = critic.main[0].weight.detach()[0]
    norm = w.norm().item()
    assert penalty.shape == ()
    assert penalty.item() == pytest.approx(lam * (norm - 1) ** 2, rel=1e-5)
    (grad_w,) = torch.autograd.grad(penalty, critic.main[0].weight)
    torch.testing.assert_close(grad_w[0], 2 * lam * (norm - 1) * w / norm)


class HalfSquaredNorm(nn.Module):
    """f(x) = 0.5 ||x||^2 per sample, whose gradient is x."""

    def forward(self, x):
        return 0.5 * x.flatten(1).square().sum(-1)


def test_gradient_penalty_is_per_sample_at_interpolates():
    real, fake = torch.randn(6, 2, 3), torch.randn(6, 2, 3)
    lam = 2.0
    penalty = GradientPenalty(lam).penalty(HalfSquaredNorm(), real, fake, seeded(4))
    eps = torch.rand(6, 1, 1, generator=seeded(4))
    x_hat = eps * real + (1 - eps) * fake
    norms = torch.sqrt((x_hat**2).sum(dim=(1, 2)))
    expected = lam * ((norms - 1) ** 2).mean()
    torch.testing.assert_close(penalty, expected)
    batch_norm = torch.sqrt((x_hat**2).sum())  # one norm over the whole batch: not WGAN-GP
    assert abs(penalty.item() - lam * (batch_norm.item() - 1) ** 2) > 1.0


def test_gradient_penalty_of_an_ensemble_equals_member_penalties():
    ensemble = EnsembleMLPCritic([0, 1, 2], in_dim=2, hidden=8, depth=2)
    real, fake = torch.randn(3, 5, 2), torch.randn(3, 5, 2)
    lam = 10.0
    penalty = GradientPenalty(lam).penalty(ensemble, real, fake, seeded(7))
    assert penalty.shape == (3,)
    penalty.sum().backward()
    eps = torch.rand(3, 5, 1, generator=seeded(7))
    for s in range(3):
        member = ensemble.member(s)
        x_hat = (eps[s] * real[s] + (1 - eps[s]) * fake[s]).requires_grad_(True)
        (grad,) = torch.autograd.grad(member(x_hat).sum(), x_hat, create_graph=True)
        expected = lam * ((grad.norm(dim=1) - 1) ** 2).mean()
        torch.testing.assert_close(penalty[s], expected)
        expected.backward()
        torch.testing.assert_close(ensemble.main[0].weight.grad[s], member.main[0].weight.grad.T)


def test_gradient_penalty_validates():
    with pytest.raises(ValueError, match="lam must be a finite number >= 0, got -1.0"):
        GradientPenalty(-1.0)
    critic = MLPCritic(2, hidden=4, depth=1)
    with pytest.raises(ValueError, match="same shape"):
        GradientPenalty().penalty(critic, torch.zeros(4, 2), torch.zeros(3, 2))
    wide = nn.Linear(2, 1)  # returns (B, 1), not the batch shape
    with pytest.raises(ValueError, match=r"batch shape \(4,\)"):
        GradientPenalty().penalty(wide, torch.zeros(4, 2), torch.ones(4, 2))


# --------------------------------------------------------------------------- spectral norm


def test_spectral_norm_makes_top_singular_values_one():
    for critic, x in [
        (MLPCritic(4, hidden=16, depth=2, generator=seeded(0)), torch.randn(8, 4)),
        (
            DCGANCritic(16, nc=1, ndf=4, batchnorm=False, generator=seeded(1)),
            torch.randn(2, 1, 16, 16),
        ),
    ]:
        layers = [m for m in critic.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        with torch.no_grad():
            for m in layers:
                m.weight.mul_(3.0)
        raw = [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2) for m in layers]
        assert min(abs(r.item() - 1) for r in raw) > 0.2
        assert SpectralNorm().prepare(critic) is critic
        for _ in range(30):  # one power iteration per training forward pass
            critic(x)
        for m in layers:
            assert hasattr(m, "parametrizations")
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert sigma.item() == pytest.approx(1.0, abs=1e-3)
        SpectralNorm().prepare(critic)  # idempotent: no second parametrisation
        assert all(len(m.parametrizations.weight) == 1 for m in layers)


def test_ensemble_spectral_norm_matches_torch_on_each_member():
    """Each member of an SN ensemble critic normalises, step by step, exactly as torch's
    spectral_norm does on the corresponding single critic (same starting u, v)."""
    singles = [MLPCritic(2, hidden=6, depth=2, generator=seeded(k)) for k in range(3)]
    ensemble = SpectralNorm().prepare(EnsembleMLPCritic.from_members(singles))
    singles = [SpectralNorm().prepare(m) for m in singles]
    stacked = [m for m in ensemble.modules() if isinstance(m, EnsembleLinear)]
    for s, single in enumerate(singles):
        layers = [m for m in single.modules() if isinstance(m, nn.Linear)]
        for big, small in zip(stacked, layers, strict=True):
            norm = small.parametrizations.weight[0]
            with torch.no_grad():  # start member s from torch's own starting vectors
                big.parametrizations.weight[0]._u[s] = norm._u
                big.parametrizations.weight[0]._v[s] = norm._v
    x = torch.randn(3, 5, 2)
    for _ in range(4):  # each training forward pass takes one power-iteration step
        out = ensemble(x)
        for s, single in enumerate(singles):
            torch.testing.assert_close(out[s], single(x[s]), rtol=1e-5, atol=1e-6)
    for big, *smalls in zip(stacked, *[[m for m in c.modules() if isinstance(m, nn.Linear)]
                                       for c in singles], strict=True):
        torch.testing.assert_close(big.weight, torch.stack([m.weight.T for m in smalls]),
                                   rtol=1e-5, atol=1e-6)
        sigmas = torch.linalg.matrix_norm(big.weight.detach(), ord=2)
        torch.testing.assert_close(sigmas, torch.ones(3), atol=2e-3, rtol=0)


def test_spectral_norm_of_a_single_critic_is_seeded_and_leaves_the_global_rng_alone():
    def prepared(seed, global_seed):
        torch.manual_seed(global_seed)
        critic = SpectralNorm(seed=seed).prepare(MLPCritic(2, hidden=4, depth=1,
                                                           generator=seeded(0)))
        return critic, torch.rand(3)

    (a, after_a), (b, _), (c, _) = prepared(1, 10), prepared(1, 20), prepared(2, 10)
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)
    assert not torch.equal(a.state_dict()["main.0.parametrizations.weight.0._u"],
                           c.state_dict()["main.0.parametrizations.weight.0._u"])
    torch.manual_seed(10)
    torch.testing.assert_close(after_a, torch.rand(3), rtol=0, atol=0)  # global stream untouched


def test_ensemble_spectral_norm_is_seeded_and_trains():
    critics = [SpectralNorm(seed=1).prepare(EnsembleMLPCritic(2, in_dim=2, hidden=4, depth=1,
                                                              generator=seeded(0)))
               for _ in range(2)]
    torch.testing.assert_close(critics[0].state_dict(), critics[1].state_dict(), rtol=0, atol=0)
    params = list(critics[0].parameters())
    assert all(p.requires_grad for p in params) and len(params) == 4
    critics[0](torch.randn(2, 3, 2)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    with pytest.raises(ValueError, match=r"weight must have shape \(S, in, out\)"):
        EnsembleSpectralNorm(torch.ones(2, 2))


# --------------------------------------------------------------------------- protocol


def test_make_constraint_names_and_kwargs():
    assert CONSTRAINTS == ("clip", "gp", "sn", "none")
    clip = make_constraint("clip", clip=0.05, timing="before")
    assert isinstance(clip, WeightClipping) and (clip.clip, clip.timing) == (0.05, "before")
    assert make_constraint("gp", lam=0.1).lam == 0.1
    assert isinstance(make_constraint("sn"), SpectralNorm)
    assert type(make_constraint("none")) is Constraint
    with pytest.raises(ValueError, match=r"name must be one of \('clip', 'gp', 'sn', 'none'\)"):
        make_constraint("wc")


def test_no_constraint_hooks_change_nothing():
    critic = MLPCritic(2, hidden=4, depth=1)
    before = [p.clone() for p in critic.parameters()]
    none = make_constraint("none")
    assert none.prepare(critic) is critic
    none.before_critic_step(critic)
    none.after_critic_step(critic)
    assert none.penalty(critic, torch.zeros(3, 2), torch.ones(3, 2)) == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters(), strict=True))


def test_compose_runs_every_hook_and_sums_penalties():
    critic = MLPCritic(3, depth=0, generator=seeded(0))
    with torch.no_grad():
        critic.main[0].weight.mul_(10)
    both = Compose(GradientPenalty(1.0), GradientPenalty(2.0), WeightClipping(0.01))
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    w_norm = critic.main[0].weight.norm().item()
    penalty = both.penalty(critic, real, fake, seeded(0))
    assert penalty.item() == pytest.approx(3.0 * (w_norm - 1) ** 2, rel=1e-5)
    both.after_critic_step(critic)
    assert critic.main[0].weight.abs().max().item() <= 0.01
    with pytest.raises(ValueError, match="Constraint instances"):
        Compose("clip")


# --------------------------------------------------------------------------- registries


def test_every_loss_entry_is_complete_and_named_by_its_key():
    f_real, f_fake = torch.randn(3, 5), torch.randn(3, 4)
    for name, loss in losses.REGISTRY.items():
        assert loss.name == name
        value = loss.critic(f_real, f_fake)
        assert value.shape == (3,) and loss.generator(f_fake).shape == (3,)
        torch.testing.assert_close(distance_estimate(name, value), loss.estimate(value))
    assert losses.FIXED_PAIR_LOSSES == ("wgan", "gan")


class _Settings:
    clip, clip_timing, gp_lambda, seed = 0.05, "before", 0.5, 7


def test_every_constraint_entry_builds_from_a_config():
    built = {name: constraints.from_config(type("C", (_Settings,), {"constraint": name})())
             for name in CONSTRAINTS}
    assert built["clip"] == WeightClipping(0.05, "before")
    assert built["gp"].lam == 0.5 and built["sn"].seed == 7 and type(built["none"]) is Constraint
    assert constraints.FAST_CONSTRAINTS == ("clip", "none")


def test_critic_estimate_chunks_average_the_critic_losses():
    critic = MLPCritic(2, hidden=4, depth=1, generator=seeded(0))
    real, fake = torch.randn(8, 2, generator=seeded(1)), torch.randn(8, 2, generator=seeded(2))
    whole = critic_estimate("wgan", critic, real, fake)
    torch.testing.assert_close(whole, critic(real).mean() - critic(fake).mean())
    torch.testing.assert_close(critic_estimate("wgan", critic, real, fake, chunk=4), whole)


def test_critic_update_runs_the_hooks_around_one_step():
    critic = MLPCritic(2, hidden=4, depth=1, generator=seeded(0))
    optimizer = torch.optim.SGD(critic.parameters(), lr=10.0)
    real, fake = torch.randn(8, 2, generator=seeded(1)), torch.randn(8, 2, generator=seeded(2))
    loss = critic_update(WeightClipping(0.01), critic, optimizer,
                         lambda: (critic_loss("wgan", critic(real), critic(fake)), 0.0))
    assert not loss.requires_grad
    assert max(p.abs().max().item() for p in critic.parameters()) <= 0.01


# ------------------------------------------------------------------ the estimate against exact W1
U = torch.tensor([0.6, 0.8], dtype=torch.float64)  # a unit vector: f(x) = <u, x> is 1-Lipschitz


def _unit_linear_critic(x):
    return x @ U


def _clouds(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g, dtype=torch.float64), \
        torch.randn(n, 2, generator=g, dtype=torch.float64)


def test_estimate_equals_exact_w1_for_a_translation_along_the_critics_direction():
    real, _ = _clouds(32, 0)
    fake = real - 1.5 * U  # every point moves 1.5 along u: W1 = 1.5, and <u, .> certifies it
    assert float(critic_estimate("wgan", _unit_linear_critic, real, fake)) == \
        pytest.approx(1.5, abs=1e-12)
    assert ot.w1(real, fake) == pytest.approx(1.5, abs=1e-9)


def test_estimate_is_below_exact_w1_computed_by_assignment():
    real, fake = _clouds(24, 3)
    fake = fake + torch.tensor([1.0, 0.0], dtype=torch.float64)
    estimate = float(critic_estimate("wgan", _unit_linear_critic, real, fake))
    # Equal-size uniform clouds: an optimal plan is a permutation (Birkhoff).
    cost = cdist(real.numpy(), fake.numpy())
    rows, cols = linear_sum_assignment(cost)
    assert ot.w1(real, fake) == pytest.approx(cost[rows, cols].mean(), rel=1e-9)
    assert estimate == pytest.approx(float((real - fake).mean(0) @ U), abs=1e-12)
    assert abs(estimate) < cost[rows, cols].mean()  # Kantorovich-Rubinstein, K = 1


def test_ensemble_estimate_is_each_members():
    real, fake = _clouds(20, 5)
    real, fake = real.view(2, 10, 2), fake.view(2, 10, 2) + 0.5
    both = critic_estimate("wgan", _unit_linear_critic, real, fake)
    assert both.shape == (2,)
    for s in range(2):
        assert float(both[s]) == pytest.approx(
            float(critic_estimate("wgan", _unit_linear_critic, real[s], fake[s])), abs=1e-12)
