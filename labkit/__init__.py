"""WGAN Lab's library: toy data, exact optimal transport, models, objectives and the training loop.

Submodules are imported on demand (``import labkit.ot``), so ``import labkit`` stays cheap.
"""

__version__ = "0.1.0"
