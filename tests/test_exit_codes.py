"""Exit codes hang on classes: every error class the package defines derives from one exit-code base class."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re

import pytest
import yaml

import inpaintstudio
from inpaintstudio import errors
from inpaintstudio.cli import boundary
from tests.conftest import REPO

# what each kind of failure must return (README, "Command line"); a new class takes its code from its base
EXPECTED = {
    "UnknownModelError": 2, "WeightsMissingError": 3, "DeviceError": 2, "UnknownVariantError": 2,
    "LockFileError": 2, "WeightsError": 2, "BackboneMissingError": 3, "InputError": 2, "ImageReadError": 2,
    "ImageTooLargeError": 2, "MaskSizeError": 2, "OverwriteError": 2, "OutputError": 2, "FetchError": 1,
    "NotFetchableError": 3, "OfflineError": 3, "VerificationError": 1, "LockConflictError": 1,
    "LandmarkError": 1, "NoFaceError": 2, "BackendUnavailableError": 1, "LandmarkWeightsMissingError": 3,
    "OptionError": 2, "ParityInputError": 2,
}
BASES = (errors.ExpectedError, errors.CheckFailedError, errors.BadInputError, errors.WeightsUnavailableError)


def package_error_classes() -> dict[str, type[BaseException]]:
    found = {}
    for info in pkgutil.walk_packages(inpaintstudio.__path__, "inpaintstudio."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__ and value not in BASES:
                found[value.__qualname__] = value
    return found


def documented_codes() -> set[int]:
    table = (REPO / "README.md").read_text().split("| code | meaning |", 1)[1].split("\n\n", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d) \|", table, re.M)}


def test_every_error_class_of_the_package_maps_to_a_documented_exit_code() -> None:
    found = package_error_classes()
    codes = documented_codes() - {0}
    assert codes == set(errors.EXIT_CODES) == {1, 2, 3}
    for name, kind in found.items():
        assert issubclass(kind, errors.ExpectedError), f"{kind.__module__}.{name} has no exit-code base class"
        assert kind.exit_code in codes, name
        instance = kind.__new__(kind)
        assert boundary.exit_code_of(instance) == kind.exit_code, name
    assert {name: kind.exit_code for name, kind in found.items() if name in EXPECTED} == EXPECTED
    assert set(EXPECTED) <= set(found), set(EXPECTED) - set(found)


@pytest.mark.parametrize(("error", "code"), [
    (yaml.YAMLError("bad"), 2), (json.JSONDecodeError("bad", "{", 0), 2),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), 2), (PermissionError(13, "denied"), 2),
    (RuntimeError("a bug"), None), (KeyError("a bug"), None), (ValueError("a bug"), None),
])
def test_foreign_failures_by_class_and_bugs_keep_their_traceback(error: BaseException, code: int | None) -> None:
    assert boundary.exit_code_of(error) == code


def test_the_boundary_names_no_class_by_string() -> None:
    source = (REPO / "inpaintstudio" / "cli" / "boundary.py").read_text()
    assert "sys.modules" not in source and all(isinstance(kind, type) for kind, _ in boundary.FOREIGN_FAILURES)
