"""One photo, many prompts: :class:`Selector` picks MobileSAM or GrabCut and keeps what a photo costs once.

With MobileSAM the image embedding is computed on the first prompt (or :meth:`Selector.prepare`) and kept,
so each further box or click runs only the prompt encoder and the mask decoder. ``method="auto"`` uses
MobileSAM when its weights are on disk and verified (sha256 recorded in the lock by ``weights fetch``), or
imported with ``weights import`` (every key and shape checked), and GrabCut otherwise;
:attr:`Selector.method_note` says which and why.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from inpaintstudio.errors import WeightsMissingError
from inpaintstudio.selection.grabcut import grabcut_mask
from inpaintstudio.selection.types import Prompt, Selection, SelectionError, check_photo, check_prompt, describe, finish

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from inpaintstudio.modelcard import ModelCard
    from inpaintstudio.models.mobile_sam.network import MobileSAM

__all__ = ["METHODS", "Selector", "find_mobile_sam_weights", "MobileSamPredictor"]

METHODS = ("auto", "mobile_sam", "grabcut")
Method = Literal["auto", "mobile_sam", "grabcut"]
MODEL = "mobile_sam"
HOW_TO_GET = ("run `inpaintstudio weights fetch mobile_sam`, or put mobile_sam.pt in weights/ and run "
              "`inpaintstudio weights import --model mobile_sam mobile_sam.pt`")

_networks: dict[tuple[str, float, str], "MobileSAM"] = {}
_networks_lock = threading.Lock()


# ------------------------------------------------------------------------------------------- the weights
def find_mobile_sam_weights() -> tuple["ModelCard | None", str]:
    """(the card whose weights to use, or ``None``; why): a fetched variant verified against the lock first,
    then a plain import (``mobile_sam.safetensors``)."""
    from inpaintstudio import registry
    from inpaintstudio.core import loading

    names = [f"{MODEL}:{source.variant}" for source in registry.all_variants(MODEL)] + [MODEL]
    problems = []
    for name in names:
        card = registry.get_card(name)
        status = loading.weight_status(card)
        if status["state"] == "verified":
            return card, f"{name}, sha256 verified"
        if status["state"] == "present" and name == MODEL:
            return card, f"{Path(status['path']).name}, imported (keys and shapes checked)"
        if status["state"] == "corrupt":
            problems.append(f"{Path(status['path']).name} fails its check ({status.get('message', '')})")
    return None, "; ".join(problems) if problems else "missing"


def _load_network(card: "ModelCard", device: "torch.device") -> "MobileSAM":
    """The network of ``card`` on ``device``, loaded once per file (the last one is kept)."""
    from inpaintstudio import weights
    from inpaintstudio.core import loading

    path = weights.expected_path(card)
    assert path is not None
    key = (str(path), path.stat().st_mtime, str(device))
    with _networks_lock:
        if key not in _networks:
            _networks.clear()
            _networks[key] = loading.build_network(card).to(device).eval()
        return _networks[key]


# ----------------------------------------------------------------------------------------- the predictor
class MobileSamPredictor:
    """MobileSAM on one photo: the embedding is computed once, then each prompt costs one decoder pass."""

    def __init__(self, net: "MobileSAM", rgb: np.ndarray, device: "torch.device") -> None:
        from inpaintstudio.models.mobile_sam.network import resized_size

        self.net = net
        self.device = device
        self.size = rgb.shape[:2]
        self.resized = resized_size(*self.size)
        self._rgb: np.ndarray | None = rgb
        self._embedding: "torch.Tensor | None" = None
        self.embed_count = 0
        self._lock = threading.Lock()

    def embedding(self) -> "torch.Tensor":
        import torch
        from PIL import Image

        with self._lock:
            if self._embedding is None:
                assert self._rgb is not None
                h, w = self.resized
                resized = np.array(Image.fromarray(self._rgb).resize((w, h), Image.BILINEAR))
                image = torch.from_numpy(resized).to(self.device).permute(2, 0, 1)[None].float()
                with torch.inference_mode():
                    self._embedding = self.net.embed(image)
                self.embed_count += 1
                self._rgb = None  # the photo is not needed any more
            return self._embedding

    def _prompt_tensors(self, prompt: Prompt) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
        import torch

        sy, sx = self.resized[0] / self.size[0], self.resized[1] / self.size[1]
        points = None
        if prompt.points:
            coords = torch.tensor([[x * sx, y * sy] for x, y, _ in prompt.points], dtype=torch.float32)
            labels = torch.tensor([1 if keep else 0 for _, _, keep in prompt.points], dtype=torch.int64)
            points = (coords[None].to(self.device), labels[None].to(self.device))
        box = None
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box
            box = torch.tensor([[x0 * sx, y0 * sy, x1 * sx, y1 * sy]], dtype=torch.float32, device=self.device)
        return points, box

    def predict(self, prompt: Prompt) -> tuple[np.ndarray, float, np.ndarray]:
        """(mask H x W bool of the best-scored of three masks, its predicted IoU, all three IoUs)."""
        import torch

        from inpaintstudio.models.mobile_sam.network import postprocess_masks

        embedding = self.embedding()
        points, box = self._prompt_tensors(prompt)
        with torch.inference_mode():
            logits, iou = self.net.decode(embedding, points, box, multimask=True)
            best = int(iou[0].argmax())
            full = postprocess_masks(logits[:, best:best + 1], self.resized, self.size)
        return (full[0, 0] > 0).cpu().numpy(), float(iou[0, best]), iou[0].cpu().numpy()


# ------------------------------------------------------------------------------------------- the selector
class Selector:
    """Select objects in one photo with boxes and clicks.

    Args:
        rgb: the photo, H x W x 3 uint8 RGB.
        method: ``"auto"`` (MobileSAM when its weights are present and verified, else GrabCut),
            ``"mobile_sam"`` (refuses without weights) or ``"grabcut"``.
        device: where MobileSAM runs (``"cpu"``, ``"cuda"``, ``"auto"`` …); GrabCut runs on the CPU.
        network: a ready MobileSAM network to use instead of the weights folder's (tests, benchmarks).

    Raises:
        SelectionError: not a photo, or an unknown method.
        WeightsMissingError: ``method="mobile_sam"`` without usable weights.
    """

    def __init__(self, rgb: np.ndarray, method: Method = "auto", device: str = "cpu", *,
                 network: "MobileSAM | None" = None) -> None:
        self.rgb = check_photo(rgb)
        if method not in METHODS:
            raise SelectionError(f"unknown selection method {method!r}; choose one of {', '.join(METHODS)}")
        self._predictor: MobileSamPredictor | None = None
        self.method, self.method_note = self._choose(method, device, network)

    def _choose(self, method: str, device: str, network: "MobileSAM | None") -> tuple[str, str]:
        if method == "grabcut":
            return "grabcut", "GrabCut (asked for)"
        if network is not None:
            self._start_mobile_sam(network, device)
            return "mobile_sam", "MobileSAM (network given by the caller)"
        try:
            card, why = find_mobile_sam_weights()
        except ValueError as error:  # an unreadable lock file: GrabCut still works
            card, why = None, f"cannot be checked ({error})"
        if card is None:
            if method == "mobile_sam":
                from inpaintstudio import registry, weights

                base = registry.get_card(MODEL)
                expected = weights.weights_dir() / base.weights[0].filename
                raise WeightsMissingError(f"MobileSAM weights {why}: {HOW_TO_GET}", card=base, expected=expected)
            return "grabcut", f"GrabCut (MobileSAM weights {why}: {HOW_TO_GET})"
        try:
            net = _load_network(card, self._device(device))
        except (OSError, ValueError, RuntimeError) as error:  # a file that does not load: say so, fall back
            if method == "mobile_sam":
                raise
            return "grabcut", f"GrabCut (MobileSAM weights {card.name} did not load: {error})"
        self._start_mobile_sam(net, device)
        return "mobile_sam", f"MobileSAM ({why})"

    @staticmethod
    def _device(device: str) -> "torch.device":
        import torch

        from inpaintstudio.core.engines import select_device

        return torch.device(select_device(device))

    def _start_mobile_sam(self, net: "MobileSAM", device: str) -> None:
        target = self._device(device)
        if net.training or next(net.parameters()).device != target:  # a shared network is left alone otherwise
            net = net.to(target).eval()
        self._predictor = MobileSamPredictor(net, self.rgb, target)

    @property
    def embed_count(self) -> int:
        """How many times the image embedding was computed (at most once per Selector)."""
        return self._predictor.embed_count if self._predictor else 0

    def prepare(self) -> None:
        """Compute the image embedding now (MobileSAM), so that the first prompt is as quick as the next."""
        if self._predictor is not None:
            self._predictor.embedding()

    def select(self, prompt: Prompt, grow_px: int = 0) -> Selection:
        """The mask for ``prompt`` (photo pixels), grown by ``grow_px`` pixels (negative shrinks)."""
        start = time.perf_counter()
        prompt = check_prompt(prompt, self.rgb.shape[:2])
        finish(np.zeros((1, 1), bool), grow_px)  # refuse a bad grow_px before any work
        if self._predictor is not None:
            mask, iou, _ = self._predictor.predict(prompt)
            label, detail = "MobileSAM", f"best of 3 masks, predicted IoU {iou:.2f}"
        else:
            mask = grabcut_mask(self.rgb, prompt)
            label, detail = "GrabCut", ""
        mask = finish(mask, grow_px)
        detail = ", ".join(part for part in (detail, f"grown {grow_px} px" if grow_px else "") if part)
        return Selection(mask=mask, method=self.method, note=describe(mask, label, detail),
                         seconds=time.perf_counter() - start)
