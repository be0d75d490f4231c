"""Small pieces shared by the tabs: user-facing errors, the optional ``spaces.GPU``, device text."""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from inpaintstudio import io as image_io
from inpaintstudio import registry, weights

__all__ = ["USER_ERRORS", "user_error", "user_errors", "gpu", "device_text", "mask_editor", "EDITOR_CANVAS"]

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
                raise user_error(str(error.message), function.__name__) from None
            raise
        except USER_ERRORS as error:
            raise user_error(str(error), function.__name__) from None

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


# The editor's starting canvas. Gradio places a layer the server sends (a proposed or uploaded mask) at
# the centre of the canvas's bounds, which never shrink below this size: with the default 800×800, a
# 512×512 photo's mask layer landed (800 - 512) / 2 = 144 px right of and below where it belongs, and
# that misplaced layer is what the brush then painted on and what ran. A 1×1 start makes the bounds the
# background's own size, so server layers and brush strokes share the background's pixel grid.
EDITOR_CANVAS = (1, 1)


def mask_editor(label: str, elem_id: str, brush_size: int, height: int) -> gr.ImageEditor:
    """The mask-painting editor both tabs use: PNG (lossless alpha), one "mask" layer, a fixed colour."""
    return gr.ImageEditor(
        label=label,
        image_mode="RGBA",
        format="png",
        type="numpy",
        sources=(),
        transforms=(),
        brush=gr.Brush(default_size=brush_size, colors=["#ff0050"], default_color="#ff0050", color_mode="fixed"),
        eraser=gr.Eraser(default_size=brush_size),
        layers=gr.LayerOptions(allow_additional_layers=False, layers=["mask"]),
        canvas_size=EDITOR_CANVAS,
        height=height,
        elem_id=elem_id,
    )
