"""Errors every layer may raise, and the exit codes every command returns.

This module imports nothing from the package, so any layer can use it. Front ends map these errors to
the exit codes below; the codes are stable, for scripts:

    0 success; 1 a check failed (parity outside tolerance, a model that could not run);
    2 bad usage or bad input (unreadable image, mask of another size, unknown model);
    3 weights missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from inpaintstudio.modelcard import ModelCard

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_BAD_INPUT",
    "EXIT_WEIGHTS_MISSING",
    "UnknownModelError",
    "WeightsMissingError",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_WEIGHTS_MISSING = 3


class UnknownModelError(KeyError):
    """A model name that no card carries."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0])


class WeightsMissingError(FileNotFoundError):
    """A deep model was asked for but its weights are not on disk."""

    def __init__(self, message: str, *, card: "ModelCard", expected: Path) -> None:
        super().__init__(message)
        self.card = card
        self.expected = expected

    def __str__(self) -> str:
        return str(self.args[0])
