"""Tests of labkit.models: shapes and parameter counts against hand computations from the
authors' code, seeding against nn.Linear's own initialisation, ensembles against separate models."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.models import (
    DCGANCritic,
    DCGANGenerator,
    EnsembleLinear,
    EnsembleMLPCritic,
    EnsembleMLPGenerator,
    MLPCritic,
    MLPGenerator,
    count_parameters,
    init_dcgan_weights_,
)
from labkit.tests.conftest import seeded


def linear_layers(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


# --------------------------------------------------------------------------- single MLPs


@pytest.mark.parametrize("out_shape", [2, (2,)])
def test_mlp_generator_toy_shape_and_structure(out_shape):
    g = MLPGenerator(nz=3, out_shape=out_shape, hidden=8, depth=3, generator=seeded(0))
    assert g(torch.randn(5, 3)).shape == (5, 2)
    assert g(torch.randn(5, 3, 1, 1)).shape == (5, 2)  # the authors' (B, nz, 1, 1) noise
    assert [(m.in_features, m.out_features) for m in linear_layers(g)] == [
        (3, 8),
        (8, 8),
        (8, 8),
        (8, 2),
    ]
    assert not any(isinstance(m, (nn.Tanh, nn.Sigmoid)) for m in g.modules())
    assert count_parameters(g) == (3 * 8 + 8) + 2 * (8 * 8 + 8) + (8 * 2 + 2)


def test_mlp_generator_image_shape():
    g = MLPGenerator(nz=4, out_shape=(1, 4, 4), hidden=6, depth=1, generator=seeded(0))
    assert g(torch.randn(3, 4)).shape == (3, 1, 4, 4)
    assert count_parameters(g) == (4 * 6 + 6) + (6 * 16 + 16)


def test_mlp_critic_matches_hand_forward():
    critic = MLPCritic(in_shape=(1, 2, 2), hidden=5, depth=2, generator=seeded(1))
    x = torch.randn(7, 1, 2, 2)
    h = x.reshape(7, 4)
    layers = linear_layers(critic)
    for layer in layers[:-1]:
        h = torch.clamp(h @ layer.weight.T + layer.bias, min=0)
    expected = (h @ layers[-1].weight.T + layers[-1].bias)[:, 0]
    out = critic(x)
    assert out.shape == (7,)
    torch.testing.assert_close(out, expected)


def test_mlp_seed_gives_nn_linear_default_and_spares_global_rng():
    torch.manual_seed(7)
    reference = [nn.Linear(2, 8), nn.Linear(8, 8), nn.Linear(8, 1)]
    state = torch.get_rng_state()
    critic = MLPCritic(2, hidden=8, depth=2, generator=seeded(7))
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(7)
    critic_global = MLPCritic(2, hidden=8, depth=2)
    for ref, a, b in zip(
        reference, linear_layers(critic), linear_layers(critic_global), strict=True
    ):
        for name in ("weight", "bias"):
            assert torch.equal(getattr(a, name), getattr(ref, name))
            assert torch.equal(getattr(b, name), getattr(ref, name))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"nz": 0, "out_shape": 2}, "nz"),
        ({"nz": 2, "out_shape": (2, 0)}, "out_shape"),
        ({"nz": 2, "out_shape": 2, "hidden": 0}, "hidden"),
        ({"nz": 2, "out_shape": 2, "depth": -1}, "depth"),
    ],
)
def test_mlp_generator_rejects_bad_sizes(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} must"):
        MLPGenerator(**kwargs)


# --------------------------------------------------------------------------- ensembles


def test_ensemble_linear_shapes_and_nn_linear_init():
    layer = EnsembleLinear([4, 9], in_features=3, out_features=5)
    assert layer.weight.shape == (2, 3, 5) and layer.bias.shape == (2, 1, 5)
    for s, seed in enumerate([4, 9]):
        torch.manual_seed(seed)
        ref = nn.Linear(3, 5)
        assert torch.equal(layer.weight[s], ref.weight.T)
        assert torch.equal(layer.bias[s, 0], ref.bias)
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(layer(x), x @ layer.weight + layer.bias)


def _ensemble_case(kind):
    if kind == "generator":
        members = [MLPGenerator(3, 2, hidden=8, depth=2, generator=seeded(s)) for s in range(3)]
        return members, EnsembleMLPGenerator.from_members(members), torch.randn(3, 5, 3)
    members = [MLPCritic(2, hidden=8, depth=2, generator=seeded(s)) for s in range(3)]
    return members, EnsembleMLPCritic.from_members(members), torch.randn(3, 5, 2)


@pytest.mark.parametrize("kind", ["generator", "critic"])
def test_ensemble_forward_and_gradients_equal_separate_models(kind):
    members, ensemble, x = _ensemble_case(kind)
    x_ens = x.clone().requires_grad_(True)
    out = ensemble(x_ens)
    assert out.shape == ((3, 5, 2) if kind == "generator" else (3, 5))
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    for s, model in enumerate(members):
        x_s = x[s].clone().requires_grad_(True)
        out_s = model(x_s)
        torch.testing.assert_close(out[s], out_s)
        (out_s * weights[s]).sum().backward()
        torch.testing.assert_close(x_ens.grad[s], x_s.grad)
        for stacked, layer in zip(
            linear_layers(ensemble.member(s)), linear_layers(model), strict=True
        ):
            assert stacked.weight.shape == layer.weight.shape
        ens_layers = [m for m in ensemble.modules() if isinstance(m, EnsembleLinear)]
        for stacked, layer in zip(ens_layers, linear_layers(model), strict=True):
            torch.testing.assert_close(stacked.weight.grad[s], layer.weight.grad.T)
            torch.testing.assert_close(stacked.bias.grad[s, 0], layer.bias.grad)


def test_ensemble_integer_seeds_equal_single_models_and_member_copies():
    ensemble = EnsembleMLPGenerator([3, 11], nz=2, out_dim=2, hidden=8, depth=3)
    for s, seed in enumerate([3, 11]):
        single = MLPGenerator(2, 2, hidden=8, depth=3, generator=seeded(seed))
        member = ensemble.member(s)
        assert isinstance(member, MLPGenerator)
        for a, b in zip(linear_layers(member), linear_layers(single), strict=True):
            assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    member = ensemble.member(0)
    with torch.no_grad():
        member.main[0].weight.add_(1.0)
    assert not torch.equal(ensemble.member(0).main[0].weight, member.main[0].weight)


def test_ensemble_count_with_generator_is_reproducible_and_members_differ():
    a = EnsembleMLPCritic(4, in_dim=2, hidden=8, depth=2, generator=seeded(5))
    b = EnsembleMLPCritic(4, in_dim=2, hidden=8, depth=2, generator=seeded(5))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    first = a.main[0].weight
    assert not torch.equal(first[0], first[1])
    bound = 1 / math.sqrt(2)
    assert first.abs().max() <= bound and a.main[0].bias.abs().max() <= bound


def test_ensemble_rejects_bad_input():
    critic = EnsembleMLPCritic(2, in_dim=2, hidden=4, depth=1)
    with pytest.raises(ValueError, match=r"x must have shape \(S=2, B, 2\)"):
        critic(torch.randn(3, 5, 2))
    with pytest.raises(ValueError, match="s must be an int in"):
        critic.member(2)
    with pytest.raises(ValueError, match="share one architecture"):
        EnsembleMLPCritic.from_members([MLPCritic(2, 4, 1), MLPCritic(2, 5, 1)])
    with pytest.raises(ValueError, match="1-D in_shape"):
        EnsembleMLPCritic.from_members([MLPCritic((1, 2), 4, 1)])
    with pytest.raises(ValueError, match="not both"):
        EnsembleMLPGenerator([1, 2], 2, 2, generator=seeded(0))
    with pytest.raises(ValueError, match="seeds"):
        EnsembleMLPGenerator([], 2, 2)


# --------------------------------------------------------------------------- DCGAN


@pytest.mark.parametrize("isize", [16, 32, 64])
@pytest.mark.parametrize("n_extra_layers", [0, 1])
def test_dcgan_shapes(isize, n_extra_layers):
    g = DCGANGenerator(isize, nz=8, nc=3, ngf=4, n_extra_layers=n_extra_layers, generator=seeded(0))
    d = DCGANCritic(isize, nc=3, ndf=4, n_extra_layers=n_extra_layers, generator=seeded(1))
    x = g(torch.randn(2, 8))
    assert x.shape == (2, 3, isize, isize)
    assert x.abs().max() < 1
    assert d(x).shape == (2,)


def _conv_channels(model):
    return [
        (m.in_channels, m.out_channels, "T" if isinstance(m, nn.ConvTranspose2d) else "")
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]


def test_dcgan_layers_match_the_authors_for_isize_32():
    # DCGAN_G, isize 32, ngf 64: cngf = 32 -> 64 (8) -> 128 (16) -> 256 (32); pyramid to 16x16.
    g = DCGANGenerator(32, nz=100, ngf=64, n_extra_layers=1, generator=seeded(0))
    assert _conv_channels(g) == [
        (100, 256, "T"),
        (256, 128, "T"),
        (128, 64, "T"),
        (64, 64, ""),
        (64, 3, "T"),
    ]
    assert [m.num_features for m in g.modules() if isinstance(m, nn.BatchNorm2d)] == [
        256,
        128,
        64,
        64,
    ]
    assert isinstance(g.main[-1], nn.Tanh)
    # DCGAN_D, isize 32, ndf 64: 16x16 -> extra -> 8x8 -> 4x4 -> 1x1; no BN after the first conv.
    d = DCGANCritic(32, ndf=64, n_extra_layers=1, generator=seeded(0))
    assert [c[:2] for c in _conv_channels(d)] == [
        (3, 64),
        (64, 64),
        (64, 128),
        (128, 256),
        (256, 1),
    ]
    assert [m.num_features for m in d.modules() if isinstance(m, nn.BatchNorm2d)] == [64, 128, 256]
    assert isinstance(d.main[1], nn.LeakyReLU) and d.main[1].negative_slope == 0.2
    assert all(m.bias is None for m in d.modules() if isinstance(m, nn.Conv2d))


def test_constant_width_generator_keeps_ngf_filters_in_every_layer():
    # The paper's Figure 6 generator: no BatchNorm, ngf filters at every layer (no halving).
    g = DCGANGenerator(32, nz=10, ngf=8, batchnorm=False, constant_width=True,
                       generator=seeded(0))
    assert _conv_channels(g) == [(10, 8, "T"), (8, 8, "T"), (8, 8, "T"), (8, 3, "T")]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert g(torch.randn(2, 10)).shape == (2, 3, 32, 32)
    assert count_parameters(g) == (10 * 8 + 8 * 8 + 8 * 8 + 8 * 3) * 16
    halving = DCGANGenerator(32, nz=10, ngf=8, batchnorm=False, generator=seeded(0))
    assert _conv_channels(halving) == [(10, 32, "T"), (32, 16, "T"), (16, 8, "T"), (8, 3, "T")]
    with pytest.raises(ValueError, match="constant_width must be True or False, got 1"):
        DCGANGenerator(16, constant_width=1)


@pytest.fixture(scope="module")
def dcgan64():
    return DCGANGenerator(64, generator=seeded(0)), DCGANCritic(64, generator=seeded(1))


def test_dcgan_parameter_counts_isize_64(dcgan64):
    g, d = dcgan64
    conv = 16  # 4 x 4 kernels, no bias
    g_expected = (100 * 512 + 512 * 256 + 256 * 128 + 128 * 64 + 64 * 3) * conv
    g_expected += 2 * (512 + 256 + 128 + 64)  # BatchNorm weight and bias
    d_expected = (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512 + 512 * 1) * conv
    d_expected += 2 * (128 + 256 + 512)
    assert count_parameters(g) == g_expected == 3_576_704
    assert count_parameters(d) == d_expected == 2_765_568


def test_dcgan_init_statistics(dcgan64):
    for model in dcgan64:
        conv = torch.cat(
            [
                m.weight.flatten()
                for m in model.modules()
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
            ]
        )
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        gamma = torch.cat([m.weight for m in norms])
        assert abs(conv.mean().item()) < 1e-4
        assert conv.std().item() == pytest.approx(0.02, rel=0.01)
        assert gamma.mean().item() == pytest.approx(1.0, abs=0.003)
        assert gamma.std().item() == pytest.approx(0.02, rel=0.15)
        assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in norms)


def test_init_dcgan_weights_is_seeded_and_leaves_linear_alone():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Linear(4, 4))
    linear = model[2].weight.clone()
    init_dcgan_weights_(model, seeded(3))
    g = seeded(3)
    assert torch.equal(model[0].weight, torch.empty(3, 2, 3, 3).normal_(0, 0.02, generator=g))
    assert torch.equal(model[1].weight, torch.empty(3).normal_(1, 0.02, generator=g))
    assert torch.equal(model[2].weight, linear)


def test_dcgan_without_batchnorm_is_per_sample():
    g = DCGANGenerator(16, nz=4, ngf=4, n_extra_layers=1, batchnorm=False, generator=seeded(0))
    d = DCGANCritic(16, ndf=4, n_extra_layers=1, batchnorm=False, generator=seeded(1))
    for model in (g, d):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(d(x)[1:2], d(x[1:2]))
    z = torch.randn(4, 4)
    torch.testing.assert_close(g(z)[2:3], g(z[2:3]))
    # batchnorm on: the first layer still has none (the authors' DCGAN_D)
    assert not isinstance(DCGANCritic(16, ndf=4).main[1], nn.BatchNorm2d)


def test_dcgan_critic_equals_hand_convolutions_without_batchnorm():
    d = DCGANCritic(16, nc=1, ndf=2, batchnorm=False, generator=seeded(2))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    x = torch.randn(3, 1, 16, 16)
    h = F.leaky_relu(F.conv2d(x, convs[0].weight, stride=2, padding=1), 0.2)
    h = F.leaky_relu(F.conv2d(h, convs[1].weight, stride=2, padding=1), 0.2)
    expected = F.conv2d(h, convs[2].weight).flatten()
    torch.testing.assert_close(d(x), expected)


@pytest.mark.parametrize("isize", [8, 20, 48, 100])
def test_dcgan_rejects_isize_not_power_of_two(isize):
    with pytest.raises(ValueError, match=f"isize must be a power of two >= 16.*got {isize}"):
        DCGANGenerator(isize)
    with pytest.raises(ValueError, match="isize"):
        DCGANCritic(isize)


def test_dcgan_generator_rejects_wrong_noise_shape():
    g = DCGANGenerator(16, nz=4, ngf=4)
    with pytest.raises(ValueError, match=r"z must have shape \(B, 4\)"):
        g(torch.randn(2, 5))
