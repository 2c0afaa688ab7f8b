"""The GAN and WGAN games: the losses (:mod:`labkit.gan.losses`) and the Lipschitz constraints on
the critic (:mod:`labkit.gan.constraints`), each a registry whose entries carry everything the
training loop, the critic explorer (:mod:`labkit.critics`) and the study need.

Adding a loss or a constraint is one entry in one of these two files. Nothing here imports the
training loop.
"""
