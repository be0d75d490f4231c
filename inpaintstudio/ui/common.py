"""Small pieces shared by the tabs: user-facing errors, the optional ``spaces.GPU``, device text."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from inpaintstudio import io as image_io
from inpaintstudio import registry, weights

__all__ = ["USER_ERRORS", "user_errors", "gpu", "device_text", "skip"]

F = TypeVar("F", bound=Callable[..., Any])

# Failures a user can fix: their message is shown as it is (gr.Error), never a bare "Error".
USER_ERRORS: tuple[type[BaseException], ...] = (
    image_io.InputError,
    registry.UnknownModelError,
    registry.WeightsMissingError,
    weights.WeightsError,
    ValueError,
    FileNotFoundError,
)


def user_errors(function: F) -> F:
    """Turn a user-fixable failure into ``gr.Error`` with its message (a toast in the browser)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as error:
            raise gr.Error(str(error), duration=None) from error

    return wrapper  # type: ignore[return-value]


def gpu(function: F) -> F:
    """``spaces.GPU`` on a Hugging Face ZeroGPU Space (when the package is importable), else unchanged."""
    if importlib.util.find_spec("spaces") is None:
        return function
    import spaces  # pragma: no cover - only on Spaces

    return spaces.GPU(function)  # pragma: no cover


def device_text() -> str:
    """Which device the deep models run on here (classical engines always use the CPU)."""
    from inpaintstudio.engines import select_device

    device = select_device()
    detail = ""
    if device.startswith("cuda"):
        import torch

        detail = f" ({torch.cuda.get_device_name(0)})"
    return f"**Device:** `{device}`{detail}; classical engines run on the CPU."


def skip() -> Any:
    return gr.skip()
