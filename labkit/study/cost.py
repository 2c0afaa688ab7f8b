"""The cost of one generator iteration of a toy ensemble: its matrix products and their
floating-point operations (the benchmarks' GEMM-rate denominator)."""

from __future__ import annotations

from labkit import _checks


def step_matmuls(config) -> list[tuple[str, int, int, int, int]]:
    """The matrix products of one generator iteration of a toy ensemble, from layer shapes.

    For :class:`labkit.train.Trainer`'s loop on the CPU (no fast path) with MLPs, the WGAN or
    GAN losses, and clipping or no constraint: the critic phase runs the frozen generator once
    on ``n_critic * m`` codes, then per critic step one critic pass on the 2m real and fake
    points, its backward (weight gradients of every layer, input gradients of all but the
    first, whose input needs none); the generator step runs generator and critic on m codes
    and back-propagates to the generator's weights (critic: input gradients only; generator:
    weight gradients of every layer, input gradients of all but the first).

    Parameters
    ----------
    config : labkit.train.TrainConfig
        A toy config with ``constraint`` in ("clip", "none").

    Returns
    -------
    list of (kind, S, B, i, o)
        One entry per batched product (S, B, i) x (S, i, o) or its backward transposes;
        ``kind`` is "forward", "grad_input" ((S, B, o) x (S, o, i)) or "grad_weight"
        ((S, i, B) x (S, B, o)). Each costs 2 S B i o floating-point operations.
    """
    from labkit import toys

    if config.constraint not in ("clip", "none") or config.target not in toys.TARGETS:
        raise _checks.BadValue("config", f"constraint={config.constraint!r}, "
                               f"target={config.target!r}", "a toy config with clipping or "
                               "no constraint (the penalty's double backward is not counted)")
    S, m, n = config.n_seeds, config.batch_size, config.n_critic
    dim = toys.make_target(config.target).dim
    gen = list(zip([config.nz] + [config.hidden] * config.depth,
                   [config.hidden] * config.depth + [dim], strict=True))
    critic = list(zip([dim] + [config.hidden] * config.depth,
                      [config.hidden] * config.depth + [1], strict=True))
    out = [("forward", S, n * m, i, o) for i, o in gen]  # frozen generator, all n batches
    for _ in range(n):
        out += [("forward", S, 2 * m, i, o) for i, o in critic]
        out += [("grad_weight", S, 2 * m, i, o) for i, o in critic]
        out += [("grad_input", S, 2 * m, i, o) for i, o in critic[1:]]
    out += [("forward", S, m, i, o) for i, o in gen + critic]
    out += [("grad_input", S, m, i, o) for i, o in critic]
    out += [("grad_weight", S, m, i, o) for i, o in gen]
    out += [("grad_input", S, m, i, o) for i, o in gen[1:]]
    return out


def step_flops(config) -> int:
    """Floating-point operations of the matrix products of one generator iteration
    (:func:`step_matmuls`), 2 S B i o each."""
    return sum(2 * s * b * i * o for _, s, b, i, o in step_matmuls(config))
