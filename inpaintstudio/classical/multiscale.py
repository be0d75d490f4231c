"""Multi-scale exemplar fill: a coarse PatchMatch fill refined level by level up to full resolution.

Filling a large region at a low working size and upscaling it keeps the structure but loses the
photo's texture (the fill is as blurry as the upscale). Here the coarse fill only decides *where
each hole pixel copies from*. Level by level (factor 2) that nearest-neighbour field is upsampled,
a few PatchMatch iterations (parallel propagation and a small random search) correct it against
the level's own pixels, and the hole is rebuilt by voting over overlapping patches. At full
resolution the hole is therefore made of full-resolution pixels of the photo. A smooth colour
correction, interpolated from the mismatch along the hole's border, removes the remaining seam.

Everything works on arrays of hole pixels (numpy/OpenCV, no loop per pixel). Patches are compared
through a few principal components of their 5×5 neighbourhoods, computed with convolutions, so a
candidate costs a handful of numbers per pixel rather than 75.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["MultiscaleConfig", "multiscale_fill", "pyramid_sizes", "refine_at_full_resolution"]

PATCH_RADIUS = 2  # 5×5 patches for matching; voting reads at most this far from a source centre
_ZERO = 0  # linear position of the padded corner pixel, kept black


@dataclass(frozen=True)
class MultiscaleConfig:
    """Knobs of :func:`multiscale_fill`.

    Args:
        coarse_side: longest side of the coarsest level, filled by the coarse filler.
        coarse_iterations: PatchMatch iterations that recover the field of the coarse fill.
        level_iterations: refinement iterations at each level between coarse and full resolution.
        fine_iterations: refinement iterations at full resolution.
        search_radius: random-search radius (pixels of the level) at refined levels.
        features: descriptor length: the leading principal components of the 5×5 luminance
            patch plus two chroma means (3..27).
        vote_radius: patches of this radius vote for each hole pixel (1 = 3×3 neighbours), with
            Gaussian weights of sigma 1 pixel, below full resolution.
        fine_vote_radius: the same at full resolution, where ``fine_vote_sigma`` (smaller: the
            pixel's own patch dominates, seams soften without blurring the texture) sets the weights.
        seam_sigma: spatial scale in pixels of the colour correction along the border (0 = off).
        max_hole_pixels: levels with more hole pixels than this are not refined; the last refined
            level is upscaled into the hole instead (bounds time and memory, about 120 bytes a pixel).
        seed: seed of the random initialisation and search; equal inputs give equal results.
    """

    coarse_side: int = 384
    coarse_iterations: int = 4
    level_iterations: int = 1
    fine_iterations: int = 1
    search_radius: int = 4
    features: int = 8
    vote_radius: int = 1
    fine_vote_radius: int = 1
    fine_vote_sigma: float = 0.6
    seam_sigma: float = 6.0
    max_hole_pixels: int = 3_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.coarse_side < 16:
            raise ValueError(f"coarse_side must be at least 16, got {self.coarse_side}")
        if not 3 <= self.features <= 27:
            raise ValueError(f"features must be in 3..27, got {self.features}")
        for name in ("vote_radius", "fine_vote_radius"):
            if not 0 <= getattr(self, name) <= PATCH_RADIUS:
                raise ValueError(f"{name} must be in 0..{PATCH_RADIUS}, got {getattr(self, name)}")
        if self.search_radius < 1 or self.search_radius > 64:
            raise ValueError(f"search_radius must be in 1..64, got {self.search_radius}")


CoarseFiller = Callable[[np.ndarray, np.ndarray], np.ndarray]


def pyramid_sizes(height: int, width: int, coarse_side: int) -> list[tuple[int, int]]:
    """Level sizes (h, w) from the coarsest (longest side ``coarse_side``) to full resolution.

    Consecutive levels differ by one factor of at most 2.
    """
    longest = max(height, width)
    if longest <= coarse_side:
        return [(height, width)]
    steps = int(np.ceil(np.log2(longest / coarse_side) - 1e-9))
    sizes = []
    for k in range(steps, -1, -1):
        scale = (coarse_side / longest) ** (k / steps)
        sizes.append((max(1, round(height * scale)), max(1, round(width * scale))))
    return sizes


@dataclass
class _Level:
    """One pyramid level, stored with a border of ``pad`` pixels on every side.

    Positions are linear indices into the padded arrays, so that a shift by (dy, dx) with
    ``|dy|, |dx| <= pad`` is one addition and can never wrap into a valid position.
    """

    image: np.ndarray  # (h+2P)×(w+2P)×3 float32, 0..255; hole pixels hold the current fill
    hole: np.ndarray  # h×w bool
    valid: np.ndarray  # (h+2P)×(w+2P) bool: known pixels whose 5×5 patch is known and in the level
    ys: np.ndarray  # N int32 hole pixel rows (unpadded)
    xs: np.ndarray  # N int32 hole pixel columns (unpadded)
    index: np.ndarray  # (h+2P)×(w+2P) int32: hole pixel -> its position in ys/xs, else -1
    pad: int
    _neighbours: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.hole.shape  # type: ignore[return-value]

    @property
    def stride(self) -> int:
        return self.hole.shape[1] + 2 * self.pad

    @property
    def positions(self) -> np.ndarray:
        return self.to_linear(self.ys, self.xs)

    def to_linear(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return ((ys + self.pad) * self.stride + xs + self.pad).astype(np.int32)

    def to_yx(self, linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return linear // self.stride - self.pad, linear % self.stride - self.pad

    def neighbour(self, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
        """For every hole pixel, whether (y+dy, x+dx) is a hole pixel too, and its index (0 if not)."""
        shift = dy * self.stride + dx
        cached = self._neighbours.get(shift)
        if cached is None:
            n = self.index.reshape(-1)[self.positions + shift]
            has = n >= 0
            cached = (has, np.where(has, n, 0))
            self._neighbours[shift] = cached
        return cached


def _make_level(image: np.ndarray, hole: np.ndarray, pad: int) -> _Level:
    """A level of ``image`` whose hole pixels are blanked: nothing may be learnt from them."""
    h, w = hole.shape
    image = image.copy()
    image[hole] = 0.0
    known = (~hole).astype(np.uint8)
    kernel = np.ones((2 * PATCH_RADIUS + 1, 2 * PATCH_RADIUS + 1), np.uint8)
    valid = np.zeros((h + 2 * pad, w + 2 * pad), bool)
    valid[pad : pad + h, pad : pad + w] = cv2.erode(known, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    padded[0, 0] = 0.0  # _ZERO: read where a neighbour is missing; no patch or source reaches it
    ys, xs = np.nonzero(hole)
    index = np.full(valid.shape, -1, np.int32)
    index[ys + pad, xs + pad] = np.arange(ys.size, dtype=np.int32)
    return _Level(image=padded, hole=hole, valid=valid, ys=ys.astype(np.int32), xs=xs.astype(np.int32),
                  index=index, pad=pad)


def _level_inputs(image: np.ndarray, hole: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    if (h, w) == hole.shape:
        return image.astype(np.float32), hole
    small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    # a level pixel is a hole as soon as any full-resolution hole pixel falls into it, so known pixels
    # at every level are made of known pixels only
    small_hole = cv2.resize(hole.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0
    return small, small_hole


# ------------------------------------------------------------------------------- patch descriptors
@dataclass(frozen=True)
class _Descriptor:
    """Patch descriptor: colours rotated to their principal axes; the first axis (about luminance)
    contributes the leading principal components of its 5×5 patches, the two others their 3×3 mean
    (scaled to weigh like 25 pixels). Squared distances approximate the patches' squared differences.
    """

    colour_mean: np.ndarray  # 3
    colour_axes: np.ndarray  # 3×3, rows = axes
    luma_kernels: np.ndarray  # k×5×5

    @classmethod
    def fit(cls, level: _Level, count: int, rng: np.random.Generator) -> _Descriptor:
        pixels = level.image[level.valid]
        if pixels.shape[0] > 65536:
            pixels = pixels[rng.choice(pixels.shape[0], 65536, replace=False)]
        mean = pixels.mean(axis=0)
        _, axes = np.linalg.eigh(np.cov((pixels - mean).T) + np.eye(3) * 1e-3)
        axes = np.ascontiguousarray(axes[:, ::-1].T, dtype=np.float32)
        luma = (level.image - mean) @ axes[0]
        vy, vx = np.nonzero(level.valid)
        take = rng.choice(vy.size, size=min(vy.size, 4096), replace=False)
        offsets = np.arange(-PATCH_RADIUS, PATCH_RADIUS + 1)
        patches = luma[vy[take][:, None, None] + offsets[None, :, None], vx[take][:, None, None] + offsets]
        patches = patches.reshape(take.size, -1).astype(np.float64)
        patches -= patches.mean(axis=0)
        _, vectors = np.linalg.eigh(patches.T @ patches + np.eye(patches.shape[1]) * 1e-6)
        side = 2 * PATCH_RADIUS + 1
        kernels = vectors[:, ::-1][:, : max(1, count - 2)].T.reshape(-1, side, side)
        return cls(colour_mean=mean.astype(np.float32), colour_axes=axes, luma_kernels=kernels.astype(np.float32))

    def compute(self, image: np.ndarray) -> np.ndarray:
        """Descriptors of every pixel of ``image`` (H×W×3): H×W×k float32."""
        rotated = cv2.transform(image - self.colour_mean, self.colour_axes)
        luma, chroma1, chroma2 = cv2.split(rotated)
        planes = [cv2.filter2D(luma, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)
                  for kernel in self.luma_kernels]
        chroma_scale = float(2 * PATCH_RADIUS + 1)  # a 3×3 mean standing for 25 pixels
        planes += [cv2.blur(c, (3, 3), borderType=cv2.BORDER_REFLECT) * chroma_scale for c in (chroma1, chroma2)]
        return cv2.merge(planes)

    def at(self, level: _Level) -> np.ndarray:
        """Descriptors of the level's hole pixels (N×k), computed on the hole's bounding box only."""
        r = PATCH_RADIUS
        y0, y1 = int(level.ys.min()) + level.pad - r, int(level.ys.max()) + level.pad + r + 1
        x0, x1 = int(level.xs.min()) + level.pad - r, int(level.xs.max()) + level.pad + r + 1
        local = self.compute(level.image[y0:y1, x0:x1])
        return local[level.ys + level.pad - y0, level.xs + level.pad - x0]


# ------------------------------------------------------------------------------------- the search
class _Search:
    """PatchMatch on the hole pixels of one level: the nearest known patch of each hole pixel."""

    def __init__(self, level: _Level, source: np.ndarray, target: np.ndarray, match: np.ndarray) -> None:
        self.level = level
        self.source = source
        self.target = target
        self.valid = level.valid.reshape(-1)
        self.match = match.copy()
        self.best = self._distance(self.match)

    def _distance(self, candidates: np.ndarray) -> np.ndarray:
        diff = np.take(self.source, candidates, axis=0)
        diff -= self.target
        return np.einsum("ij,ij->i", diff, diff)

    def consider(self, candidates: np.ndarray, usable: np.ndarray | None = None) -> None:
        # candidates stay inside the padded level (shifts <= pad), so unusable ones are simply ignored
        ok = self.valid[candidates]
        if usable is not None:
            ok &= usable
        dist = self._distance(candidates)
        better = ok & (dist < self.best)
        self.match[better] = candidates[better]
        self.best[better] = dist[better]

    def propagate(self, jump: int) -> None:
        stride = self.level.stride
        for dy, dx in ((0, -jump), (-jump, 0), (0, jump), (jump, 0)):
            has, n = self.level.neighbour(dy, dx)
            self.consider(self.match[n] - (dy * stride + dx), has)

    def random_search(self, radius: int, rng: np.random.Generator) -> None:
        stride = self.level.stride
        while radius >= 1:
            offsets = rng.integers(-radius, radius + 1, (2, self.match.size), dtype=np.int32)
            self.consider(self.match + offsets[0] * stride + offsets[1])
            radius //= 2


def _vote(level: _Level, match: np.ndarray, radius: int, sigma: float = 1.0) -> np.ndarray:
    """Hole pixel colours: a weighted mean of what the overlapping patches' sources say (N×3)."""
    flat = level.image.reshape(-1, 3)
    stride = level.stride
    acc = np.take(flat, match, axis=0)  # the pixel's own patch, weight 1
    total = np.ones(match.size, np.float32)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx == 0:
                continue
            has, n = level.neighbour(dy, dx)
            weight = np.float32(np.exp(-(dy * dy + dx * dx) / (2.0 * sigma * sigma)))
            values = np.take(flat, np.where(has, match[n] - (dy * stride + dx), _ZERO), axis=0)
            values *= weight
            acc += values
            total += has * weight
    acc /= total[:, None]
    return acc


def _snap_to_valid(level: _Level, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Linear positions of (ys, xs), moved to the nearest valid patch centre where they are not one."""
    h, w = level.shape
    ys, xs = ys.clip(0, h - 1), xs.clip(0, w - 1)
    linear = level.to_linear(ys, xs)
    bad = ~level.valid.reshape(-1)[linear]
    if bad.any():
        inner = level.valid[level.pad : level.pad + h, level.pad : level.pad + w]
        _, labels = cv2.distanceTransformWithLabels((~inner).astype(np.uint8), cv2.DIST_L2, 3,
                                                     labelType=cv2.DIST_LABEL_PIXEL)
        vy, vx = np.nonzero(inner)
        table = np.zeros(int(labels.max()) + 1, np.int32)
        table[labels[vy, vx]] = level.to_linear(vy, vx)
        linear[bad] = table[labels[ys[bad], xs[bad]]]
    return linear


def _refine(level: _Level, match: np.ndarray, iterations: int, radius: int, jumps: list[int],
            config: MultiscaleConfig, rng: np.random.Generator, fixed_target: bool = False,
            vote_radius: int | None = None, vote_sigma: float = 1.0) -> np.ndarray:
    """PatchMatch iterations on one level, then a vote that rebuilds the hole from the field.

    With ``fixed_target`` every iteration matches against the level's current hole content (the
    coarse fill, whose field is being recovered); otherwise the hole is first rebuilt from the
    field and each iteration matches against the previous vote.
    """
    vote_radius = config.vote_radius if vote_radius is None else vote_radius
    descriptor = _Descriptor.fit(level, config.features, rng)
    source = descriptor.compute(level.image)
    source = source.reshape(-1, source.shape[-1])
    flat = level.image.reshape(-1, 3)
    positions = level.positions
    if fixed_target:
        target = np.take(source, positions, axis=0)
    else:
        flat[positions] = _vote(level, match, vote_radius, vote_sigma)
    for _ in range(iterations):
        if not fixed_target:
            target = descriptor.at(level)
        search = _Search(level, source, target, match)
        for jump in jumps:
            search.propagate(jump)
        search.random_search(radius, rng)
        match = search.match
        if not fixed_target:
            flat[positions] = _vote(level, match, vote_radius, vote_sigma)
    if fixed_target:
        flat[positions] = _vote(level, match, vote_radius, vote_sigma)
    return match


def _upsample_field(coarse: _Level, match: np.ndarray, fine: _Level) -> np.ndarray:
    """Source of each fine hole pixel: its coarse parent's offset (source - pixel), scaled up."""
    (ch, cw), (fh, fw) = coarse.shape, fine.shape
    ry, rx = fh / ch, fw / cw
    py = np.minimum((fine.ys / ry).astype(np.int32), ch - 1)
    px = np.minimum((fine.xs / rx).astype(np.int32), cw - 1)
    parent = coarse.index[py + coarse.pad, px + coarse.pad]
    has = parent >= 0
    sy, sx = coarse.to_yx(match[np.where(has, parent, 0)])
    fy = np.where(has, fine.ys + np.rint((sy - py) * ry).astype(np.int32), -1)
    fx = np.where(has, fine.xs + np.rint((sx - px) * rx).astype(np.int32), -1)
    return _snap_to_valid(fine, fy, fx)


def _seam_correction(level: _Level, match: np.ndarray, sigma: float) -> np.ndarray:
    """A smooth colour offset (N×3) that makes the fill meet the known pixels around the hole.

    For known pixels in a thin ring around the hole, the fill's continuation (the source of the
    nearest hole pixel, shifted) is compared with the real pixel; the mismatch is averaged along
    the ring and spread into the hole with a weight that fades with the distance from the border.
    The averaging runs at a quarter of the resolution: the correction is smooth by design.
    """
    h, w = level.shape
    hole8 = level.hole.astype(np.uint8)
    ring = (cv2.dilate(hole8, np.ones((5, 5), np.uint8)) > 0) & ~level.hole
    ry, rx = np.nonzero(ring)
    if ry.size == 0:
        return np.zeros((match.size, 3), np.float32)
    _, labels = cv2.distanceTransformWithLabels(1 - hole8, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    table = np.zeros(int(labels.max()) + 1, np.int64)
    table[labels[level.ys, level.xs]] = np.arange(level.ys.size)
    nearest = table[labels[ry, rx]]
    continuation = match[nearest] + level.to_linear(ry, rx) - level.positions[nearest]
    flat = level.image.reshape(-1, 3)
    usable = level.valid.reshape(-1)[continuation.clip(0, flat.shape[0] - 1)]
    ry, rx, continuation = ry[usable], rx[usable], continuation[usable]
    mismatch = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w), np.float32)
    mismatch[ry, rx] = flat[level.to_linear(ry, rx)] - flat[continuation]
    weight[ry, rx] = 1.0
    factor = 4 if min(h, w) >= 64 else 1
    small = (max(1, w // factor), max(1, h // factor))
    s = max(sigma / factor, 0.5)
    mismatch = cv2.GaussianBlur(cv2.resize(mismatch, small, interpolation=cv2.INTER_AREA), (0, 0), s)
    norm = cv2.GaussianBlur(cv2.resize(weight, small, interpolation=cv2.INTER_AREA), (0, 0), s)
    reach = cv2.GaussianBlur(cv2.resize(weight, small, interpolation=cv2.INTER_AREA), (0, 0), 2.0 * s)
    reach = np.clip(reach / max(float(reach.max()), 1e-6) * 2.0, 0.0, 1.0)
    correction = mismatch / np.maximum(norm, 1e-6)[..., None] * reach[..., None]
    correction = cv2.resize(correction, (w, h), interpolation=cv2.INTER_LINEAR)
    return correction[level.ys, level.xs]


# --------------------------------------------------------------------------------------- the fill
def multiscale_fill(image: np.ndarray, mask: np.ndarray, coarse_fill: CoarseFiller,
                    config: MultiscaleConfig | None = None) -> np.ndarray:
    """Fill ``mask`` (H×W bool, True = hole) in ``image`` (H×W×3 uint8).

    ``coarse_fill(image, mask) -> image`` fills the coarsest level (uint8 in and out). Pixels outside
    the mask are returned unchanged. When the image offers no 5×5 known patch at some level, the
    coarse fill is upscaled into the hole instead.
    """
    config = config or MultiscaleConfig()
    hole = mask.astype(bool)
    height, width = hole.shape
    result = image.copy()
    if not hole.any():
        return result
    rng = np.random.default_rng(config.seed)
    sizes = pyramid_sizes(height, width, config.coarse_side)

    # coarsest level: the coarse filler decides the structure; recover where it copied from
    small, small_hole = _level_inputs(image, hole, sizes[0])
    filled = coarse_fill(np.clip(np.rint(small), 0, 255).astype(np.uint8), small_hole).astype(np.float32)
    reach = max(4, max(sizes[0]) // 4)
    level = _make_level(small, small_hole, reach)
    if not level.valid.any():
        return _upscaled(image, hole, filled)
    level.image.reshape(-1, 3)[level.positions] = filled[small_hole]
    valid = np.flatnonzero(level.valid)
    match = valid[rng.integers(0, valid.size, level.ys.size)].astype(np.int32)
    jumps = [1 << k for k in range(int(np.log2(reach)) - 1, -1, -1)]
    match = _refine(level, match, config.coarse_iterations, reach, jumps, config, rng, fixed_target=True)

    hole_fraction = float(hole.mean())
    for index, size in enumerate(sizes[1:], start=1):
        if hole_fraction * size[0] * size[1] > config.max_hole_pixels:
            p = level.pad
            return _upscaled(image, hole, level.image[p : p + level.shape[0], p : p + level.shape[1]])
        fine_image, fine_hole = _level_inputs(image, hole, size)
        fine = _make_level(fine_image, fine_hole, max(config.search_radius, PATCH_RADIUS + 1))
        if not fine.valid.any():
            return _upscaled(image, hole, filled)
        match = _upsample_field(level, match, fine)
        last = index == len(sizes) - 1
        iterations = config.fine_iterations if last else config.level_iterations
        match = _refine(fine, match, iterations, config.search_radius, [1], config, rng,
                        vote_radius=config.fine_vote_radius if last else config.vote_radius,
                        vote_sigma=config.fine_vote_sigma if last else 1.0)
        level = fine

    values = level.image.reshape(-1, 3)[level.positions]
    if config.seam_sigma > 0:
        values = values + _seam_correction(level, match, config.seam_sigma)
    result[level.ys, level.xs] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return result


def refine_at_full_resolution(image01: np.ndarray, mask: np.ndarray, coarse_side: int,
                              coarse_fill: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The pipeline's ``refine`` route on float images in [0, 1]: ``coarse_fill`` (any engine, float in
    and out) fills the region at ``coarse_side``, and the texture is refined up to full resolution."""

    def coarse(small: np.ndarray, small_mask: np.ndarray) -> np.ndarray:
        out = coarse_fill(small.astype(np.float32) / 255.0, small_mask)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)

    image = np.clip(np.rint(image01 * 255.0), 0, 255).astype(np.uint8)
    filled = multiscale_fill(image, mask, coarse, MultiscaleConfig(coarse_side=max(16, coarse_side)))
    return filled.astype(np.float32) / 255.0


def _upscaled(image: np.ndarray, hole: np.ndarray, filled_small: np.ndarray) -> np.ndarray:
    height, width = hole.shape
    up = cv2.resize(filled_small, (width, height), interpolation=cv2.INTER_CUBIC)
    result = image.copy()
    result[hole] = np.clip(np.rint(up[hole]), 0, 255).astype(np.uint8)
    return result
