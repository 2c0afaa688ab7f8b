"""Critics and discriminators trained on a FIXED pair of sample sets, held against exact OT.

The paper's Figures 1 and 2 ask what a network trained to (near) optimality between two given
distributions computes: a GAN discriminator gives a Jensen-Shannon estimate stuck at log 2 and a
vanishing gradient, a WGAN critic an estimate of W1 (up to a constant) and a useful gradient. Here
the critic is trained full batch on two point clouds, so its estimate and its input gradient can
be compared with the exact W1 and the exact OT gradient between the very same points
(:func:`labkit.ot.w1`, :func:`labkit.ot.w1_gradient`). No generator moves: ``steps`` is the
critic's whole budget (n_critic x generator iterations, in Algorithm 1's terms).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from labkit import _checks, metrics, ot
from labkit.gan import constraints, losses
from labkit.models import MLPCritic

__all__ = [
    "CriticConfig",
    "CriticFit",
    "CriticReport",
    "distance_estimate",
    "exact_gradient_cosine",
    "input_gradient",
    "layer_gradient_norms",
    "report",
    "train_critic",
    "weight_values",
]

#: Losses a critic is trained with here: the WGAN critic and the minimax GAN discriminator
#: (:data:`labkit.gan.losses.FIXED_PAIR_LOSSES`).
LOSSES = losses.FIXED_PAIR_LOSSES


@dataclass(frozen=True)
class CriticConfig:
    """How a critic is trained on a fixed pair (the lab's stated settings, not the paper's).

    Parameters
    ----------
    loss : {"wgan", "gan"}, default "wgan"
        ``"wgan"``: the critic maximises mean f(real) - mean f(fake) (paper, Algorithm 1).
        ``"gan"``: the discriminator D = sigmoid(f) maximises the minimax objective
        E log D(real) + E log(1 - D(fake)) (paper, Section 3; Goodfellow et al. 2014).
    constraint : {"clip", "gp", "sn", "none"}, default "clip"
        Weight clipping to [-clip, clip] (Algorithm 1), gradient penalty (WGAN-GP), spectral
        norm (SN-GAN) or none; see :data:`labkit.gan.constraints.REGISTRY`.
    clip : float, default 0.01
        c > 0 (used by ``"clip"``).
    clip_timing : {"after", "before"}, default "after"
        Clamp after each step (Algorithm 1) or at the start of each (the authors' code).
    gp_lambda : float, default 10.0
        lambda >= 0 (used by ``"gp"``).
    hidden, depth : int, default 64 and 3
        Width (>= 1) and number of hidden ReLU layers (>= 1) of the :class:`MLPCritic`.
    steps : int, default 500
        Full-batch critic updates, >= 0.
    lr : float, default 1e-3
        Learning rate of Adam with ``betas``. One optimiser for every constraint keeps a
        comparison about the constraint; the paper's worry about momentum concerns a moving
        generator, which a fixed pair does not have.
    betas : (float, float), default (0.5, 0.9)
    seed : int, default 0
        Seeds the initial weights and the penalty's interpolates.
    """

    loss: str = "wgan"
    constraint: str = "clip"
    clip: float = 0.01
    clip_timing: str = "after"
    gp_lambda: float = 10.0
    hidden: int = 64
    depth: int = 3
    steps: int = 500
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.constraint not in constraints.CONSTRAINTS:
            raise ValueError(
                f"constraint must be one of {constraints.CONSTRAINTS}, got {self.constraint!r}")
        _checks.choice("clip_timing", self.clip_timing, constraints.CLIP_TIMINGS)
        object.__setattr__(self, "clip", _checks.finite_real("clip", self.clip, above=0))
        lam = _checks.finite_real("gp_lambda", self.gp_lambda)
        if lam < 0:
            raise ValueError(f"gp_lambda must be a finite number >= 0, got {self.gp_lambda!r}")
        _checks.integer("hidden", self.hidden, minimum=1)
        _checks.integer("depth", self.depth, minimum=1)
        _checks.integer("steps", self.steps, minimum=0)
        _checks.integer("seed", self.seed, minimum=0)
        object.__setattr__(self, "lr", _checks.finite_real("lr", self.lr, above=0))
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(0 <= _checks.finite_real("betas", b) < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")

    def make_constraint(self) -> constraints.Constraint:
        """The :class:`labkit.gan.constraints.Constraint` this config names."""
        return constraints.from_config(self)


@dataclass
class CriticFit:
    """A critic trained by :func:`train_critic`, in eval mode, and its training record.

    Attributes
    ----------
    critic : torch.nn.Module
        f: (B, d) -> (B,); for ``loss="gan"`` the logit, D = sigmoid(f).
    config : CriticConfig
    estimate : float
        :func:`distance_estimate` on the full sets after the last step.
    history : dict of str to list
        ``"step"``, ``"estimate"`` and ``"grad_fake"`` (mean norm of the generator loss's input
        gradient at the fake points, see :func:`input_gradient`) at the recorded steps.
    seconds : float
        Wall time of the training.
    """

    critic: nn.Module
    config: CriticConfig
    estimate: float
    history: dict[str, list] = field(default_factory=dict)
    seconds: float = 0.0


def _points(name: str, x) -> torch.Tensor:
    x = torch.as_tensor(_checks.float_array(name, x.detach() if isinstance(x, torch.Tensor)
                                            else x), dtype=torch.float32)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (n, d) with n, d >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return x


def _pair(real, fake) -> tuple[torch.Tensor, torch.Tensor]:
    real, fake = _points("real", real), _points("fake", fake)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must have the same dimension d, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    return real, fake


def distance_estimate(critic: nn.Module, real, fake, loss: str = "wgan") -> float:
    """The distance a critic certifies between two sample sets (paper, Eq. 2 and Section 3).

    ``"wgan"``: W_est = mean f(real) - mean f(fake), which is K * W1 at best for a K-Lipschitz f.
    ``"gan"``: the JS estimate (L(D) + 2 log 2) / 2 with L(D) = mean log D(real) +
    mean log(1 - D(fake)) the minimax objective; it equals JS (nats, at most log 2) at the
    optimal D (Goodfellow et al. 2014, Theorem 1). Both via
    :func:`labkit.gan.losses.critic_estimate`.

    Parameters
    ----------
    critic : torch.nn.Module
        f: (B, d) -> (B,).
    real : array-like or torch.Tensor, shape (n, d)
    fake : array-like or torch.Tensor, shape (m, d)
    loss : {"wgan", "gan"}

    Returns
    -------
    float
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    real, fake = _pair(real, fake)
    with torch.no_grad():
        return float(losses.critic_estimate(loss, critic, real, fake))


def input_gradient(critic: nn.Module, x, loss: str | None = None) -> np.ndarray:
    """Input gradient at each point: grad_x f(x), or of the generator's per-sample loss.

    With ``loss=None``: grad_x f(x_i). With ``loss`` given: the gradient of the generator's loss
    at x_i (:func:`labkit.gan.losses.generator_loss` of that one sample), what the generator
    receives through a fake point: -grad f for ``"wgan"``, grad log(1 - D) = -D grad f for the
    minimax ``"gan"``, which vanishes as D(x) -> 0 (paper, Figure 2).

    Parameters
    ----------
    critic : torch.nn.Module
        f: (B, d) -> (B,).
    x : array-like or torch.Tensor, shape (n, d)
    loss : {"wgan", "gan"} or None

    Returns
    -------
    np.ndarray, shape (n, d), float64
    """
    if loss is not None and loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES} or None, got {loss!r}")
    x = _points("x", x).requires_grad_(True)
    with torch.enable_grad():
        f = critic(x)
        value = f if loss is None else losses.generator_loss(loss, f.unsqueeze(-1))
        (grad,) = torch.autograd.grad(value.sum(), x)
    return grad.double().numpy()


def exact_gradient_cosine(critic: nn.Module, real, fake, w1_grad=None) -> np.ndarray:
    """Cosine between the critic's gradient at each fake point and the exact OT direction.

    cos_i = <grad f(x_i), -dW1/dx_i> / (||grad f(x_i)|| ||dW1/dx_i||), with dW1/dx_i from the
    optimal plan (:func:`labkit.ot.w1_gradient`): 1 when the generator is pushed exactly where
    W1 falls fastest (paper, Theorem 3: the optimal critic's gradient is that direction).
    Points where either gradient is 0 get NaN.

    Parameters
    ----------
    critic : torch.nn.Module
        f: (B, d) -> (B,), trained to be high on ``real``.
    real : array-like or torch.Tensor, shape (m, d)
    fake : array-like or torch.Tensor, shape (n, d)
    w1_grad : np.ndarray, shape (n, d), optional
        ``ot.w1_gradient(fake, real)`` if already computed (it depends on the points only).

    Returns
    -------
    np.ndarray, shape (n,)
    """
    real, fake = _pair(real, fake)
    ascent = input_gradient(critic, fake)
    if w1_grad is None:
        w1_grad = ot.w1_gradient(fake.double(), real.double())
    descent = -np.asarray(w1_grad, dtype=np.float64)
    if descent.shape != ascent.shape:
        raise ValueError(f"w1_grad must have shape {ascent.shape}, got {descent.shape}")
    norms = np.linalg.norm(ascent, axis=1) * np.linalg.norm(descent, axis=1)
    dots = np.einsum("nd,nd->n", ascent, descent)
    return np.divide(dots, norms, out=np.full(len(dots), np.nan), where=norms > 0)


def _linears(critic: nn.Module) -> list[nn.Linear]:
    return [m for m in critic.modules() if isinstance(m, nn.Linear)]


def layer_gradient_norms(critic: nn.Module, real, fake, loss: str = "wgan") -> np.ndarray:
    """Norm of the critic loss's gradient w.r.t. each layer's weight, input layer first.

    ||d L / d W_l||_2 with L = :func:`labkit.gan.losses.critic_loss` on the full sets, no penalty
    (WGAN-GP, Figure 1b: under clipping these explode or vanish with depth). Uses
    :func:`labkit.metrics.layer_grad_norms`; the critic's ``.grad`` are cleared afterwards.

    Parameters
    ----------
    critic : torch.nn.Module
    real, fake : array-like or torch.Tensor, shapes (n, d) and (m, d)
    loss : {"wgan", "gan"}

    Returns
    -------
    np.ndarray, shape (L,)
        One value per Linear layer (L = depth + 1 for an MLP critic).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    real, fake = _pair(real, fake)
    critic.zero_grad(set_to_none=True)
    with torch.enable_grad():
        losses.critic_loss(loss, critic(real), critic(fake)).backward()
    norms = metrics.layer_grad_norms(critic)
    critic.zero_grad(set_to_none=True)
    weight_names = [name for name in norms if name.endswith(("weight", "weight.original"))]
    return np.array([norms[name] for name in weight_names])


def weight_values(critic: nn.Module) -> np.ndarray:
    """Every effective weight of the critic's Linear layers, flattened (biases excluded).

    The weights the forward pass uses: for spectral norm W / sigma(W), not the stored original.
    Under clipping they pile up at +-c (WGAN-GP, Figure 1b, right).

    Returns
    -------
    np.ndarray, shape (P,)
    """
    with torch.no_grad():
        return torch.cat([m.weight.detach().flatten() for m in _linears(critic)]).double().numpy()


def train_critic(real, fake, config: CriticConfig | None = None, *,
                 record_every: int = 0) -> CriticFit:
    """Train a critic (or discriminator) to near optimality between two fixed sample sets.

    Full batch: each of ``config.steps`` Adam steps minimises
    critic_loss(f(real), f(fake)) + penalty under ``config.constraint`` with its hooks in the order
    of the training loop (:func:`labkit.gan.constraints.critic_update`); for ``"wgan"`` that is the
    paper's max_f E_r f - E_g f (Eq. 2, Algorithm 1 lines 2-8 with the generator frozen), for
    ``"gan"`` the minimax discriminator (Section 3, Figure 2). Deterministic for a given seed on
    one CPU thread count, whatever the state of torch's global RNG.

    Parameters
    ----------
    real : array-like or torch.Tensor, shape (n, d)
        Samples of P_r.
    fake : array-like or torch.Tensor, shape (m, d)
        Samples of P_g.
    config : CriticConfig, optional
        Default ``CriticConfig()``: clipped WGAN critic, c = 0.01, MLP 3 x 64, 500 steps.
    record_every : int, default 0
        If > 0, record estimate and mean generator-gradient norm at the fake points at step 0
        and every ``record_every`` steps (and the last one) in ``history``.

    Returns
    -------
    CriticFit
    """
    config = CriticConfig() if config is None else config
    if not isinstance(config, CriticConfig):
        raise ValueError(f"config must be a CriticConfig, got {type(config).__name__}")
    record_every = _checks.integer("record_every", record_every, minimum=0)
    real, fake = _pair(real, fake)
    rng = torch.Generator().manual_seed(config.seed)
    constraint = config.make_constraint()
    critic = constraint.prepare(MLPCritic(real.shape[1], config.hidden, config.depth,
                                          generator=rng))
    optimizer = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas)
    # The penalty pairs real and fake points one to one; with unequal sizes it uses the first ones.
    k = min(len(real), len(fake))
    history = {"step": [], "estimate": [], "grad_fake": []}

    def record(step: int) -> None:
        critic.eval()
        history["step"].append(step)
        history["estimate"].append(distance_estimate(critic, real, fake, config.loss))
        grad = input_gradient(critic, fake, config.loss)
        history["grad_fake"].append(float(np.linalg.norm(grad, axis=1).mean()))
        critic.train()

    def losses_of_step() -> tuple[torch.Tensor, torch.Tensor | float]:
        f_real, f_fake = critic(torch.cat([real, fake])).split([len(real), len(fake)])
        return (losses.critic_loss(config.loss, f_real, f_fake),
                constraint.penalty(critic, real[:k], fake[:k], generator=rng))

    start = time.perf_counter()
    critic.train()
    for step in range(config.steps):
        if record_every and step % record_every == 0:
            record(step)
        constraints.critic_update(constraint, critic, optimizer, losses_of_step)
    if record_every:
        record(config.steps)
    seconds = time.perf_counter() - start
    critic.eval()
    estimate = distance_estimate(critic, real, fake, config.loss)
    if not math.isfinite(estimate):
        raise RuntimeError(f"critic training diverged (estimate {estimate}); lower lr")
    return CriticFit(critic, config, estimate, history, seconds)


@dataclass(frozen=True)
class CriticReport:
    """A trained WGAN critic held against exact OT on the points it was trained on.

    Attributes
    ----------
    estimate : float
        W_est = mean f(real) - mean f(fake).
    w1_exact : float
        Exact W1 between the same points (POT).
    ratio : float
        estimate / w1_exact: the K of "W up to a constant" (paper, Section 3), NaN if W1 = 0.
    cosine : float
        Mean over fake points of :func:`exact_gradient_cosine` (NaNs left out).
    layer_norms : np.ndarray, shape (L,)
        :func:`layer_gradient_norms`, input layer first (WGAN-GP, Figure 1b).
    weights : np.ndarray, shape (P,)
        :func:`weight_values`.
    """

    estimate: float
    w1_exact: float
    ratio: float
    cosine: float
    layer_norms: np.ndarray
    weights: np.ndarray


def report(fit: CriticFit, real, fake, w1_exact: float | None = None,
           w1_grad=None) -> CriticReport:
    """Everything the notebook and the clipping explorer show about one trained WGAN critic.

    Parameters
    ----------
    fit : CriticFit
        From :func:`train_critic` with ``loss="wgan"`` on ``real`` and ``fake``.
    real, fake : array-like or torch.Tensor, shapes (m, d) and (n, d)
    w1_exact : float, optional
        The exact W1 between ``real`` and ``fake`` if already known (else computed).
    w1_grad : np.ndarray, shape (n, d), optional
        ``ot.w1_gradient(fake, real)`` if already known (else computed).

    Returns
    -------
    CriticReport
    """
    if fit.config.loss != "wgan":
        raise ValueError(f"fit must be a WGAN critic (loss='wgan'), got loss={fit.config.loss!r}")
    real, fake = _pair(real, fake)
    exact = ot.w1(real.double(), fake.double()) if w1_exact is None else float(w1_exact)
    cos = exact_gradient_cosine(fit.critic, real, fake, w1_grad)
    return CriticReport(
        estimate=fit.estimate,
        w1_exact=exact,
        ratio=fit.estimate / exact if exact > 0 else float("nan"),
        cosine=float(np.nanmean(cos)) if np.isfinite(cos).any() else float("nan"),
        layer_norms=layer_gradient_norms(fit.critic, real, fake),
        weights=weight_values(fit.critic),
    )
