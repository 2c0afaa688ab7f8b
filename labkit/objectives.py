"""The names :mod:`labkit.study` still imports from here; the losses and constraints live in
:mod:`labkit.gan.losses` and :mod:`labkit.gan.constraints`."""

# re-export until the reorg branches merge
from labkit.gan.losses import critic_loss, distance_estimate

__all__ = ["critic_loss", "distance_estimate"]
