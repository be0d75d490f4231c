"""One error boundary for every command: an expected failure becomes one message on stderr and the
documented exit code; a traceback appears only with ``--debug`` or for a real bug.

Expected failures and their codes (the codes are :mod:`inpaintstudio.errors`'s):

* the package's own: every class derives from :class:`~inpaintstudio.errors.CheckFailedError` (1),
  :class:`~inpaintstudio.errors.BadInputError` (2) or :class:`~inpaintstudio.errors.WeightsUnavailableError`
  (3), and carries its code as ``exit_code``;
* a few of Python's and PyYAML's, all bad input (2): :data:`FOREIGN_FAILURES` (a YAML or JSON file that does not
  parse, bytes that are not UTF-8, and any error the operating system reports for a path: permission,
  missing folder, name too long...).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import traceback
from collections.abc import Callable

import yaml

from inpaintstudio.errors import EXIT_BAD_INPUT, ExpectedError

__all__ = ["FOREIGN_FAILURES", "exit_code_of", "message_of", "run_command", "report_failure"]

#: Classes from outside the package that mean bad input, as (class, exit code); OSError last (it is the widest).
FOREIGN_FAILURES: tuple[tuple[type[BaseException], int], ...] = (
    (yaml.YAMLError, EXIT_BAD_INPUT),
    (json.JSONDecodeError, EXIT_BAD_INPUT),
    (UnicodeDecodeError, EXIT_BAD_INPUT),
    (OSError, EXIT_BAD_INPUT),
)


def exit_code_of(error: BaseException) -> int | None:
    """The documented exit code of an expected failure, ``None`` for anything else (a bug)."""
    if isinstance(error, ExpectedError):
        return error.exit_code
    for kind, code in FOREIGN_FAILURES:
        if isinstance(error, kind):
            return code
    return None


def _os_message(error: OSError) -> str:
    if error.errno is None or not error.strerror:
        return str(error)  # raised by our own code with a sentence
    from inpaintstudio.io import printable_path

    where = f"{printable_path(error.filename)}: " if error.filename is not None else ""
    reason = {errno.ENOENT: "no such file or folder"}.get(error.errno, error.strerror.lower())
    return f"{where}{reason}"


def message_of(error: BaseException) -> str:
    """The user's message: the command-line wording when the error has one, never a repr."""
    message = getattr(error, "cli_message", None)
    if not isinstance(message, str):
        if isinstance(error, OSError) and not hasattr(error, "card"):
            message = _os_message(error)
        else:
            message = str(error) if not isinstance(error, KeyError) or not error.args else str(error.args[0])
    message = message.strip() or type(error).__name__
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def report_failure(error: BaseException, *, debug: bool = False, prefix: str = "error") -> None:
    """Print ``prefix: message`` (and the traceback with ``debug``) to stderr."""
    if debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    print(f"{prefix}: {message_of(error)}", file=sys.stderr)


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, *, debug: bool = False) -> int:
    """Run one command; expected failures become a message and their exit code, bugs propagate."""
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - sorted into expected failures and bugs below
        code = exit_code_of(error)
        if code is None:
            raise
        report_failure(error, debug=debug)
        return code


def debug_requested(args: argparse.Namespace) -> bool:
    """``--debug`` anywhere on the command line, or ``INPAINTSTUDIO_DEBUG=1``."""
    return bool(getattr(args, "debug", False)) or os.environ.get("INPAINTSTUDIO_DEBUG", "") not in ("", "0")
