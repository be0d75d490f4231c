"""Training and evaluation of the studio's networks (BasicSR's split: networks stay pure).

Each model's recipe (losses, optimiser, discriminator, custom forward) lives beside its network as the module's
``TRAINING`` spec (:mod:`inpaintstudio.trainspec`); the discriminators are in
:mod:`inpaintstudio.models.layers.discriminators`, the frozen VGG / Inception backbones in
:mod:`inpaintstudio.training.backbones`. Modules here: ``data`` (images, masks, landmarks), ``losses`` (the loss terms),
``specs`` (reads a model's spec and feeds its network), ``trainer`` (the loop, checkpoints, exact resume, DDP),
``evaluate`` (the thesis protocol, through the pipeline) and ``commands`` (the ``train`` / ``eval`` CLI).
Importing this package imports nothing heavy.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""
