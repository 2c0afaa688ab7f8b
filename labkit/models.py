"""Generators and critics of the Wasserstein GAN paper: the authors' MLP and DCGAN models, and
ensembles of S small MLPs that train S seeds of a toy experiment in one batched pass.

Shapes follow the authors' code (martinarjovsky/WassersteinGAN, ``models/mlp.py`` and
``models/dcgan.py``) with one deliberate change: critics return one value per sample, shape (B,),
where the authors return the batch mean; :mod:`labkit.objectives` takes the mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import init
from torch.nn.utils import skip_init

from labkit import _checks

#: Convolution layers: the layers the authors' initialisation (and spectral normalisation) touch.
CONV_LAYERS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module`` (all of them, BatchNorm's affine ones included).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    int
        ``sum(p.numel() for p in module.parameters())``.

    Examples
    --------
    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- validation helpers


def _shape(name: str, shape: int | Sequence[int]) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else tuple(shape)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"{name} must be a positive int or a tuple of positive ints; got {shape}")
    return dims


# --------------------------------------------------------------------------- MLPs


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


# --------------------------------------------------------------------------- ensembles


def _member_generators(
    seeds: int | Sequence[int],
    generator: torch.Generator | Sequence[torch.Generator] | None,
) -> list[torch.Generator | None]:
    """One RNG per member: a count shares ``generator``; integer seeds give private generators."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        _checks.integer("seeds", seeds, minimum=1)
        if generator is None or isinstance(generator, torch.Generator):
            return [generator] * seeds
        generators = list(generator)
        if len(generators) != seeds:
            raise ValueError(
                f"generator must be one torch.Generator or {seeds} of them; got {len(generators)}"
            )
        return generators
    seeds = list(seeds)
    if not seeds or any(isinstance(k, bool) or not isinstance(k, int) for k in seeds):
        raise ValueError(f"seeds must be a count >= 1 or a non-empty list of ints; got {seeds!r}")
    if generator is not None:
        raise ValueError("pass either integer seeds or a generator, not both")
    return [torch.Generator().manual_seed(k) for k in seeds]


class EnsembleLinear(nn.Module):
    """S independent affine maps applied in one batched matmul: y_s = x_s W_s + b_s.

    ``torch.baddbmm(bias, x, weight)``; member s holds the transpose of an ``nn.Linear`` weight
    and is initialised exactly like ``nn.Linear(in_features, out_features)``, i.e.
    U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.

    Parameters
    ----------
    seeds : int or sequence of int
        A count S, or S integer seeds: member s is then drawn from
        ``torch.Generator().manual_seed(seeds[s])`` and equals ``nn.Linear`` built right after
        ``torch.manual_seed(seeds[s])``.
    in_features, out_features : int
    generator : torch.Generator or sequence of S of them, optional
        With a count: the RNG(s) the members are drawn from, member 0 first (global RNG if None).

    Attributes
    ----------
    weight : Parameter (S, in_features, out_features)
    bias : Parameter (S, 1, out_features)

    Shapes
    ------
    x (S, B, in_features) -> (S, B, out_features).
    """

    def __init__(
        self,
        seeds: int | Sequence[int],
        in_features: int,
        out_features: int,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> None:
        super().__init__()
        generators = _member_generators(seeds, generator)
        self.in_features = _checks.integer("in_features", in_features, minimum=1)
        self.out_features = _checks.integer("out_features", out_features, minimum=1)
        n_members = len(generators)
        self.weight = nn.Parameter(torch.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_features))
        with torch.no_grad():
            for s, member_generator in enumerate(generators):
                weight, bias = torch.empty(out_features, in_features), torch.empty(out_features)
                _linear_default_(weight, bias, member_generator)
                self.weight[s] = weight.T
                self.bias[s, 0] = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return (
            f"members={self.weight.shape[0]}, in_features={self.in_features}, "
            f"out_features={self.out_features}"
        )


class _EnsembleMLP(nn.Module):
    """Shared body of the ensemble MLPs: construction, stacking and unstacking of members."""

    #: Leading dims of the input that index samples: (S, B). The output has this shape for the
    #: critic; :class:`labkit.objectives.GradientPenalty` reads it.
    batch_ndim = 2

    def __init__(self, seeds, in_features, out_features, hidden, depth, generator) -> None:
        super().__init__()
        _check_mlp_sizes(hidden, depth)
        generators = _member_generators(seeds, generator)
        self.n_members = len(generators)
        self.hidden, self.depth = hidden, depth
        self.main = _mlp(
            in_features,
            out_features,
            hidden,
            depth,
            lambda n_in, n_out: EnsembleLinear(self.n_members, n_in, n_out, generators),
        )

    def _check_input(self, name: str, x: torch.Tensor, features: int) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.n_members or x.shape[2] != features:
            raise ValueError(
                f"{name} must have shape (S={self.n_members}, B, {features}); got {tuple(x.shape)}"
            )
        return x

    @staticmethod
    def _architecture(model: nn.Module) -> dict:
        raise NotImplementedError

    def _single(self) -> nn.Module:
        """A single model of the members' architecture (weights to be overwritten)."""
        raise NotImplementedError

    @classmethod
    def from_members(cls, models: Sequence[nn.Module]):
        """Stack S single models of one architecture into an ensemble (weights copied).

        Parameters
        ----------
        models : sequence of S MLPGenerator (1-D ``out_shape``) or MLPCritic (1-D ``in_shape``)

        Returns
        -------
        ensemble
            Member s computes exactly what ``models[s]`` computes, on ``models[0]``'s device.
        """
        models = list(models)
        if not models:
            raise ValueError("models must hold at least one model; got an empty sequence")
        architectures = [cls._architecture(m) for m in models]
        if any(a != architectures[0] for a in architectures):
            raise ValueError(f"models must share one architecture; got {architectures}")
        reference = next(models[0].parameters())
        ensemble = cls(len(models), **architectures[0], generator=torch.Generator())
        ensemble.to(device=reference.device, dtype=reference.dtype)
        layers = zip(_linears(ensemble), *(_linears(m) for m in models), strict=True)
        with torch.no_grad():
            for stacked, *singles in layers:
                stacked.weight.copy_(torch.stack([layer.weight.T for layer in singles]))
                stacked.bias.copy_(torch.stack([layer.bias[None] for layer in singles]))
        return ensemble

    def member(self, s: int) -> nn.Module:
        """A single model holding a copy of member ``s``'s weights (same device and dtype)."""
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < self.n_members:
            raise ValueError(f"s must be an int in [0, {self.n_members}); got {s!r}")
        single = self._single()
        single.to(device=self.main[0].weight.device, dtype=self.main[0].weight.dtype)
        with torch.no_grad():
            for stacked, layer in zip(_linears(self), _linears(single), strict=True):
                layer.weight.copy_(stacked.weight[s].T)
                layer.bias.copy_(stacked.bias[s, 0])
        return single


def _linears(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Linear, EnsembleLinear))]


class EnsembleMLPGenerator(_EnsembleMLP):
    """S independent :class:`MLPGenerator` (1-D output) evaluated together with batched matmuls.

    Member s computes g_s(z_s) with its own weights; parameters carry a leading seed dimension
    (see :class:`EnsembleLinear`). Used to train several seeds of a toy experiment at once.

    Parameters
    ----------
    seeds : int or sequence of int
        Integer seeds: member s equals ``MLPGenerator(nz, out_dim, hidden, depth,
        generator=torch.Generator().manual_seed(seeds[s]))``, hence also the model built right after
        ``torch.manual_seed(seeds[s])``. A count S: members drawn from ``generator`` (global RNG if
        None) layer by layer, member 0 first within a layer.
    nz, out_dim, hidden, depth
        As in :class:`MLPGenerator` (``out_shape=(out_dim,)``).
    generator : torch.Generator, optional
        Only with a count (ValueError with integer seeds).

    Shapes
    ------
    z (S, B, nz) -> (S, B, out_dim).
    """

    def __init__(
        self,
        seeds: int | Sequence[int],
        nz: int,
        out_dim: int,
        hidden: int = 512,
        depth: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        _checks.integer("nz", nz, minimum=1)
        _checks.integer("out_dim", out_dim, minimum=1)
        super().__init__(seeds, nz, out_dim, hidden, depth, generator)
        self.nz, self.out_dim = nz, out_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(self._check_input("z", z, self.nz))

    @staticmethod
    def _architecture(model: nn.Module) -> dict:
        if not isinstance(model, MLPGenerator) or len(model.out_shape) != 1:
            raise ValueError(f"members must be MLPGenerator with a 1-D out_shape; got {model!r}")
        return {
            "nz": model.nz,
            "out_dim": model.out_shape[0],
            "hidden": model.hidden,
            "depth": model.depth,
        }

    def _single(self) -> MLPGenerator:
        return MLPGenerator(self.nz, self.out_dim, self.hidden, self.depth, torch.Generator())


class EnsembleMLPCritic(_EnsembleMLP):
    """S independent :class:`MLPCritic` (flat input) evaluated together with batched matmuls.

    Member s computes f_s(x_s) with its own weights, one value per sample (no sigmoid).

    Parameters
    ----------
    seeds, hidden, depth, generator
        As in :class:`EnsembleMLPGenerator` (same seed-to-weights rule, with :class:`MLPCritic`).
    in_dim : int
        Dimension of one sample.

    Shapes
    ------
    x (S, B, in_dim) -> (S, B).
    """

    def __init__(
        self,
        seeds: int | Sequence[int],
        in_dim: int,
        hidden: int = 512,
        depth: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        _checks.integer("in_dim", in_dim, minimum=1)
        super().__init__(seeds, in_dim, 1, hidden, depth, generator)
        self.in_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(self._check_input("x", x, self.in_dim)).squeeze(-1)

    @staticmethod
    def _architecture(model: nn.Module) -> dict:
        if not isinstance(model, MLPCritic) or len(model.in_shape) != 1:
            raise ValueError(f"members must be MLPCritic with a 1-D in_shape; got {model!r}")
        return {"in_dim": model.in_shape[0], "hidden": model.hidden, "depth": model.depth}

    def _single(self) -> MLPCritic:
        return MLPCritic(self.in_dim, self.hidden, self.depth, torch.Generator())


# --------------------------------------------------------------------------- DCGAN


def init_dcgan_weights_(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """The authors' initialisation (``weights_init`` in main.py), in place; returns ``module``.

    Every convolution weight ~ N(0, 0.02); every BatchNorm weight ~ N(1, 0.02) and bias = 0.
    Other layers (Linear, conv biases) are left alone, as the authors do. Draws happen in
    ``module.modules()`` order from ``generator`` (the global RNG when None).

    Parameters
    ----------
    module : torch.nn.Module
    generator : torch.Generator, optional

    Returns
    -------
    torch.nn.Module
        ``module`` itself.
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, CONV_LAYERS):
                m.weight.normal_(0.0, 0.02, generator=generator)
            elif isinstance(m, _BATCH_NORMS) and m.affine:
                m.weight.normal_(1.0, 0.02, generator=generator)
                m.bias.zero_()
    return module


def _conv(cls: type[nn.Module], *args: int) -> nn.Module:
    """A bias-free convolution whose weight is left for :func:`init_dcgan_weights_` to fill."""
    return skip_init(cls, *args, bias=False)


def _block(conv: nn.Module, channels: int, batchnorm: bool, activation: nn.Module) -> list:
    return [conv, nn.BatchNorm2d(channels), activation] if batchnorm else [conv, activation]


class DCGANGenerator(nn.Module):
    """The authors' DCGAN generator (``DCGAN_G``; ``DCGAN_G_nobn`` with ``batchnorm=False``).

    z -> ConvT(nz, C, 4, 1, 0) to 4x4, then ConvT(c, c/2, 4, 2, 1) doubling the size up to isize/2
    (C = ngf * isize / 8 channels at 4x4, ngf at isize/2), ``n_extra_layers`` Conv(c, c, 3, 1, 1),
    and ConvT(ngf, nc, 4, 2, 1) + Tanh; every hidden layer is [BatchNorm +] ReLU, no conv bias.
    Initialised with :func:`init_dcgan_weights_` (martinarjovsky/WassersteinGAN, models/dcgan.py).

    ``constant_width=True`` gives every hidden layer ``ngf`` channels instead of halving them
    (C = ngf): with ``batchnorm=False`` this is the generator of the paper's Figure 6, "without
    batch normalization and with a constant number of filters at every layer" (Section 4.3),
    which the authors' ``DCGAN_G_nobn`` (halving, as DCGAN) is not.

    Parameters
    ----------
    isize : int
        Image side: 16, 32, 64, ... (a power of two >= 16).
    nz : int, default 100
    nc : int, default 3
        Image channels.
    ngf : int, default 64
        Width multiplier (>= 2).
    n_extra_layers : int, default 0
    batchnorm : bool, default True
        False removes every BatchNorm (the authors' ``--noBN``, generator only).
    constant_width : bool, default False
        True keeps ``ngf`` channels in every hidden layer (the paper's Figure 6 generator).
    generator : torch.Generator, optional
        Source of the initial weights (global RNG if None).

    Shapes
    ------
    z (B, nz) or (B, nz, 1, 1) -> (B, nc, isize, isize), values in (-1, 1).
    """

    def __init__(
        self,
        isize: int,
        nz: int = 100,
        nc: int = 3,
        ngf: int = 64,
        n_extra_layers: int = 0,
        batchnorm: bool = True,
        constant_width: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        isize = _checks.image_size("isize", isize)
        self.isize, self.nz = isize, _checks.integer("nz", nz, minimum=1)
        _checks.integer("nc", nc, minimum=1)
        _checks.integer("ngf", ngf, minimum=2)
        _checks.integer("n_extra_layers", n_extra_layers, minimum=0)
        shrink = 1 if _checks.boolean("constant_width", constant_width) else 2
        channels = ngf if constant_width else ngf // 2 * isize // 4
        layers = _block(
            _conv(nn.ConvTranspose2d, nz, channels, 4, 1, 0), channels, batchnorm, nn.ReLU()
        )
        size = 4
        while size < isize // 2:
            layers += _block(
                _conv(nn.ConvTranspose2d, channels, channels // shrink, 4, 2, 1),
                channels // shrink,
                batchnorm,
                nn.ReLU(),
            )
            channels, size = channels // shrink, size * 2
        for _ in range(n_extra_layers):
            layers += _block(
                _conv(nn.Conv2d, channels, channels, 3, 1, 1), channels, batchnorm, nn.ReLU()
            )
        layers += [_conv(nn.ConvTranspose2d, channels, nc, 4, 2, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_dcgan_weights_(self, generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[1:] not in ((self.nz,), (self.nz, 1, 1)):
            raise ValueError(
                f"z must have shape (B, {self.nz}) or (B, {self.nz}, 1, 1); got {tuple(z.shape)}"
            )
        return self.main(z.reshape(z.shape[0], self.nz, 1, 1))


class DCGANCritic(nn.Module):
    """The authors' DCGAN critic (``DCGAN_D``; ``DCGAN_D_nobn`` with ``batchnorm=False``).

    x -> Conv(nc, ndf, 4, 2, 1) + LeakyReLU(0.2) to isize/2, ``n_extra_layers``
    Conv(c, c, 3, 1, 1), then Conv(c, 2c, 4, 2, 1) halving the size down to 4x4, each hidden layer
    but the first followed by [BatchNorm +] LeakyReLU(0.2), and Conv(c, 1, 4, 1, 0): f(x) per
    sample, no sigmoid, no conv bias. The authors return f averaged over the batch, shape (1,);
    here f has shape (B,) and :func:`labkit.objectives.critic_loss` takes the mean. With
    BatchNorm in training mode the values still depend on the whole batch, as in the authors' code.

    Parameters
    ----------
    isize : int
        Image side: 16, 32, 64, ... (a power of two >= 16).
    nc : int, default 3
    ndf : int, default 64
    n_extra_layers : int, default 0
    batchnorm : bool, default True
        The authors keep BatchNorm in the critic; WGAN-GP removes it (set False).
    generator : torch.Generator, optional
        Source of the initial weights (global RNG if None).

    Shapes
    ------
    x (B, nc, isize, isize) -> (B,).
    """

    def __init__(
        self,
        isize: int,
        nc: int = 3,
        ndf: int = 64,
        n_extra_layers: int = 0,
        batchnorm: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        isize = _checks.image_size("isize", isize)
        self.isize = isize
        _checks.integer("nc", nc, minimum=1)
        _checks.integer("ndf", ndf, minimum=1)
        _checks.integer("n_extra_layers", n_extra_layers, minimum=0)
        layers = [_conv(nn.Conv2d, nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        channels, size = ndf, isize // 2
        for _ in range(n_extra_layers):
            layers += _block(
                _conv(nn.Conv2d, channels, channels, 3, 1, 1),
                channels,
                batchnorm,
                nn.LeakyReLU(0.2),
            )
        while size > 4:
            layers += _block(
                _conv(nn.Conv2d, channels, 2 * channels, 4, 2, 1),
                2 * channels,
                batchnorm,
                nn.LeakyReLU(0.2),
            )
            channels, size = 2 * channels, size // 2
        layers.append(_conv(nn.Conv2d, channels, 1, 4, 1, 0))
        self.main = nn.Sequential(*layers)
        init_dcgan_weights_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).reshape(x.shape[0])
