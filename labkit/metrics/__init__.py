"""Measures of a trained GAN: mode coverage on Gaussian mixtures, and checks on the critic.

Mode coverage follows VEEGAN / PacGAN (modes captured, % high-quality samples, reverse KL); the
critic checks compare its Wasserstein estimate with the exact W1 of :mod:`labkit.ot`, estimate its
Lipschitz constant from gradients and report per-layer gradient norms (WGAN-GP, Figure 1b).
For images, where no exact W1 is at hand, :func:`swd_images` measures sample quality without a
pretrained network: the sliced Wasserstein distance between Laplacian-pyramid patches of real and
generated images (Karras et al. 2018, Progressive GAN, Section 5). :func:`median_filter` is the
paper's smoothing of W curves.

One module a concept: :mod:`labkit.metrics.modes`, :mod:`labkit.metrics.critic`,
:mod:`labkit.metrics.swd` and :mod:`labkit.metrics.curves`.
"""

from labkit.metrics.critic import (
    Critic,
    critic_lipschitz,
    layer_grad_norms,
)
from labkit.metrics.curves import median_filter
from labkit.metrics.modes import ModeCoverage, class_coverage, mode_coverage
from labkit.metrics.swd import (
    PYRAMID_KERNEL,
    laplacian_pyramid,
    patch_descriptors,
    random_directions,
    sliced_wasserstein,
    swd_images,
)

__all__ = [
    "Critic",
    "ModeCoverage",
    "PYRAMID_KERNEL",
    "class_coverage",
    "critic_lipschitz",
    "laplacian_pyramid",
    "layer_grad_norms",
    "median_filter",
    "mode_coverage",
    "patch_descriptors",
    "random_directions",
    "sliced_wasserstein",
    "swd_images",
]
