"""The thesis evaluation protocol (as in the thesis' released test code) over any engine of the studio.

For every mask bin: images in sorted file-name order, centre-cropped and resized to the model's working size S (256²
for every model but ``tsgl_512``, 512²); image k gets mask ``k mod N`` of the bin's sorted mask list (or, with
``--mask-ratio``, the generated irregular mask of seed k); the pipeline fills the holes at S² in one pass (strategy
``full``: the card's convention, padding and compositing, batch 1, eval mode, no test-time augmentation); the
**composite** is scored with
:mod:`inpaintstudio.training.metrics` (PSNR, SSIM, L1 ×100 per image then averaged; LPIPS-VGG per image; FID per
bin, set against the bin's ground truths). LPIPS and FID are skipped, with the reason, when their backbone file is
absent.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpaintstudio.core import pipeline
from inpaintstudio.core.maskops import RATIO_BINS
from inpaintstudio.training import metrics
from inpaintstudio.training.data import bin_masks, generate_mask, image_size, load_mask, load_rgb

__all__ = [
    "METRIC_COLUMNS", "BinResult", "EvalReport", "ScoringSide", "evaluate_engine", "format_table", "merge_reports",
    "scoring_side", "working_side",
]

METRIC_COLUMNS = ("PSNR", "SSIM", "L1", "FID", "LPIPS")  # order of the thesis tables
_ARROWS = {"PSNR": "↑", "SSIM": "↑", "L1": "(%)↓", "FID": "↓", "LPIPS": "↓"}


@dataclass
class BinResult:
    """Per-image scores of one bin and their means."""

    name: str
    images: int = 0
    per_image: list[dict[str, Any]] = field(default_factory=list)
    fid: float | None = None
    fid_features: tuple[list[np.ndarray], list[np.ndarray]] | None = None  # (real, fake) pool3 features, image order

    def means(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key in ("PSNR", "SSIM", "L1", "LPIPS"):
            values = [row[key] for row in self.per_image if row.get(key) is not None]
            if values:
                out[key] = float(np.mean(values))
        if self.fid is not None:
            out["FID"] = self.fid
        return out


@dataclass
class EvalReport:
    model: str
    bins: list[BinResult]
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why
    mask_threshold: int = 127
    size: int = 256  # the side every image was scored at
    size_rule: str = ""  # why that side (see scoring_side)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "protocol": {"size": self.size, "size_rule": self.size_rule, "mask_threshold": self.mask_threshold,
                         "scored": "composite",
                         "L1": "mean absolute error x100 on [0,1]", "PSNR/SSIM": "uint8 (truncated) RGB, skimage"},
            "bins": {b.name: {"images": b.images, **b.means()} for b in self.bins},
            "scored_at": {row["image"]: row["side"] for b in self.bins for row in b.per_image},
            "skipped": self.skipped,
        }

    def json_text(self) -> str:
        return json.dumps(self.as_json(), indent=2) + "\n"

    def csv_text(self) -> str:
        """One row per (bin, image) with every metric, plus one ``mean`` row per bin."""
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(["model", "bin", "image", "mask", *METRIC_COLUMNS])
        for b in self.bins:
            for row in b.per_image:
                writer.writerow([self.model, b.name, row["image"], row["mask"],
                                 *(_fmt(row.get(k)) for k in METRIC_COLUMNS)])
            means = b.means()
            writer.writerow([self.model, b.name, "mean", "", *(_fmt(means.get(k)) for k in METRIC_COLUMNS)])
        return buffer.getvalue()

    def write_json(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.json_text())

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", newline="") as handle:
            handle.write(self.csv_text())


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def format_table(report: EvalReport) -> str:
    """The thesis layout: one row per model, a PSNR / SSIM / L1(%) / FID / LPIPS group per mask bin."""
    groups = [b.name + "%" for b in report.bins]
    header1 = f"{'model':<14}" + "".join(f" | {g:^44}" for g in groups)
    header2 = f"{'':<14}" + " | ".join(
        [""] + [" ".join(f"{k + _ARROWS[k]:>8}" for k in METRIC_COLUMNS)] * len(report.bins)
    )
    cells = []
    for b in report.bins:
        means = b.means()
        cells.append(" ".join(f"{_cell(k, means.get(k)):>8}" for k in METRIC_COLUMNS))
    row = f"{report.model:<14}" + "".join(f" | {c}" for c in cells)
    lines = [header1, header2, row, f"images per bin: {', '.join(f'{b.name}: {b.images}' for b in report.bins)}",
             f"scored at {report.size}×{report.size}" + (f": {report.size_rule}" if report.size_rule else "")]
    for metric, why in report.skipped.items():
        lines.append(f"{metric} skipped: {why}")
    return "\n".join(lines)


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if key in ("SSIM", "LPIPS") else f"{value:.3f}" if key == "FID" else f"{value:.4f}"


def evaluate_engine(
    engine: Any,
    images: Sequence[Path],
    masks: str | os.PathLike[str] | None = None,
    ratio_bins: Sequence[str] = tuple(RATIO_BINS),
    size: int | None = None,
    mask_threshold: int = 127,
    lpips: metrics.LPIPS | None = None,
    fid_net: Any = None,
    save_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    model_name: str | None = None,
    device: str = "cpu",
    shard: tuple[int, int] = (0, 1),
) -> EvalReport:
    """Score ``engine`` (a loaded engine with a ``card``) per bin, every image through :func:`pipeline.inpaint`.

    Args:
        size: the side images and masks are brought to (default: the card's fixed or working size).
        masks: a mask folder/list, binned by hole ratio into ``ratio_bins``; ``None`` generates irregular masks.
        lpips: a ready :class:`~inpaintstudio.training.metrics.LPIPS` (``None`` skips LPIPS).
        fid_net: a ready FID Inception (``None`` skips FID).
        save_dir: also write ``<bin>/<stem>.png`` composites (and ``gt/``) as S² PNG.
        device: where LPIPS and FID run (the engine keeps its own device).
        shard: ``(rank, world)``: score only the images whose index is ``rank`` modulo ``world`` (one process of
            several); image k keeps its mask and seed, and :func:`merge_reports` joins the shards into the report one
            process would have written. FID is then left to the merge.
    """
    images = list(images)[:limit] if limit else list(images)
    card = engine.card
    plan = scoring_side(card, size, images)
    size = plan.side
    binned = bin_masks(masks, size, mask_threshold, ratio_bins) if masks is not None else None
    report = EvalReport(model=model_name or card.name, bins=[],
                        mask_threshold=mask_threshold, size=size, size_rule=plan.rule)
    for name in ratio_bins:
        result = BinResult(name=name)
        mask_list = None if binned is None else binned[name]
        if mask_list is not None and not mask_list:
            report.skipped[f"bin {name}"] = "no mask of the folder falls in this bin"
            continue
        fid = metrics.FIDFeatures(fid_net, device=device) if fid_net is not None else None
        rank, world = shard
        for k, path in enumerate(images):
            if k % world != rank:
                continue
            image, _ = load_rgb(path, size)
            if mask_list is not None:
                mask_path = mask_list[k % len(mask_list)]
                hole = load_mask(mask_path, size, mask_threshold)
                mask_name = mask_path.name
            else:
                hole = generate_mask(size, name, k)
                mask_name = f"irregular:{name}:seed{k}"
            image8 = np.rint(image * 255.0).astype(np.uint8)  # load_rgb's floats are exact uint8 / 255
            filled = pipeline.inpaint(image8, hole > 0.5, engine=engine, options=_ONE_PASS, keep_float=True)
            comp = metrics.composite(filled.image01, image, hole[..., None])
            row: dict[str, Any] = {
                "index": k,
                "image": path.name,
                "mask": mask_name,
                "side": size,
                "PSNR": metrics.psnr(comp, image),
                "SSIM": metrics.ssim(comp, image),
                "L1": metrics.l1_percent(comp, image),
            }
            if lpips is not None:
                with torch.no_grad():
                    a = torch.from_numpy(comp).permute(2, 0, 1)[None].to(device)
                    b = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)
                    row["LPIPS"] = float(lpips.score01(a, b)[0])
            comp8, image8 = metrics.to_uint8(comp), metrics.to_uint8(image)
            if fid is not None:
                fid.add(image8, comp8)
            if save_dir is not None:
                _save_png(Path(save_dir) / name / f"{path.stem}.png", comp8)
                _save_png(Path(save_dir) / "gt" / f"{path.stem}.png", image8)
            result.per_image.append(row)
        result.images = len(result.per_image)
        if fid is not None:
            result.fid_features = (fid.real, fid.fake)
        if world == 1:
            _finish_fid(result, report)
        report.bins.append(result)
    return report


def _finish_fid(result: BinResult, report: EvalReport) -> None:
    if result.fid_features is None:
        return
    real, fake = result.fid_features
    if len(real) >= 2:
        result.fid = metrics.frechet_from_features(real, fake)
    else:
        report.skipped["FID"] = "needs at least two images per bin"


def merge_reports(shards: Sequence[EvalReport]) -> EvalReport:
    """The report of one process from the reports of ``(rank, world)`` shards: every bin's rows (and FID features)
    back in image order, then the means and FID over the whole set, exactly as one process computes them."""
    first = shards[0]
    merged = EvalReport(model=first.model, bins=[], mask_threshold=first.mask_threshold, size=first.size,
                        size_rule=first.size_rule)
    for shard in shards:
        merged.skipped.update(shard.skipped)
    for position, name in enumerate(b.name for b in first.bins):
        parts = [shard.bins[position] for shard in shards]
        rows = sorted((row for part in parts for row in part.per_image), key=lambda row: row["index"])
        result = BinResult(name=name, images=len(rows), per_image=rows)
        if all(part.fid_features is not None for part in parts):
            order = sorted((row["index"], i, j) for i, part in enumerate(parts)
                           for j, row in enumerate(part.per_image))
            real = [parts[i].fid_features[0][j] for _, i, j in order]
            fake = [parts[i].fid_features[1][j] for _, i, j in order]
            result.fid_features = (real, fake)
        _finish_fid(result, merged)
        merged.bins.append(result)
    return merged


def working_side(card: Any) -> int:
    """The side a model works at: its fixed size, else its working size."""
    return int(card.input.fixed_size or card.working_size)


MIN_SIDE, MAX_SIDE = 16, 4096
PAPERS_SIDE = 256  # the papers' protocol: every test image centre-cropped and resized to 256²


@dataclass(frozen=True)
class ScoringSide:
    """The side images are scored at, and why (printed and written to the JSON)."""

    side: int
    rule: str


def scoring_side(card: Any, size: int | None = None, images: Sequence[Path] = ()) -> ScoringSide:
    """The side to score at.

    ``size`` wins when given (16–4096; a model with a fixed input size takes only that size). Otherwise a
    model with a fixed input size is scored at it; any other model at the images' own side when they all
    share one size (the shorter side: a non-square image loses only its centre-crop margins, never a
    resampling), and at the papers' 256² when they differ. Raises ``ValueError`` with a message for the
    command line.
    """
    fixed = card.input.fixed_size
    if size is not None:
        if not MIN_SIDE <= size <= MAX_SIDE:
            raise ValueError(f"--size {size}: give a side from {MIN_SIDE} to {MAX_SIDE} pixels")
        if fixed and size != fixed:
            raise ValueError(f"--size {size}: {card.name} takes only {fixed}×{fixed} images (drop --size)")
        return ScoringSide(size, f"--size {size}")
    if fixed:
        return ScoringSide(int(fixed), f"the model's fixed input size {fixed}×{fixed}")
    sizes = {image_size(path) for path in images}
    if len(sizes) == 1:
        width, height = sizes.pop()
        side = min(width, height)
        if MIN_SIDE <= side <= MAX_SIDE:
            return ScoringSide(side, f"the images' own size ({width}×{height})")
        return ScoringSide(PAPERS_SIDE, f"the papers' {PAPERS_SIDE}² protocol (the images' {width}×{height} is "
                                        f"outside {MIN_SIDE}–{MAX_SIDE} px; --size sets another side)")
    if not sizes:
        return ScoringSide(PAPERS_SIDE, f"the papers' {PAPERS_SIDE}² protocol")
    return ScoringSide(PAPERS_SIDE, f"the papers' {PAPERS_SIDE}² protocol (the images differ in size; "
                                    f"--size sets another side)")


_ONE_PASS = pipeline.InpaintOptions(strategy="full")


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
