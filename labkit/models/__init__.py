"""Generators and critics of the Wasserstein GAN paper: the authors' MLP and DCGAN models, and
ensembles of S small MLPs that train S seeds of a toy experiment in one batched pass.

Shapes follow the authors' code (martinarjovsky/WassersteinGAN, ``models/mlp.py`` and
``models/dcgan.py``) with one deliberate change: critics return one value per sample, shape (B,),
where the authors return the batch mean; :mod:`labkit.gan.losses` takes the mean.

One module a family: :mod:`labkit.models.mlp`, :mod:`labkit.models.ensemble` and
:mod:`labkit.models.dcgan`.
"""

from __future__ import annotations

from torch import nn

from labkit.models.dcgan import CONV_LAYERS, DCGANCritic, DCGANGenerator, init_dcgan_weights_
from labkit.models.ensemble import EnsembleLinear, EnsembleMLPCritic, EnsembleMLPGenerator
from labkit.models.mlp import MLPCritic, MLPGenerator


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
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "CONV_LAYERS",
    "DCGANCritic",
    "DCGANGenerator",
    "EnsembleLinear",
    "EnsembleMLPCritic",
    "EnsembleMLPGenerator",
    "MLPCritic",
    "MLPGenerator",
    "count_parameters",
    "init_dcgan_weights_",
]
