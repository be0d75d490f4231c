"""One error boundary for every command: an expected failure becomes one message on stderr and the
documented exit code; a traceback appears only with ``--debug`` or for a real bug.

Expected failures and their codes (the codes are :mod:`inpaintstudio.errors`'s): an error that
carries an integer ``exit_code`` attribute (e.g. :class:`inpaintstudio.fetch.FetchError`) gets that
code; otherwise :data:`EXPECTED_FAILURES` decides, first match wins:

* 3 weights missing: a deep model's checkpoint, the landmark detector's, LPIPS/FID backbones;
* 2 bad input or usage: unreadable or too large images, masks of another size, an output that would
  overwrite something or cannot be written, unknown models, unknown devices, bad option values,
  checkpoints that do not fit, fixture folders and training configs that cannot be read, and any
  error the operating system reports for a path (permission, missing folder, name too long...);
* 1 a check failed: a landmark backend that is not installed; batches report their own failures.

A class counts only once its module has been imported (looked up in ``sys.modules``): an error
cannot come from a module nobody imported, and the boundary itself imports nothing heavy.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from collections.abc import Callable

from inpaintstudio.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_WEIGHTS_MISSING

__all__ = ["EXPECTED_FAILURES", "exit_code_of", "message_of", "run_command", "report_failure"]

#: (module, class, exit code), in order: subclasses before their bases (WeightsMissingError is an OSError).
EXPECTED_FAILURES: tuple[tuple[str, str, int], ...] = (
    ("inpaintstudio.errors", "WeightsMissingError", EXIT_WEIGHTS_MISSING),
    ("inpaintstudio.landmarks", "LandmarkWeightsMissingError", EXIT_WEIGHTS_MISSING),
    ("inpaintstudio.metrics", "BackboneMissingError", EXIT_WEIGHTS_MISSING),
    ("inpaintstudio.backbones", "BackboneMissingError", EXIT_WEIGHTS_MISSING),
    ("inpaintstudio.fetch", "NotFetchableError", EXIT_WEIGHTS_MISSING),
    ("inpaintstudio.fetch", "OfflineError", EXIT_WEIGHTS_MISSING),
    ("inpaintstudio.fetch", "FetchError", EXIT_FAILED),
    ("inpaintstudio.weight_sources", "UnknownVariantError", EXIT_BAD_INPUT),
    ("inpaintstudio.weight_sources", "LockFileError", EXIT_BAD_INPUT),
    ("inpaintstudio.landmarks", "BackendUnavailableError", EXIT_FAILED),
    ("inpaintstudio.errors", "UnknownModelError", EXIT_BAD_INPUT),
    ("inpaintstudio.io", "InputError", EXIT_BAD_INPUT),
    ("inpaintstudio.engines", "DeviceError", EXIT_BAD_INPUT),
    ("inpaintstudio.pipeline", "OptionError", EXIT_BAD_INPUT),
    ("inpaintstudio.weights", "WeightsError", EXIT_BAD_INPUT),
    ("inpaintstudio.parity", "ParityInputError", EXIT_BAD_INPUT),
    ("inpaintstudio.landmarks", "NoFaceError", EXIT_BAD_INPUT),
    ("inpaintstudio.training.trainer", "ConfigError", EXIT_BAD_INPUT),
    ("yaml", "YAMLError", EXIT_BAD_INPUT),
    ("json", "JSONDecodeError", EXIT_BAD_INPUT),
    ("builtins", "UnicodeDecodeError", EXIT_BAD_INPUT),
    ("builtins", "OSError", EXIT_BAD_INPUT),
)


def exit_code_of(error: BaseException) -> int | None:
    """The documented exit code of an expected failure, ``None`` for anything else (a bug)."""
    carried = getattr(error, "exit_code", None)
    if isinstance(carried, int) and not isinstance(carried, bool):
        return carried
    for module_name, class_name, code in EXPECTED_FAILURES:
        module = sys.modules.get(module_name)
        kind = getattr(module, class_name, None) if module is not None else None
        if isinstance(kind, type) and isinstance(error, kind):
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
