"""WGAN Lab's library: toy data, exact optimal transport, models, GAN losses and constraints,
and the training loop.

Submodules are imported on demand (``import labkit.ot``), so ``import labkit`` stays cheap.
"""

__version__ = "0.1.0"


def quick_mode() -> bool:
    """Whether ``LABKIT_QUICK`` asks for smoke-sized runs (notebooks, ``python -m labkit study``).

    ``1``, ``true``, ``yes`` mean yes; ``0``, ``false``, ``no``, empty or unset mean no; any other
    value raises ``ValueError`` naming the variable (one rule for every notebook and command).
    """
    from labkit._checks import env_flag

    return env_flag("LABKIT_QUICK")
