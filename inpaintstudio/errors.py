"""Errors every layer may raise, and the exit codes every command returns.

This module imports nothing from the package, so any layer can use it. The codes are stable, for scripts:

    0 success; 1 a check failed (parity outside tolerance, a model that could not run);
    2 bad usage or bad input (unreadable image, mask of another size, unknown model);
    3 weights missing.

Every expected failure the package raises derives from one of three base classes, one per code:
:class:`CheckFailedError` (1), :class:`BadInputError` (2) and :class:`WeightsUnavailableError` (3). Its exit
code is the class attribute ``exit_code``, so renaming or moving a class cannot change the code a command
returns; anything else that escapes a command is a bug and keeps its traceback.
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
    "EXIT_CODES",
    "ExpectedError",
    "CheckFailedError",
    "BadInputError",
    "WeightsUnavailableError",
    "UnknownModelError",
    "WeightsMissingError",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_WEIGHTS_MISSING = 3

#: The documented codes of expected failures and what each means (README, "Command line").
EXIT_CODES = {EXIT_FAILED: "a check failed", EXIT_BAD_INPUT: "bad input or usage",
              EXIT_WEIGHTS_MISSING: "weights missing"}


class ExpectedError(Exception):
    """A failure a user can act on: one message and the exit code of its kind, no traceback."""

    exit_code: int = EXIT_FAILED


class CheckFailedError(ExpectedError):
    """Exit 1: a check failed, or something this machine lacks (a landmark backend) stopped the work."""

    exit_code = EXIT_FAILED


class BadInputError(ExpectedError):
    """Exit 2: bad input or usage (files, options, names, configs)."""

    exit_code = EXIT_BAD_INPUT


class WeightsUnavailableError(ExpectedError):
    """Exit 3: weights that are not on this machine (a model's, the landmark detector's, a backbone's)."""

    exit_code = EXIT_WEIGHTS_MISSING


class UnknownModelError(BadInputError, KeyError):
    """A model name that no card carries."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0])


class WeightsMissingError(WeightsUnavailableError, FileNotFoundError):
    """A deep model was asked for but its weights are not on disk."""

    def __init__(self, message: str, *, card: "ModelCard", expected: Path) -> None:
        super().__init__(message)
        self.card = card
        self.expected = expected

    def __str__(self) -> str:
        return str(self.args[0])
