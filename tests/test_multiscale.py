"""The multi-scale exemplar fill: byte-identical outside, keeps texture, deterministic, any shape."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from inpaintstudio import registry
from inpaintstudio.classical import engines as classical
from inpaintstudio.classical.multiscale import MultiscaleConfig, multiscale_fill, pyramid_sizes
from inpaintstudio.core import pipeline


def laplacian_spread(image: np.ndarray, mask: np.ndarray) -> float:
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    lap = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)
    return float(lap[inner].std())


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A stationary texture: fine grain on diagonal stripes, so any good exemplar fill keeps its detail."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    stripes = 60 * np.sin((x + 0.6 * y) / 7.0)
    grain = cv2.GaussianBlur(rng.normal(0, 40, (height, width)).astype(np.float32), (0, 0), 0.8)
    base = np.stack([120 + stripes + grain, 110 + 0.5 * stripes + grain, 90 - 0.3 * stripes + grain], axis=-1)
    return np.clip(base, 0, 255).astype(np.uint8)


def ellipse(height: int, width: int, axes: tuple[int, int], centre: tuple[int, int] | None = None) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, centre or (width // 2, height // 2), axes, 20, 0, 360, 1, -1)
    return mask > 0


def coarse_patchmatch(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return classical.pypatchmatch(image, mask)


SMALL = MultiscaleConfig(coarse_side=96)


def test_pyramid_sizes_end_at_full_resolution_with_factors_of_at_most_two() -> None:
    sizes = pyramid_sizes(1189, 1519, 384)
    assert sizes[0] == (301, 384) and sizes[-1] == (1189, 1519)
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:]):
        assert 1 < w1 / w0 <= 2.0 and 1 < h1 / h0 <= 2.01
    assert pyramid_sizes(300, 200, 384) == [(300, 200)]
    assert len(pyramid_sizes(4000, 3000, 384)) == 5  # 384 -> 4000 takes four doublings at most


def test_outside_the_hole_is_byte_identical_and_the_hole_is_filled() -> None:
    image = textured(257, 391)
    hole = ellipse(257, 391, (60, 35))
    hole[0:9, 100:140] = True  # touches the border
    hole[200:203, 10:380] = True  # a thin stroke
    marked = image.copy()
    marked[hole] = (255, 0, 255)  # the object to remove: its colour must not leak into the fill
    out = multiscale_fill(marked, hole, coarse_patchmatch, SMALL)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[~hole], marked[~hole])
    magenta = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] > 200)
    assert not magenta[hole].any()
    # the fill matches the texture's colours (the hole's truth is the same texture)
    assert np.abs(out[hole].mean(axis=0) - image[hole].mean(axis=0)).max() < 12


def test_texture_is_kept_where_an_upscaled_fill_blurs() -> None:
    image = textured(320, 480)
    hole = ellipse(320, 480, (70, 45))
    truth = laplacian_spread(image, hole)
    out = multiscale_fill(image, hole, coarse_patchmatch, SMALL)
    ratio = laplacian_spread(out, hole) / truth
    assert 0.8 <= ratio <= 1.3, ratio
    # the shortcut it replaces: fill at the coarse size and upscale
    small = cv2.resize(image, (144, 96), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.uint8), (144, 96), interpolation=cv2.INTER_NEAREST) > 0
    up = cv2.resize(coarse_patchmatch(small, small_hole), (480, 320), interpolation=cv2.INTER_CUBIC)
    upscaled = image.copy()
    upscaled[hole] = up[hole]
    assert laplacian_spread(upscaled, hole) / truth < 0.5
    # and the fill is close to the truth's colours, unlike a flat patch
    error = np.abs(out[hole].astype(float) - image[hole]).mean()
    assert error < np.abs(image[hole].astype(float) - image[hole].mean(axis=0)).mean() * 1.6


def test_equal_seeds_give_equal_results() -> None:
    image = textured(200, 300, seed=3)
    hole = ellipse(200, 300, (50, 30))
    a = multiscale_fill(image, hole, coarse_patchmatch, SMALL)
    b = multiscale_fill(image, hole, coarse_patchmatch, SMALL)
    np.testing.assert_array_equal(a, b)
    c = multiscale_fill(image, hole, coarse_patchmatch, replace(SMALL, seed=1))
    np.testing.assert_array_equal(c[~hole], image[~hole])


@pytest.mark.parametrize("shape", [(97, 301), (301, 97), (131, 131), (199, 250)])
def test_odd_sizes_and_corner_holes(shape: tuple[int, int]) -> None:
    h, w = shape
    image = textured(h, w, seed=h)
    hole = np.zeros((h, w), bool)
    hole[: h // 4, : w // 5] = True  # the top-left corner
    hole[h - 7 :, w - 11 :] = True  # the bottom-right corner
    out = multiscale_fill(image, hole, coarse_patchmatch, MultiscaleConfig(coarse_side=48))
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert out[hole].std() > 5  # filled with texture, not a flat colour


def test_no_known_patch_falls_back_to_the_upscaled_coarse_fill() -> None:
    image = textured(120, 160)
    hole = np.ones((120, 160), bool)
    hole[::9, ::9] = False  # isolated known pixels: no 5×5 known patch anywhere
    seen = {}

    def coarse(small: np.ndarray, small_hole: np.ndarray) -> np.ndarray:
        seen["shape"] = small.shape
        return np.full_like(small, 77)

    out = multiscale_fill(image, hole, coarse, MultiscaleConfig(coarse_side=40))
    assert seen["shape"] == (30, 40, 3)
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert (out[hole] == 77).all()


def test_empty_mask_returns_a_copy() -> None:
    image = textured(50, 60)
    out = multiscale_fill(image, np.zeros((50, 60), bool), coarse_patchmatch, SMALL)
    np.testing.assert_array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize(("field", "value", "message"), [
    ("coarse_side", 8, "coarse_side must be at least 16"),
    ("features", 2, "features must be in 3..27"),
    ("fine_vote_radius", 3, "fine_vote_radius must be in 0..2"),
    ("search_radius", 0, "search_radius must be in 1..64"),
])
def test_bad_config_is_refused(field: str, value: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MultiscaleConfig(**{field: value})


def test_default_engine_fills_big_regions_at_full_resolution_through_the_pipeline() -> None:
    image = textured(640, 1000, seed=5)
    hole = ellipse(640, 1000, (330, 90))
    result = pipeline.inpaint(image, hole, "patchmatch")
    assert [p.mode for p in result.regions] == ["direct"]  # no downscale: the engine works at full size
    np.testing.assert_array_equal(result.image[~hole], image[~hole])
    ratio = laplacian_spread(result.image, hole) / laplacian_spread(image, hole)
    assert ratio >= 0.8, ratio
    card = registry.get_card("patchmatch")
    assert card.tile_size == classical.MAX_SIDE and card.working_size == classical.MAX_SIDE
    # the engine as it was (coarse fill upscaled) is what the benchmark compares against
    before = pipeline.inpaint(image, hole, "patchmatch", options={"strategy": "resize"}, engine=classical.make_engine(
        replace(card, working_size=384, tile_size=768), multiscale=False))
    assert [p.mode for p in before.regions] == ["resize"]
    assert laplacian_spread(before.image, hole) / laplacian_spread(image, hole) < 0.6


def test_levels_over_the_hole_budget_are_upscaled_not_refined() -> None:
    image = textured(240, 360, seed=4)
    hole = ellipse(240, 360, (90, 60))
    budgeted = multiscale_fill(image, hole, coarse_patchmatch, replace(SMALL, max_hole_pixels=int(hole.sum()) // 2))
    np.testing.assert_array_equal(budgeted[~hole], image[~hole])
    refined = multiscale_fill(image, hole, coarse_patchmatch, SMALL)
    # the full-resolution level was skipped: the budgeted fill is an upscale, visibly softer
    assert laplacian_spread(budgeted, hole) < 0.8 * laplacian_spread(refined, hole)
