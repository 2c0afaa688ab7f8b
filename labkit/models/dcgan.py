"""The authors' DCGAN generator and critic (``models/dcgan.py``, with and without BatchNorm)
and their initialisation (``weights_init`` in ``main.py``)."""

from __future__ import annotations

import torch
from torch import nn
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
    here f has shape (B,) and :func:`labkit.gan.losses.critic_loss` takes the mean. With
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
