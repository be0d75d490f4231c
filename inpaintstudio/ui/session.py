"""Per-session state of the Edit tab and the operations behind it. No Gradio here.

The full-resolution original stays on the server in an :class:`EditSession`; the editor only ever
gets a display-size copy (longest side :attr:`StudioConfig.display_side`), once per base, as a
message (:meth:`EditSession.message`). The mask lives in the browser at the copy's size and comes back
as one PNG when a run starts (or the mask is downloaded); it is scaled back up to full resolution with
nearest-neighbour sampling (:func:`inpaintstudio.io.mask_from_array` with ``resize=True``). A mask that
the server itself put into the editor (an uploaded mask, a clinic proposal, a selection) is kept at full
resolution too, and wherever the user did not change it, the full-resolution copy is what runs.

Everything that touches pixels goes through ``inpaintstudio.io``, ``masks``, ``pipeline`` and
``registry``; the only arithmetic here is the display downscale and the feathered blend.
"""

from __future__ import annotations

import base64
import itertools
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inpaintstudio import io as image_io
from inpaintstudio import registry
from inpaintstudio.core import loading, pipeline
from inpaintstudio.core import maskops as mask_ops

__all__ = [
    "MASK_COLOUR",
    "StudioConfig",
    "ModelRun",
    "EditSession",
    "display_size",
    "to_display",
    "availability",
    "model_choices",
    "feathered",
    "data_url",
    "decode_mask_png",
]

MASK_COLOUR = (255, 0, 80)
Progress = Callable[[float, str], None]
_UNUSABLE_STATES = {"missing", "corrupt"}


@dataclass(frozen=True)
class StudioConfig:
    """Limits and sizes of one studio.

    Args:
        display_side: longest side of the copy shown in the editor.
        view_side: longest side of the images shown in the gallery and slider (downloads are full size).
        max_pixels: largest image accepted (``None``: ``$INPAINTSTUDIO_MAX_PIXELS``, else io's 60 MP).
        max_file_size: largest upload Gradio accepts.
        undo_depth: how many earlier bases "Undo" can return to.
        run_workers: how many runs (all sessions, both tabs) go at once; a long run never holds up
            everyone, and a run can be cancelled.
    """

    display_side: int = 1280
    view_side: int = 1280
    max_pixels: int | None = None
    max_file_size: str = "100mb"
    undo_depth: int = 8
    run_workers: int = 2


@dataclass
class ModelRun:
    """One model's result on the current base."""

    model: str
    image: np.ndarray
    seconds: float
    device: str
    strategy: str
    tiles: int
    notices: list[str] = field(default_factory=list)
    path: Path | None = None
    view_path: str | None = None
    key: str = ""

    @property
    def caption(self) -> str:
        return f"{self.model} · {self.seconds:.2f} s · {self.device}"


# ------------------------------------------------------------------------------------------ sizes
def display_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(width, height) of the display copy of an image of ``size`` = (width, height)."""
    width, height = size
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_display(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A display copy (area-averaged when smaller); the array itself when the size already fits."""
    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def mask_to_display(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A hole shown in the editor: a display pixel is a hole when any of the pixels it covers is."""
    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask.copy()
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0


def feathered(original: np.ndarray, filled: np.ndarray, mask: np.ndarray, px: float) -> np.ndarray:
    """Blend ``filled`` into ``original`` with :func:`masks.feather`'s alpha (0 outside the hole)."""
    if px <= 1:
        return filled
    alpha = mask_ops.feather(mask, px)[..., None]
    blended = original.astype(np.float32) * (1.0 - alpha) + filled.astype(np.float32) * alpha
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------- models
def availability(name: str | loading.ResolvedModel) -> tuple[bool, str]:
    """Whether ``name`` (or what it was resolved to) can run here, and a one-line reason when it cannot."""
    try:
        status = name.status if isinstance(name, loading.ResolvedModel) else loading.weight_status(name)
    except registry.UnknownModelError as error:
        return False, str(error)
    state = status["state"]
    if state == "missing":
        return False, f"weights missing ({Path(status['path']).name})"
    if state == "corrupt":
        return False, "weights corrupt (sha256 mismatch)"
    return True, {"builtin": "ready", "present": "weights imported", "verified": "weights verified"}.get(state, state)


def model_choices() -> list[tuple[str, str]]:
    """(label, name) for every model; the label says whether it can run and why not."""
    choices = []
    for card in registry.list_cards():
        ok, reason = availability(card.name)
        label = f"{card.name} ({reason})" if ok else f"{card.name}: unavailable, {reason}"
        choices.append((label, card.name))
    return choices


# ----------------------------------------------------------------------------------------- editor
_PHOTO_QUALITY = 94
_MASK_PREFIX = "data:image/png;base64,"


def data_url(image: np.ndarray, kind: str = "jpeg") -> str:
    """An RGB photo as a JPEG (4:4:4, so edges stay sharp) or a bool mask as a PNG, as a data URL."""
    if kind == "png":
        grey = np.where(image, 255, 0).astype(np.uint8)
        ok, data = cv2.imencode(".png", grey, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        prefix = _MASK_PREFIX
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, _PHOTO_QUALITY, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                  cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
        prefix = "data:image/jpeg;base64,"
    if not ok:
        raise OSError("could not encode an image for the editor")
    return prefix + base64.b64encode(data.tobytes()).decode("ascii")


def decode_mask_png(data: str, size: tuple[int, int]) -> np.ndarray:
    """The editor's mask (a PNG data URL, white = hole) as a bool array; it must be ``size`` = (w, h)."""
    if not data.startswith(_MASK_PREFIX):
        raise image_io.InputError("the mask from the editor is not a PNG data URL")
    try:
        raw = base64.b64decode(data[len(_MASK_PREFIX):], validate=True)
    except ValueError:
        raise image_io.InputError("the mask from the editor is not valid base64") from None
    grey = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise image_io.InputError("the mask from the editor is not a readable PNG")
    if (grey.shape[1], grey.shape[0]) != tuple(size):
        raise image_io.InputError(f"the mask from the editor is {grey.shape[1]}×{grey.shape[0]} pixels but the "
                                  f"editor shows {size[0]}×{size[1]}: open the photo again")
    return grey > 127


# ---------------------------------------------------------------------------------------- session
class EditSession:
    """What one browser session (or one gradio_client) has on the server. Methods are serialised."""

    def __init__(self, config: StudioConfig, root: Path | None = None) -> None:
        self.config = config
        self.workdir = Path(tempfile.mkdtemp(prefix="session-", dir=root))
        self.loaded: image_io.LoadedImage | None = None
        self.base: np.ndarray | None = None
        self.history: list[np.ndarray] = []
        self.shown: tuple[int, int] = (0, 0)
        self.mask_full: np.ndarray | None = None
        self.mask_shown: np.ndarray | None = None
        self.last_mask: np.ndarray | None = None
        self.runs: list[ModelRun] = []
        self.lock = threading.RLock()
        self.base_key = ""
        self.history_keys: list[str] = []
        self._keys = itertools.count(1)
        self._seq = itertools.count(1)
        self._sent: set[str] = set()
        self._base_view_path: str | None = None
        self.selector: Any = None  # inpaintstudio.selection.Selector of the current base, made on first use
        self.selector_key = ""

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Forget the images and delete every file this session wrote."""
        self.loaded = self.base = self.mask_full = self.mask_shown = self.last_mask = self.selector = None
        self.history.clear()
        self.runs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def has_image(self) -> bool:
        return self.base is not None

    def require_image(self) -> np.ndarray:
        if self.base is None:
            raise image_io.InputError("open a photo first")
        return self.base

    # ---------------------------------------------------------------- images
    def open(self, src: Any, name: str | None = None) -> image_io.LoadedImage:
        """Load a new original (EXIF orientation applied once by io.load_image); drop all else."""
        loaded = image_io.load_image(src, max_pixels=self.config.max_pixels, name=name)
        self.loaded = loaded
        self.history.clear()
        self.history_keys.clear()
        self._set_base(loaded.rgb, f"b{next(self._keys)}")
        return loaded

    def _set_base(self, rgb: np.ndarray, key: str) -> None:
        self.base = rgb
        self.base_key = key
        self.shown = display_size((rgb.shape[1], rgb.shape[0]), self.config.display_side)
        self.mask_full = self.mask_shown = None
        self.runs = []
        self._base_view_path = None

    def display_rgb(self) -> np.ndarray:
        return to_display(self.require_image(), self.shown)

    def message(self, *, mask: bool = False, results: bool = False, base: str | None = None,
                combine: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The editor's next value: the photo (its pixels only the first time this page sees that base),
        and on request the held mask, the results' display copies, how the base changed ("push" after
        "use result", "pop" after undo, "reset" for a new photo) and how to combine the mask."""
        self.require_image()
        message: dict[str, Any] = {"seq": next(self._seq), "photo": self._photo_entry()}
        if base:
            message["base"] = base
        if mask:
            shown = self.mask_shown if self.mask_shown is not None else np.zeros(self.shown[::-1], bool)
            message["mask"] = data_url(shown, "png")
            message["combine"] = combine or "replace"
        if results:
            message["results"] = [self._result_entry(model, key, image) for model, key, image in self.result_images()]
        message.update(extra or {})
        return message

    def _photo_entry(self) -> dict[str, Any]:
        width, height = self.size
        entry: dict[str, Any] = {"key": self.base_key, "width": self.shown[0], "height": self.shown[1],
                                 "full": [width, height], "src": None}
        if self.base_key not in self._sent:
            entry["src"] = data_url(self.display_rgb())
            self._sent.add(self.base_key)
        return entry

    def result_images(self) -> list[tuple[str, str, np.ndarray]]:
        """(model, key, full-size image) of every result the editor can show in its compare view."""
        return [(run.model, run.key, run.image) for run in self.runs]

    def new_key(self) -> str:
        return f"r{next(self._keys)}"

    def _result_entry(self, model: str, key: str, image: np.ndarray) -> dict[str, Any]:
        entry: dict[str, Any] = {"model": model, "key": key, "src": None}
        if key not in self._sent:
            entry["src"] = data_url(to_display(image, self.shown))
            self._sent.add(key)
        return entry

    def view(self, rgb: np.ndarray, stem: str = "view") -> str:
        """A display copy (longest side :attr:`StudioConfig.view_side`) of ``rgb`` as a file to show."""
        width, height = rgb.shape[1], rgb.shape[0]
        return str(self.write_view(to_display(rgb, display_size((width, height), self.config.view_side)), stem))

    def base_view(self) -> str:
        if self._base_view_path is None:
            self._base_view_path = self.view(self.require_image(), "before")
        return self._base_view_path

    # ---------------------------------------------------------------- masks
    @property
    def size(self) -> tuple[int, int]:
        base = self.require_image()
        return int(base.shape[1]), int(base.shape[0])

    def set_mask(self, mask: np.ndarray) -> None:
        """Hold ``mask`` (full resolution) and show it in the editor."""
        self.mask_full = np.asarray(mask, bool).copy()
        self.mask_shown = mask_to_display(self.mask_full, self.shown)

    def load_mask(self, src: Any, name: str | None = None) -> np.ndarray:
        """An uploaded mask, "white or opaque = hole"; it must have the original's or the editor's size."""
        size = self.size
        try:
            mask = image_io.load_mask(src, size=size, max_pixels=self.config.max_pixels, name=name)
        except image_io.MaskSizeError as error:
            if error.mask_size != self.shown:
                raise
            mask = image_io.load_mask(src, size=size, resize=True, max_pixels=self.config.max_pixels, name=name)
        self.set_mask(mask)
        return mask

    def mask_from_painted(self, painted: np.ndarray | None) -> np.ndarray:
        """The full-resolution hole mask for the editor's mask ``painted`` (display size; ``None``: the held one).

        Where the editor still shows the mask the server sent, the server's full-resolution mask is
        used; wherever the user painted, erased, grew or shrank, the editor's mask is scaled up (nearest).
        """
        size = self.size
        if painted is None or painted.shape != (self.shown[1], self.shown[0]):
            painted = np.zeros((self.shown[1], self.shown[0]), bool) if self.mask_shown is None else self.mask_shown
        full = image_io.mask_from_array(painted, size, resize=True)
        if self.mask_full is None or self.mask_shown is None:
            return full
        changed = image_io.mask_from_array(painted != self.mask_shown, size, resize=True)
        return np.where(changed, full, self.mask_full)

    def mask_from_editor(self, data: str | None) -> np.ndarray:
        """:meth:`mask_from_painted` for the editor's PNG data URL; empty (an API call): the mask the server holds."""
        self.require_image()
        return self.mask_from_painted(decode_mask_png(data, self.shown) if data else None)

    def mask_operation(self, operation: str, px: int = 0, data: str | None = None) -> np.ndarray:
        """Grow, shrink, invert or clear the current mask (full resolution) and hold the result (the API's
        mask operations; the browser does its own)."""
        current = self.mask_from_editor(data)
        if operation == "grow":
            mask = mask_ops.grow(current, int(px))
        elif operation == "shrink":
            mask = mask_ops.shrink(current, int(px))
        elif operation == "invert":
            mask = mask_ops.invert(current)
        elif operation == "clear":
            mask = np.zeros_like(current)
        else:
            raise ValueError(f"unknown mask operation {operation!r}; use grow, shrink, invert or clear")
        self.set_mask(mask)
        return mask

    # ---------------------------------------------------------------- running
    def run(
        self,
        mask: np.ndarray,
        models: Sequence[str],
        options: dict[str, Any],
        feather_px: float = 0.0,
        progress: Progress | None = None,
    ) -> tuple[list[ModelRun], list[str]]:
        """Run every available model in ``models`` on ``mask``; unavailable ones are skipped, with the reason."""
        base = self.require_image()
        if not models:
            raise image_io.InputError("choose at least one model")
        if not mask.any():
            raise image_io.InputError("the mask is empty: paint over what should be removed, or upload a mask")
        runnable: list[loading.ResolvedModel] = []
        skipped: list[str] = []
        for name in dict.fromkeys(models):  # each name resolved once; the resolved card runs
            try:
                resolved = loading.resolve_model(name)
            except registry.UnknownModelError as error:
                skipped.append(f"{name} was not run: {error}")
                continue
            ok, reason = availability(resolved)
            if ok:
                runnable.append(resolved)
            else:
                skipped.append(f"{name} was not run: {reason}")
        if not runnable:
            raise image_io.InputError("none of the chosen models can run here: " + "; ".join(skipped))
        pipeline.InpaintOptions.from_dict(options)  # unknown or misspelled settings fail before any work
        self.last_mask = mask
        runs = []
        for index, model in enumerate(runnable):
            runs.append(self._run_one(base, mask, model, options, feather_px, index, len(runnable), progress))
        self.runs = runs
        return runs, skipped

    def _run_one(
        self,
        base: np.ndarray,
        mask: np.ndarray,
        model: loading.ResolvedModel,
        options: dict[str, Any],
        feather_px: float,
        index: int,
        count: int,
        progress: Progress | None,
    ) -> ModelRun:
        name = model.requested
        def report(fraction: float, text: str) -> None:
            if progress is not None:
                progress((index + fraction) / count, f"{name} ({index + 1}/{count}): {text}")

        report(0.0, "starting")
        start = time.perf_counter()
        settings = pipeline.InpaintOptions.from_dict(options)
        engine = pipeline.get_engine(model.card, settings.device, settings.precision)
        result = pipeline.inpaint(base, mask, model.card, options, engine=engine, progress=report)
        image = feathered(base, result.image, mask, feather_px)
        seconds = time.perf_counter() - start
        tiles = sum(region.tiles for region in result.regions)
        notices = [model.note, *result.notices] if model.note else list(result.notices)
        key = self.new_key()
        return ModelRun(name, image, seconds, result.device, result.strategy, tiles, notices, key=key)

    def result_file(self, run: ModelRun) -> Path:
        """The run's full-size PNG, encoded the first time it is asked for (a download, or after the display)."""
        if run.path is None:
            run.path = self.write_result(run)
        return run.path

    # ---------------------------------------------------------------- history
    def use_result(self, index: int) -> ModelRun:
        if not 0 <= index < len(self.runs):
            raise image_io.InputError("there is no result to use yet: run a model first")
        run = self.runs[index]
        self.history.append(self.require_image())
        self.history_keys.append(self.base_key)
        del self.history[: -self.config.undo_depth], self.history_keys[: -self.config.undo_depth]
        self._set_base(run.image, run.key)
        return run

    def undo(self) -> None:
        """Go back to the base before the last "use result as new base"."""
        if not self.history:
            raise image_io.InputError("nothing to undo")
        self._set_base(self.history.pop(), self.history_keys.pop())

    # ---------------------------------------------------------------- files
    def _path(self, stem: str) -> Path:
        folder = self.workdir / uuid.uuid4().hex[:8]
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{stem}.png"

    def write_result(self, run: ModelRun) -> Path:
        """The full-resolution result as PNG, with the original's alpha, EXIF (upright) and ICC kept."""
        assert self.loaded is not None
        metadata = {"inpaintstudio:model": run.model, "inpaintstudio:strategy": run.strategy}
        path = self._path(f"inpainted-{run.model}")
        if self.loaded.size == (run.image.shape[1], run.image.shape[0]):
            image_io.save_like(path, run.image, self.loaded, metadata=metadata)
        else:  # pragma: no cover - a base always keeps the original's size
            image_io.save_image(path, run.image, metadata=metadata)
        return path

    def write_mask(self, mask: np.ndarray, stem: str = "mask") -> Path:
        """A mask as an 8-bit PNG, white = hole, at full resolution."""
        grey = np.where(mask, 255, 0).astype(np.uint8)
        path = self._path(stem)
        image_io.save_image(path, np.dstack([grey, grey, grey]))
        return path

    def write_view(self, image: np.ndarray, stem: str) -> Path:
        """An RGB or RGBA array as a quickly encoded PNG (lossless, light compression) for display."""
        path = self._path(stem)
        code = cv2.COLOR_RGBA2BGRA if image.ndim == 3 and image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        if not cv2.imwrite(str(path), cv2.cvtColor(image, code), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"could not write {path.name}")
        return path

    def write_png(self, rgb: np.ndarray, stem: str) -> Path:
        path = self._path(stem)
        image_io.save_image(path, rgb)
        return path
