"""The authors' MLP generator and critic (``models/mlp.py``): ``depth`` hidden ReLU layers of
``hidden`` units, initialised exactly as ``nn.Linear``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import init
from torch.nn.utils import skip_init

from labkit import _checks


def _shape(name: str, shape: int | Sequence[int]) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else tuple(shape)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"{name} must be a positive int or a tuple of positive ints; got {shape}")
    return dims


def _linear_default_(weight: torch.Tensor, bias: torch.Tensor, generator) -> None:
    """Fill ``weight`` (out, in) and ``bias`` (out,) exactly as ``nn.Linear.reset_parameters`` does.

    U(-1/sqrt(in), 1/sqrt(in)) for both (kaiming_uniform with a = sqrt(5)), drawn from
    ``generator`` (the global RNG when None): weight first, then bias.
    """
    init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    bound = 1 / math.sqrt(weight.shape[1])
    init.uniform_(bias, -bound, bound, generator=generator)


def _mlp(
    in_features: int,
    out_features: int,
    hidden: int,
    depth: int,
    linear: Callable[[int, int], nn.Module],
) -> nn.Sequential:
    """``depth`` x (linear, ReLU), then a final linear; shared by single and ensemble MLPs.

    The ReLUs work in place (as the authors' ``nn.ReLU(True)``): the same values, one tensor
    less per layer to allocate and write (3-4% of an 8-seed ensemble step at 3 x 128).
    """
    widths = [in_features] + [hidden] * depth
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [linear(n_in, n_out), nn.ReLU(inplace=True)]
    layers.append(linear(widths[-1], out_features))
    return nn.Sequential(*layers)


def _seeded_linear(generator: torch.Generator | None) -> Callable[[int, int], nn.Linear]:
    def make(n_in: int, n_out: int) -> nn.Linear:
        layer = skip_init(nn.Linear, n_in, n_out)
        _linear_default_(layer.weight, layer.bias, generator)
        return layer

    return make


def _check_mlp_sizes(hidden: int, depth: int) -> None:
    _checks.integer("hidden", hidden, minimum=1)
    _checks.integer("depth", depth, minimum=0)


class MLPGenerator(nn.Module):
    """The authors' MLP generator (``MLP_G``): ``depth`` hidden Linear+ReLU layers, then a Linear.

    g_theta(z) = W_{depth+1} relu(... relu(W_1 z + b_1) ...) + b_{depth+1}, reshaped to
    ``out_shape``; no final tanh (martinarjovsky/WassersteinGAN ``models/mlp.py``; the README's
    ``--mlp_G --ngf 512`` gives hidden=512, depth=3; WGAN-GP's ``gan_toy.py`` uses the same on
    toys).

    Parameters
    ----------
    nz : int
        Dimension of the noise z.
    out_shape : int or tuple of int
        Shape of one sample: ``2`` or ``(2,)`` for the 2-D toys, ``(nc, isize, isize)`` for images.
    hidden : int, default 512
        Width of the hidden layers.
    depth : int, default 3
        Number of hidden layers (0 gives an affine map).
    generator : torch.Generator, optional
        Source of the initial weights. Every Linear is initialised exactly like ``nn.Linear``'s
        default, layer by layer (weight, then bias), drawing from ``generator``; with None, from the
        global RNG, so ``torch.manual_seed(k); MLPGenerator(...)`` and
        ``MLPGenerator(..., generator=torch.Generator().manual_seed(k))`` hold the same weights, and
        the latter leaves the global RNG untouched.

    Shapes
    ------
    z (B, nz) or (B, nz, 1, 1) -> (B, *out_shape).
    """

    def __init__(
        self,
        nz: int,
        out_shape: int | Sequence[int],
        hidden: int = 512,
        depth: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.nz = _checks.integer("nz", nz, minimum=1)
        self.out_shape = _shape("out_shape", out_shape)
        _check_mlp_sizes(hidden, depth)
        self.hidden, self.depth = hidden, depth
        self.main = _mlp(nz, math.prod(self.out_shape), hidden, depth, _seeded_linear(generator))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.flatten(1)).view(z.shape[0], *self.out_shape)


class MLPCritic(nn.Module):
    """The authors' MLP critic (``MLP_D``): flatten, ``depth`` Linear+ReLU layers, Linear to 1.

    f_w(x) = w_{depth+1}^T relu(... relu(W_1 vec(x) + b_1) ...) + b_{depth+1}, one value per sample
    (the authors return the batch mean; here the objective takes it). No sigmoid: for the GAN losses
    the output is the discriminator's logit, D = sigmoid(f).

    Parameters
    ----------
    in_shape : int or tuple of int
        Shape of one sample, e.g. ``2`` for the toys or ``(nc, isize, isize)``.
    hidden, depth, generator
        As in :class:`MLPGenerator` (same initialisation rule).

    Shapes
    ------
    x (B, *in_shape) -> (B,).
    """

    def __init__(
        self,
        in_shape: int | Sequence[int],
        hidden: int = 512,
        depth: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_shape = _shape("in_shape", in_shape)
        _check_mlp_sizes(hidden, depth)
        self.hidden, self.depth = hidden, depth
        self.main = _mlp(math.prod(self.in_shape), 1, hidden, depth, _seeded_linear(generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x.flatten(1)).squeeze(-1)
