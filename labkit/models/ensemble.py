"""Ensembles of S small MLPs that train S seeds of a toy experiment in one batched pass: every
linear layer is S independent affine maps in one batched matmul (:class:`EnsembleLinear`), and
each member equals the single MLP built from its seed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from labkit import _checks
from labkit.models.mlp import MLPCritic, MLPGenerator, _check_mlp_sizes, _linear_default_, _mlp


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
    #: critic; :class:`labkit.gan.constraints.GradientPenalty` reads it.
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
