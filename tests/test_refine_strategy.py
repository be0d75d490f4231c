"""The ``refine`` strategy: fill at a model's size, then rebuild the texture at full resolution."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from inpaintstudio import registry
from inpaintstudio.classical import engines as classical
from inpaintstudio.core import pipeline
from inpaintstudio.core.engines import EngineOutput
from inpaintstudio.core.pipeline import InpaintOptions, plan_regions
from tests.test_multiscale import ellipse, laplacian_spread, textured


def test_refine_is_a_strategy_of_the_pipeline_and_the_edit_tab() -> None:
    from inpaintstudio.ui.tabs import edit as edit_tab

    assert "refine" in pipeline.STRATEGIES
    assert "refine" in edit_tab.STRATEGY_CHOICES


def test_auto_fills_a_big_hole_at_the_cards_largest_size_and_refines_it() -> None:
    # a 17.9 MP photo with a 5 % hole: a 256-pixel network must not have its fill simply upscaled
    height, width = 3172, 5640
    hole = ellipse(height, width, (820, 550))
    card = registry.get_card("hint")
    [plan] = plan_regions(hole, card, InpaintOptions())
    box_side = max(plan.box[2] - plan.box[0], plan.box[3] - plan.box[1])
    assert plan.mode == "refine"
    assert round(box_side * plan.scale) == card.tile_size
    # a card that runs larger regions is asked for its largest size, not its working size
    big = replace(card, working_size=256, tile_size=1024)
    [plan] = plan_regions(hole, big, InpaintOptions())
    assert plan.mode == "refine" and round(box_side * plan.scale) == 1024
    # resize keeps its meaning: the working size, upscaled
    [plan] = plan_regions(hole, big, InpaintOptions(strategy="resize"))
    assert plan.mode == "resize" and round(box_side * plan.scale) == 256


@pytest.mark.parametrize("strategy", ["refine", "resize"])
def test_refine_keeps_texture_where_resize_blurs(strategy: str) -> None:
    image = textured(300, 420, seed=7)
    hole = ellipse(300, 420, (110, 70))
    # a diffusion engine limited to 96 px stands in for a network trained at a low resolution
    card = replace(registry.get_card("opencv_telea"), working_size=96, tile_size=96, context_margin=32)
    engine = classical.make_engine(card)
    result = pipeline.inpaint(image, hole, engine=engine, options={"strategy": strategy})
    assert [p.mode for p in result.regions] == [strategy]
    np.testing.assert_array_equal(result.image[~hole], image[~hole])
    ratio = laplacian_spread(result.image, hole) / laplacian_spread(image, hole)
    if strategy == "refine":
        assert ratio >= 0.8, ratio
    else:
        assert ratio < 0.3, ratio


def test_refine_of_a_region_that_fits_runs_directly() -> None:
    image = textured(120, 150)
    hole = ellipse(120, 150, (20, 12))
    direct = pipeline.inpaint(image, hole, "opencv_telea")
    refined = pipeline.inpaint(image, hole, "opencv_telea", options={"strategy": "refine"})
    assert [p.mode for p in refined.regions] == ["direct"]
    np.testing.assert_array_equal(refined.image, direct.image)


def test_refine_of_a_fixed_size_network_pads_the_coarse_level_to_its_size() -> None:
    seen: list[tuple[int, ...]] = []
    telea = registry.get_card("opencv_telea")
    card = replace(telea, working_size=64, tile_size=64, input=replace(telea.input, fixed_size=64))

    class Fixed:
        def __init__(self) -> None:
            self.card, self.device = card, "cpu"

        def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:
            seen.append(image.shape)
            filled = cv2.inpaint(np.clip(image * 255, 0, 255).astype(np.uint8), mask.astype(np.uint8), 3,
                                 cv2.INPAINT_TELEA)
            return EngineOutput(image=filled.astype(np.float32) / 255)

    image = textured(160, 250, seed=2)
    hole = ellipse(160, 250, (70, 40))
    result = pipeline.inpaint(image, hole, engine=Fixed(), options={"strategy": "refine"})
    assert seen == [(64, 64, 3)]
    np.testing.assert_array_equal(result.image[~hole], image[~hole])
