"""Training and evaluation of the studio's networks (BasicSR's split: networks stay pure).

Modules: ``backbones`` (frozen VGG / Inception without torchvision), ``data`` (images, masks, landmarks),
``losses`` and ``discriminators`` (per-family objectives with the released-code weights), ``families``
(how each family's network is fed and what it returns during training), ``trainer`` (the loop, checkpoints,
exact resume, DDP), ``evaluate`` (the thesis protocol) and ``commands`` (the ``train`` / ``eval`` CLI).
Importing this package imports nothing heavy.
"""
