"""Small pieces shared by the tabs: user-facing errors, the optional ``spaces.GPU``, device text."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import gradio as gr

from inpaintstudio import io as image_io
from inpaintstudio import registry, weights

__all__ = ["USER_ERRORS", "user_error", "user_errors", "gpu", "device_text", "Outputs", "named", "mask_tools",
           "MASK_OPERATIONS"]

F = TypeVar("F", bound=Callable[..., Any])
LOG = logging.getLogger("inpaintstudio.ui")

# Failures a user can fix: their message is shown as it is (gr.Error), never a bare "Error".
USER_ERRORS: tuple[type[BaseException], ...] = (
    image_io.InputError,
    registry.UnknownModelError,
    registry.WeightsMissingError,
    weights.WeightsError,
    ValueError,
    FileNotFoundError,
)


def user_error(message: str, where: str = "studio") -> gr.Error:
    """A message for the user (a toast that stays), logged as one line: a user's mistake is no bug,
    so no traceback reaches the console."""
    LOG.warning("%s: %s", where, message)
    return gr.Error(message, duration=None, print_exception=False)


def user_errors(function: F) -> F:
    """Turn a user-fixable failure into :func:`user_error` with its message (a toast in the browser).

    Anything else is a bug: Gradio prints its traceback and the browser shows a generic error.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except gr.Error as error:
            if getattr(error, "print_exception", True):
                raise user_error(str(error.message), getattr(function, "__name__", "studio")) from None
            raise
        except USER_ERRORS as error:
            raise user_error(str(error), getattr(function, "__name__", "studio")) from None

    return wrapper  # type: ignore[return-value]


def gpu(function: F) -> F:
    """``spaces.GPU`` on a Hugging Face ZeroGPU Space (when the package is importable), else unchanged."""
    if importlib.util.find_spec("spaces") is None:
        return function
    import spaces  # pragma: no cover - only on Spaces

    return spaces.GPU(function)  # pragma: no cover


def device_text() -> str:
    """Which device the deep models run on here (classical engines always use the CPU)."""
    from inpaintstudio.core.engines import select_device

    device = select_device()
    detail = ""
    if device.startswith("cuda"):
        import torch

        detail = f" ({torch.cuda.get_device_name(0)})"
    return f"**Device:** `{device}`{detail}; classical engines run on the CPU."


@dataclass
class Outputs:
    """A handler's named results; :func:`named` turns one into the values of the outputs it names."""


def named(handler: Callable[..., Outputs], names: list[str], *bound: Any) -> Callable[..., tuple]:
    """``handler`` with its first arguments ``bound``, returning the fields ``names`` of its :class:`Outputs` in
    that order, as Gradio wants. The signature and type hints stay the handler's (Gradio reads them to pass a
    ``gr.Progress`` or the event's data)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> tuple:
        result = handler(*bound, *args, **kwargs)
        return tuple(getattr(result, name) for name in names)

    signature = inspect.signature(handler)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[len(bound):])
    return wrapper


MASK_OPERATIONS = ("grow", "shrink", "invert", "clear")


def mask_tools(prefix: str) -> tuple[gr.Slider, gr.Slider, dict[str, gr.Button]]:
    """The grow / shrink / invert / clear buttons (ids ``{prefix}grow``...), their px slider and the feather slider."""
    with gr.Row():
        buttons = {name: gr.Button(name.capitalize(), size="sm", elem_id=f"{prefix}{name}", min_width=60)
                   for name in MASK_OPERATIONS}
    with gr.Row():
        px = gr.Slider(1, 64, value=8, step=1, label="Grow / shrink by (px)", elem_id=f"{prefix}grow-px")
        feather = gr.Slider(0, 64, value=0, step=1, label="Feather the edge (px, previewed)",
                            elem_id=f"{prefix}feather")
    return px, feather, buttons
