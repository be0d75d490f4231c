"""The command line: ``main`` (every command group), ``boundary`` (one message and one exit code per
expected failure) and ``train_eval`` (the ``train`` and ``eval`` commands)."""

from inpaintstudio.cli.main import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_WEIGHTS_MISSING, main

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "EXIT_WEIGHTS_MISSING", "main"]
