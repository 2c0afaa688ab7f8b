"""Mode coverage on Gaussian mixtures (VEEGAN / PacGAN: modes captured, % high-quality samples,
reverse KL), and its analogue for images by class (a classifier's confident predictions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from labkit import _checks


@dataclass(frozen=True, eq=False)
class ModeCoverage:
    """Mode-collapse metrics of a sample set against the centres of a Gaussian mixture.

    Attributes
    ----------
    modes : int
        Number of centres that are the nearest centre of at least one high-quality sample.
    hq_fraction : float
        High-quality samples / all samples, in [0, 1] (the papers' "%HQ" divided by 100).
    reverse_kl : float
        ``KL(p_hat || U_K) = sum_k p_hat_k log(K p_hat_k)`` in nats, in [0, log K]; ``nan`` when no
        sample is high quality (``p_hat`` is then undefined).
    counts : numpy.ndarray, shape (K,), int64, read-only
        ``counts[k]`` = number of high-quality samples whose nearest centre is ``k``.
    """

    modes: int
    hq_fraction: float
    reverse_kl: float
    counts: np.ndarray

    def as_dict(self) -> dict[str, int | float | list[int]]:
        """The metrics as plain Python ``int`` / ``float`` / ``list`` values, ready for ``json``.

        An undefined ``reverse_kl`` stays ``float('nan')``, which ``json.dumps`` writes as ``NaN``.
        """
        return {
            "modes": int(self.modes),
            "hq_fraction": float(self.hq_fraction),
            "reverse_kl": float(self.reverse_kl),
            "counts": [int(c) for c in self.counts],
        }


def _as_float64_matrix(name: str, value: np.ndarray | torch.Tensor) -> np.ndarray:
    """``value`` as a float64 numpy array of shape (n, d) with n >= 1, d >= 1."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
    array = _checks.float_array(name, value)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, d); got shape {array.shape}")
    return array


def mode_coverage(
    samples: np.ndarray | torch.Tensor,
    centers: np.ndarray | torch.Tensor,
    std: float,
    threshold: float = 3.0,
) -> ModeCoverage:
    """Modes captured, fraction of high-quality samples and reverse KL (VEEGAN / PacGAN).

    Each sample is assigned to its nearest centre (Euclidean; ties go to the lower index). It is
    *high quality* if ``min_k ||x - c_k||_2 < threshold * std``, with a strict ``<`` as in PacGAN's
    ``MetricLogger`` (``if min_dis < self.dis_thre``, ``dis_thre=3``, distances in units of std).
    With ``p_hat`` the histogram of high-quality samples over their nearest centres:
    ``reverse_kl = KL(p_hat || U_K) = sum_k p_hat_k log(K p_hat_k)`` (``0 log 0 = 0``), which equals
    ``log K - H(p_hat)``; PacGAN logs the entropy ``H(p_hat)``.

    Samples that are not finite (a diverged generator) are never high quality.

    Parameters
    ----------
    samples : numpy.ndarray or torch.Tensor, shape (N, d)
        Generated samples, N >= 1.
    centers : numpy.ndarray or torch.Tensor, shape (K, d)
        Finite mixture centres, K >= 1.
    std : float
        Standard deviation of each (isotropic) mixture component, > 0.
    threshold : float, default 3.0
        Radius of the high-quality ball in units of ``std``, > 0.

    Returns
    -------
    ModeCoverage
        ``modes``, ``hq_fraction``, ``reverse_kl`` (``nan`` without high-quality samples) and
        ``counts`` (K,).

    References
    ----------
    Srivastava et al., "VEEGAN", NeurIPS 2017, Table 1; Lin et al., "PacGAN", NeurIPS 2018,
    Table 1, computed by ``MetricLogger`` in ``synthetic_data_experiments/PacGAN/pacgan/
    extensions.py`` of github.com/fjxmlzn/PacGAN.

    Examples
    --------
    >>> centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    >>> mode_coverage(np.array([[0.1, 0.0], [0.0, 5.0]]), centers, std=0.1).as_dict()
    {'modes': 1, 'hq_fraction': 0.5, 'reverse_kl': 0.6931471805599453, 'counts': [1, 0]}
    """
    x = _as_float64_matrix("samples", samples)
    c = _as_float64_matrix("centers", centers)
    if x.shape[1] != c.shape[1]:
        raise ValueError(
            f"samples and centers must have the same dimension d; got samples {x.shape}, "
            f"centers {c.shape}"
        )
    if not np.all(np.isfinite(c)):
        raise ValueError("centers must be finite; got a nan or inf entry")
    threshold = _checks.finite_real("threshold", threshold, above=0)
    radius = threshold * _checks.finite_real("std", std, above=0)
    if not np.isfinite(radius):
        raise _checks.BadValue("std", std, f"small enough that threshold * std is finite "
                               f"(threshold {threshold:g})")
    _checks.fits_in_memory("samples", f"{len(x)} samples", 16 * len(x) * len(c),
                           f"the distances of {len(x)} samples to {len(c)} centres")

    # (N, K) Euclidean distances, one centre at a time so memory stays O(N d + N K).
    dist = np.stack([np.linalg.norm(x - centre, axis=1) for centre in c], axis=1)
    dist = np.where(np.isnan(dist), np.inf, dist)
    nearest = dist.argmin(axis=1)
    return _coverage(nearest, dist[np.arange(len(x)), nearest] < radius, len(c))


def _coverage(assigned: np.ndarray, high_quality: np.ndarray, n_modes: int) -> ModeCoverage:
    """:class:`ModeCoverage` from each sample's mode (N,) and whether it is high quality (N,)."""
    counts = np.bincount(assigned[high_quality], minlength=n_modes).astype(np.int64)
    counts.flags.writeable = False
    n_hq = int(counts.sum())
    if n_hq == 0:
        reverse_kl = float("nan")
    else:
        p_hat = counts[counts > 0] / n_hq
        reverse_kl = float(np.sum(p_hat * np.log(n_modes * p_hat)))
    return ModeCoverage(
        modes=int(np.count_nonzero(counts)),
        hq_fraction=n_hq / len(assigned),
        reverse_kl=reverse_kl,
        counts=counts,
    )


def class_coverage(probabilities: np.ndarray | torch.Tensor,
                   threshold: float = 0.9) -> ModeCoverage:
    """Mode count of generated images through a classifier: the rule of :func:`mode_coverage`
    with classes for modes and the classifier's confidence for quality.

    Sample i goes to class argmax_k p_ik and counts (is "high quality") if
    max_k p_ik >= ``threshold``. ``modes`` is the number of classes with at least one such
    sample, ``hq_fraction`` their
    share of all samples, ``reverse_kl`` = KL(p_hat || U_K) = sum_k p_hat_k log(K p_hat_k) over
    their class histogram p_hat (nats, in [0, log K]; ``nan`` when no sample counts). One class
    only gives log K; a histogram uniform over the K classes gives 0. The stacked-MNIST mode
    count (Metz et al. 2017, Unrolled GAN; Srivastava et al. 2017, VEEGAN) on one digit.

    Parameters
    ----------
    probabilities : array or Tensor (N, K)
        Class probabilities of N samples (rows sum to 1), e.g. from a classifier trained on
        the real data.
    threshold : float, default 0.9
        Least probability of the chosen class, in (0, 1].

    Returns
    -------
    ModeCoverage
        ``counts[k]`` = confident samples of class k.

    Examples
    --------
    >>> p = np.array([[0.95, 0.05], [0.05, 0.95], [0.6, 0.4]])
    >>> class_coverage(p).as_dict()
    {'modes': 2, 'hq_fraction': 0.6666666666666666, 'reverse_kl': 0.0, 'counts': [1, 1]}
    """
    p = _as_float64_matrix("probabilities", probabilities)
    threshold = _checks.finite_real("threshold", threshold, above=0)
    if threshold > 1:
        raise _checks.BadValue("threshold", threshold, "a probability in (0, 1]")
    if not np.all(np.isfinite(p)) or p.min() < 0 or not np.allclose(p.sum(1), 1, atol=1e-6):
        raise ValueError("probabilities must be finite, >= 0 and sum to 1 in every row")
    return _coverage(p.argmax(1), p.max(1) >= threshold, p.shape[1])
