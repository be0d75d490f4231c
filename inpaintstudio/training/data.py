"""Images, masks and landmarks for training and evaluation, following the thesis' released test code.

Conventions:

* **Images**: RGB float32 in [0, 1] (plain uint8/255, no mean/std), C×H×W tensors. A non-square source is
  centre-cropped to a square of side min(H, W) and resized to ``size`` (256) with PIL bicubic, as every release
  does; ``crop="random"`` (TSGL on Places/PSV) takes a uniformly placed ``size`` crop instead.
* **Masks**: 1×H×W float32, **1 = hole**. Files: white (non-zero) = hole; resized to ``size`` without cropping
  (PIL bicubic), then binarised with ``value > threshold`` (default 127;
  the HINT/SEM-Net releases use 0, INCLG 100). Bins by hole ratio after binarisation: ``0-20`` = (0, 0.2],
  ``20-40`` = (0.2, 0.4], ``40-60`` = (0.4, 0.6]; masks above 60 % are not used.
* **Assignment** at test time: images in sorted file-name order, image k gets mask ``k mod N`` of the bin's
  sorted mask list (the releases' ``MASK = 6``). Training: a uniformly random mask per sample.
* **Landmarks** (INCLG): one text file ``<image stem>.txt`` per image with 136 numbers x0 y0 … x67 y67 in the
  original image's pixels; moved with the crop, scaled to ``size``, rounded (+0.5, truncate), clamped to
  [0, size−1] (docs/models/inclg.md).
* **Determinism**: every random choice of sample ``i`` in epoch ``e`` comes from ``numpy.random.default_rng((seed,
  e, i))``, and :class:`StepBatchSampler` derives the order of epoch ``e`` from ``(seed, e)``, so a run resumed at
  any step (and any number of loader workers) sees the same batches.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from inpaintstudio.core import maskops as masks
from inpaintstudio.core.maskops import RATIO_BINS
from inpaintstudio.io import IMAGE_SUFFIXES

__all__ = [
    "DataConfig",
    "list_images",
    "parse_bin",
    "bin_of_ratio",
    "load_rgb",
    "load_mask",
    "load_landmarks",
    "bin_masks",
    "generate_mask",
    "InpaintDataset",
    "StepBatchSampler",
]


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how it is prepared (the ``data:`` section of a training config).

    Args:
        images: a folder (searched recursively, sorted) or a text file list (one path per line, relative to the
            list's folder unless absolute).
        masks: a folder / list of mask files, or ``"irregular"`` for the generator of :mod:`inpaintstudio.core.maskops`.
        mask_bins: bins of the generated masks (``masks: irregular``); a mask folder or list is used whole, each
            sample drawing one of its files uniformly (the releases' "mixed" training masks).
        val_images: optional held-out images (validation loss/PSNR and sample images).
        landmarks: folder of INCLG landmark files.
        texture: folder of TSGL texture images (RTV-smoothed, precomputed offline) named like the images
            (same stem); they get the image's crop and flip.
    """

    images: str = ""
    masks: str = "irregular"
    mask_bins: tuple[str, ...] = ("0-20", "20-40", "40-60")
    val_images: str | None = None
    landmarks: str | None = None
    texture: str | None = None
    size: int = 256
    crop: Literal["center", "random"] = "center"
    hflip: bool = False
    mask_hflip: bool = False
    mask_threshold: int = 127
    batch_size: int = 4
    workers: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown data settings {unknown}; known: {sorted(known)}")
        data = dict(data)
        if "mask_bins" in data:
            data["mask_bins"] = tuple(data["mask_bins"])
        return cls(**data)


# -------------------------------------------------------------------------------------------- files
def list_images(source: str | os.PathLike[str]) -> list[Path]:
    """Image paths of a folder (recursive, sorted by relative path) or of a list file (file order kept)."""
    source = Path(source).expanduser()
    if source.is_dir():
        return sorted(
            (p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=lambda p: p.relative_to(source).as_posix(),
        )
    if source.is_file() and source.suffix.lower() not in IMAGE_SUFFIXES:
        paths = []
        for line in source.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                path = Path(line).expanduser()
                paths.append(path if path.is_absolute() else source.parent / path)
        return paths
    raise FileNotFoundError(f"{source} is neither a folder of images nor a file list")


def parse_bin(name: str) -> tuple[float, float]:
    """``"20-40"`` (or ``"20-40%"``, ``"0.2-0.4"``) → (0.2, 0.4)."""
    text = name.strip().rstrip("%").replace("–", "-")
    if text in RATIO_BINS:
        return RATIO_BINS[text]
    try:
        low, high = (float(v) for v in text.split("-"))
    except ValueError as error:
        raise ValueError(f"mask ratio {name!r} is not of the form LOW-HIGH, e.g. 20-40") from error
    if high > 1:
        low, high = low / 100, high / 100
    if not 0 <= low < high <= 1:
        raise ValueError(f"mask ratio {name!r} must satisfy 0 <= low < high <= 100")
    return low, high


def bin_of_ratio(ratio: float, bins: Sequence[str] = tuple(RATIO_BINS)) -> str | None:
    """Name of the bin (low, high] holding ``ratio``; ``0-x`` bins also take ratios above 0 only."""
    for name in bins:
        low, high = parse_bin(name)
        if low < ratio <= high:
            return name
    return None


def _centre_square(width: int, height: int) -> tuple[int, int, int]:
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def _read_image(path: str | os.PathLike[str], mode: str, upright: bool) -> Any:
    """Decode a file to a Pillow image of ``mode`` (EXIF orientation applied when ``upright``; an
    unreadable EXIF block is ignored). A file that cannot be decoded raises ``ImageReadError`` naming it."""
    from PIL import Image, ImageOps

    from inpaintstudio.io import ImageReadError

    try:
        with Image.open(path) as handle:
            handle.load()
            try:
                oriented = ImageOps.exif_transpose(handle) if upright else handle
            except Exception:  # noqa: BLE001 - corrupt EXIF: keep the pixels as stored
                oriented = handle
            return oriented.convert(mode)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"'{path}' could not be read as an image: {error}") from None


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) as the image stands upright (EXIF orientation applied), read from the header only."""
    from PIL import Image

    from inpaintstudio.io import ImageReadError

    try:
        with Image.open(path) as handle:
            width, height = handle.size
            try:
                orientation = int(handle.getexif().get(0x0112, 1))
            except Exception:  # noqa: BLE001 - corrupt EXIF: the pixels are kept as stored (see _read_image)
                orientation = 1
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"'{path}' could not be read as an image: {error}") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def load_rgb(
    path: str | os.PathLike[str],
    size: int = 256,
    crop: Literal["center", "random"] = "center",
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, tuple[int, int, float]]:
    """RGB float32 H×W×3 in [0, 1] at ``size``², and the geometry ``(left, top, scale)`` used (for landmarks)."""
    from PIL import Image

    img = _read_image(path, "RGB", upright=True)
    width, height = img.size
    if crop == "random" and min(width, height) >= size:
        rng = rng if rng is not None else np.random.default_rng(0)
        left, top = int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1))
        img = img.crop((left, top, left + size, top + size))
        scale = 1.0
    else:
        left, top, side = _centre_square(width, height)
        img = img.crop((left, top, left + side, top + side))
        if side != size:
            img = img.resize((size, size), Image.BICUBIC)
        scale = size / side
    return np.asarray(img, dtype=np.float32) / 255.0, (left, top, scale)


def load_mask(path: str | os.PathLike[str], size: int = 256, threshold: int = 127) -> np.ndarray:
    """Hole mask float32 H×W (1 = hole) from a file where white = hole: resize (bicubic), then ``> threshold``."""
    from PIL import Image

    img = _read_image(path, "L", upright=False)
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return (np.asarray(img) > threshold).astype(np.float32)


def load_landmarks(path: str | os.PathLike[str], geometry: tuple[int, int, float], size: int = 256) -> np.ndarray:
    """68×2 (x, y) integer pixel landmarks in the ``size`` frame (see the module docstring)."""
    values = np.array(Path(path).read_text().split(), dtype=np.float64)
    if values.size != 136:
        raise ValueError(f"{path}: expected 136 numbers (x0 y0 … x67 y67), found {values.size}")
    left, top, scale = geometry
    points = values.reshape(68, 2) - np.array([left, top])
    points = np.floor(points * scale + 0.5)
    return np.clip(points, 0, size - 1).astype(np.float32)


def bin_masks(
    source: str | os.PathLike[str],
    size: int = 256,
    threshold: int = 127,
    bins: Sequence[str] = tuple(RATIO_BINS),
) -> dict[str, list[Path]]:
    """Sort a mask folder/list into hole-ratio bins (ratio measured at ``size`` after binarisation)."""
    out: dict[str, list[Path]] = {name: [] for name in bins}
    for path in list_images(source):
        name = bin_of_ratio(float(load_mask(path, size, threshold).mean()), bins)
        if name is not None:
            out[name].append(path)
    return out


def generate_mask(size: int, ratio_bin: str, seed: int) -> np.ndarray:
    """An irregular hole mask (1 = hole) whose hole ratio falls in ``ratio_bin``, from
    :mod:`inpaintstudio.core.maskops`."""
    wanted = tuple(round(v, 4) for v in parse_bin(ratio_bin))
    name = next((key for key, value in RATIO_BINS.items() if value == wanted), None)
    if name is None:
        raise ValueError(f"generated masks come in the bins {', '.join(RATIO_BINS)}, not {ratio_bin!r}")
    return masks.irregular_mask(size, name, seed).astype(np.float32)


# ------------------------------------------------------------------------------------------ dataset
class InpaintDataset(Dataset):
    """(image, hole mask[, landmarks]) samples; indices may be ``(index, epoch)`` pairs (see the sampler).

    Args:
        images: image paths (kept in the given order).
        cfg: the :class:`DataConfig`.
        masks: mask paths, or ``None`` to generate irregular masks from ``cfg.mask_bins``.
        train: random mask choice and augmentation (``False``: mask ``k mod N``, no augmentation).
        seed: base of every random choice.
        with_landmarks: read ``cfg.landmarks/<stem>.txt`` for every image.
    """

    def __init__(
        self,
        images: Sequence[Path],
        cfg: DataConfig,
        masks: Sequence[Path] | None = None,
        train: bool = True,
        seed: int = 10,
        with_landmarks: bool = False,
    ) -> None:
        if not images:
            raise ValueError("no images")
        if masks is not None and not masks:
            raise ValueError("the mask list is empty")
        if with_landmarks and not cfg.landmarks:
            raise ValueError("this model trains on landmarks: set data.landmarks to the folder of <stem>.txt files")
        self.images = list(images)
        self.masks = None if masks is None else list(masks)
        self.cfg = cfg
        self.train = train
        self.seed = seed
        self.with_landmarks = with_landmarks

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = (item, 0) if isinstance(item, (int, np.integer)) else item
        index = int(index)
        cfg = self.cfg
        rng = np.random.default_rng((self.seed, int(epoch), index))
        crop = cfg.crop if self.train else "center"
        image, geometry = load_rgb(self.images[index], cfg.size, crop, rng)
        if self.masks is not None:
            k = int(rng.integers(len(self.masks))) if self.train else index % len(self.masks)
            hole = load_mask(self.masks[k], cfg.size, cfg.mask_threshold)
        else:
            bins = cfg.mask_bins
            name = bins[int(rng.integers(len(bins)))] if self.train else bins[index % len(bins)]
            mask_seed = int(rng.integers(2**31)) if self.train else index
            hole = generate_mask(cfg.size, name, mask_seed)
        sample: dict[str, Any] = {"index": index}
        flip = self.train and cfg.hflip and rng.random() < 0.5
        if flip:
            image = image[:, ::-1]
        if self.train and cfg.mask_hflip and rng.random() < 0.5:
            hole = hole[:, ::-1]
        sample["image"] = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        sample["hole"] = torch.from_numpy(np.ascontiguousarray(hole))[None]
        if cfg.texture:
            texture, _ = load_rgb(_same_stem(Path(cfg.texture), self.images[index]), cfg.size, crop,
                                  np.random.default_rng((self.seed, int(epoch), index)))
            if flip:
                texture = texture[:, ::-1]
            sample["texture"] = torch.from_numpy(np.ascontiguousarray(texture)).permute(2, 0, 1)
        if self.with_landmarks:
            assert cfg.landmarks is not None
            points = load_landmarks(Path(cfg.landmarks) / f"{self.images[index].stem}.txt", geometry, cfg.size)
            if flip:  # mirror x; the point order is left as is (the release flips no landmarks: no flips there)
                points[:, 0] = cfg.size - 1 - points[:, 0]
            sample["landmarks"] = torch.from_numpy(points)
        return sample


def _same_stem(folder: Path, image: Path) -> Path:
    candidates = sorted(p for p in folder.glob(f"{image.stem}.*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not candidates:
        raise FileNotFoundError(f"no texture image {image.stem}.* in {folder}")
    return candidates[0]


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Endless batches of ``(index, epoch)`` from a given step on, identical for any resume point.

    Epoch ``e`` is the permutation ``default_rng((seed, e)).permutation(n)``; each step takes
    ``batch_size × world_size`` consecutive entries (the last incomplete chunk of an epoch is dropped), and rank
    ``r`` keeps its ``batch_size`` slice.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 10, start_step: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        per_step = batch_size * world_size
        if n < per_step:
            raise ValueError(f"{n} images cannot fill one step of {batch_size} × {world_size} processes")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size
        self.steps_per_epoch = n // per_step

    def batch_at(self, step: int) -> list[tuple[int, int]]:
        epoch, position = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng((self.seed, epoch)).permutation(self.n)
        start = position * self.batch_size * self.world_size + self.rank * self.batch_size
        return [(int(i), epoch) for i in order[start:start + self.batch_size]]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            yield self.batch_at(step)
            step += 1

    def __len__(self) -> int:  # endless; DataLoader only needs a number
        return 2**31 - 1
