"""The model cards: one small, torch-free file per model, each defining ``CARDS`` (a list of
:class:`inpaintstudio.modelcard.ModelCard`).

:mod:`inpaintstudio.registry` discovers every module of this package with :mod:`pkgutil`, so adding a
model is one network file in :mod:`inpaintstudio.models` plus one card file here naming it
(``module="inpaintstudio.models.<name>"``); nothing else changes. Card files import only
:mod:`inpaintstudio.modelcard`, so listing models never imports torch.
"""
