"""Weights: checkpoint files and tensors (``store``: the weights folder, safetensors, strict loading, imports),
where the authors publish them and the lock file (``sources``), and one fetch path for Drive, plain URLs and
the Hub (``fetch``). The store's names are importable from here."""

from inpaintstudio.weights import store as _store
from inpaintstudio.weights.store import *  # noqa: F403 - the store's public names, listed once in its __all__

__all__ = list(_store.__all__)
