"""Fixtures shared by labkit's unit tests."""

import pytest
import torch


def seeded(k: int) -> torch.Generator:
    """A fresh CPU generator seeded with ``k``."""
    return torch.Generator().manual_seed(k)


@pytest.fixture(autouse=True)
def fixed_global_seed():
    """Unseeded torch.randn calls in the tests draw the same numbers on every run."""
    torch.manual_seed(0)
