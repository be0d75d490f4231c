"""inpaintstudio.core.maskops: morphology, feathering, boxes, ratios and the irregular-mask generator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inpaintstudio.core import maskops as masks


def _dot(size: int = 61) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[size // 2, size // 2] = True
    return mask


def _blob() -> np.ndarray:
    """A 40×40 square hole with a 1-px spur, inside a 100×100 image."""
    mask = np.zeros((100, 100), bool)
    mask[30:70, 30:70] = True
    mask[50, 70:80] = True
    return mask


def test_binarise() -> None:
    values = np.array([[0, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(masks.binarise(values), [[False, False, True, True]])
    np.testing.assert_array_equal(masks.binarise(values, threshold=0), [[False, True, True, True]])
    np.testing.assert_array_equal(masks.binarise(np.array([[0.2, 0.7]]), threshold=0.5), [[False, True]])
    source = np.array([[True, False]])
    copy = masks.binarise(source)
    assert copy is not source and copy.tolist() == [[True, False]]
    with pytest.raises(ValueError, match="2-D"):
        masks.binarise(np.zeros((2, 2, 3)))


@pytest.mark.parametrize("radius", [3, 8, 20])
def test_grow_of_a_pixel_is_a_disc(radius: int) -> None:
    disc = masks.grow(_dot(), radius)
    area = int(disc.sum())
    assert abs(area - math.pi * radius**2) / (math.pi * radius**2) < 0.2
    rows, cols = np.nonzero(disc)
    assert rows.max() - rows.min() + 1 == 2 * radius + 1 and cols.max() - cols.min() + 1 == 2 * radius + 1
    centre = 30
    assert not disc[centre - radius, centre - radius], "a square kernel would fill the corner"
    assert disc[centre - radius, centre] and disc[centre, centre + radius]
    np.testing.assert_array_equal(disc, disc[::-1, :])
    np.testing.assert_array_equal(disc, disc[:, ::-1])


def test_grow_and_shrink_are_monotonic_and_mirror() -> None:
    blob = _blob()
    grown = [int(masks.grow(blob, px).sum()) for px in range(0, 6)]
    shrunk = [int(masks.shrink(blob, px).sum()) for px in range(0, 6)]
    assert grown[0] == shrunk[0] == blob.sum()
    assert all(a < b for a, b in zip(grown, grown[1:]))
    assert all(a > b for a, b in zip(shrunk, shrunk[1:]))
    assert not masks.shrink(blob, 1)[50, 75], "a 1-px spur disappears when shrunk by 1"
    np.testing.assert_array_equal(masks.grow(blob, -3), masks.shrink(blob, 3))
    np.testing.assert_array_equal(masks.shrink(blob, -3), masks.grow(blob, 3))
    assert masks.grow(blob, 0) is not blob
    assert (masks.grow(blob, 4) >= blob).all() and (masks.shrink(blob, 4) <= blob).all()


def test_shrink_does_not_eat_a_hole_from_the_image_border() -> None:
    mask = np.zeros((20, 20), bool)
    mask[:, :8] = True
    shrunk = masks.shrink(mask, 3)
    assert shrunk[:, :5].all() and not shrunk[:, 5:].any()


def test_invert() -> None:
    blob = _blob()
    np.testing.assert_array_equal(masks.invert(blob), ~blob)
    assert masks.hole_ratio(masks.invert(blob)) == pytest.approx(1 - masks.hole_ratio(blob))


def test_feather_is_zero_outside_and_one_deep_inside() -> None:
    blob = _blob()
    alpha = masks.feather(blob, 8)
    assert alpha.dtype == np.float32
    assert (alpha[~blob] == 0).all()
    assert (alpha[blob] > 0).all() and alpha.max() == 1.0
    assert (alpha[38:62, 38:62] == 1).all(), "8 px or more from the edge must be fully opaque"
    assert alpha[30, 50] == pytest.approx(1 / 8) and alpha[34, 50] == pytest.approx(5 / 8)
    assert np.all(np.diff(alpha[50, 30:50]) >= 0), "alpha rises from the edge inwards"
    np.testing.assert_array_equal(masks.feather(blob, 1), blob.astype(np.float32))
    image = np.random.default_rng(0).random((100, 100, 3), dtype=np.float32)
    composite = alpha[..., None] * 0.5 + (1 - alpha[..., None]) * image
    np.testing.assert_array_equal(composite[~blob], image[~blob])


def test_components_on_a_hand_made_mask() -> None:
    mask = np.zeros((20, 30), bool)
    mask[2:5, 3:7] = True  # A
    mask[5, 7] = True  # diagonal neighbour of A: same 8-connected component
    mask[10:18, 20:25] = True  # B
    mask[0, 29] = True  # a single pixel
    # raster order of each component's first pixel
    assert masks.components(mask) == [(29, 0, 30, 1), (3, 2, 8, 6), (20, 10, 25, 18)]
    assert masks.components(mask, min_area=2) == [(3, 2, 8, 6), (20, 10, 25, 18)]
    assert masks.components(mask, connectivity=4, min_area=2) == [(3, 2, 7, 5), (20, 10, 25, 18)]
    boxes = [masks.expand_box(box, 3, (30, 20)) for box in masks.components(mask)]
    assert masks.merge_boxes(boxes) == [(0, 0, 11, 9), (26, 0, 30, 4), (17, 7, 28, 20)]
    assert masks.components(np.zeros((4, 4), bool)) == []


def test_merge_boxes() -> None:
    assert masks.merge_boxes([(0, 0, 4, 4), (2, 2, 6, 6), (20, 20, 22, 22)]) == [(0, 0, 6, 6), (20, 20, 22, 22)]
    assert masks.merge_boxes([(0, 0, 5, 5), (5, 0, 9, 3)]) == [(0, 0, 9, 5)], "sharing an edge counts as touching"
    assert masks.merge_boxes([(0, 0, 5, 5), (6, 0, 9, 3)]) == [(0, 0, 5, 5), (6, 0, 9, 3)]
    # B touches neither A nor X, but it overlaps A∪X: only a second pass finds it
    assert masks.merge_boxes([(3, 0, 5, 1), (0, 0, 2, 2), (2, 2, 4, 4)]) == [(0, 0, 5, 4)]
    with pytest.raises(ValueError, match="x0 < x1"):
        masks.merge_boxes([(3, 0, 3, 1)])


def test_expand_box_is_clipped() -> None:
    assert masks.expand_box((10, 10, 20, 20), 5, (100, 100)) == (5, 5, 25, 25)
    assert masks.expand_box((2, 3, 98, 99), 8, (100, 100)) == (0, 0, 100, 100)
    assert masks.expand_box((2, 3, 4, 5), 0, (10, 10)) == (2, 3, 4, 5)


def test_hole_ratio_and_bins() -> None:
    mask = np.zeros((10, 10), bool)
    assert masks.hole_ratio(mask) == 0 and masks.mask_ratio_bin(mask) is None
    mask.flat[:20] = True
    assert masks.hole_ratio(mask) == 0.2 and masks.mask_ratio_bin(mask) == "0-20"
    mask.flat[:21] = True
    assert masks.mask_ratio_bin(mask) == "20-40"
    mask.flat[:60] = True
    assert masks.mask_ratio_bin(mask) == "40-60"
    mask.flat[:61] = True
    assert masks.mask_ratio_bin(mask) is None


@pytest.mark.parametrize("ratio_bin", list(masks.RATIO_BINS))
def test_irregular_masks_fall_in_their_bin(ratio_bin: str) -> None:
    low, high = masks.RATIO_BINS[ratio_bin]
    ratios = []
    for seed in range(8):
        mask = masks.irregular_mask(256, ratio_bin, seed)
        assert mask.dtype == bool and mask.shape == (256, 256)
        ratio = masks.hole_ratio(mask)
        assert max(low, 0.01) < ratio <= high and masks.mask_ratio_bin(mask) == ratio_bin
        assert len(masks.components(mask)) >= 1
        ratios.append(ratio)
    assert np.ptp(ratios) > 0.05 * (high - low), "ratios should spread over the bin"


def test_irregular_masks_are_deterministic() -> None:
    first = masks.irregular_mask(256, "20-40", 7)
    np.testing.assert_array_equal(first, masks.irregular_mask(256, "20-40", 7))
    others = [masks.irregular_mask(256, "20-40", seed) for seed in (8, 9)]
    assert all((first != other).mean() > 0.1 for other in others)
    assert (first != masks.irregular_mask(256, "40-60", 7)).any()
    assert masks.irregular_mask((128, 64), "0-20", 1).shape == (64, 128)
    with pytest.raises(ValueError, match="unknown ratio bin"):
        masks.irregular_mask(256, "60-80", 0)
    with pytest.raises(ValueError, match="at least 32"):
        masks.irregular_mask(16, "0-20", 0)
