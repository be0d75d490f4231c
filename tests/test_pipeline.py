"""Pipeline: compositing, region planning, tiling, strategies, options and the classical engines."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from skimage import data

from inpaintstudio import registry
from inpaintstudio.core import pipeline
from inpaintstudio.core.engines import EngineOutput
from inpaintstudio.core.pipeline import InpaintOptions, blend_weights, inpaint, plan_regions, tile_positions
from inpaintstudio.registry import InputConvention, ModelCard


@dataclasses.dataclass
class RecordingEngine:
    """Fills holes with Telea and records every region it was asked to fill."""

    card: ModelCard
    device: str = "cpu"
    calls: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    seen: list[tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=list)

    def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:
        self.calls.append(mask.shape)
        self.seen.append((image.copy(), mask.copy()))
        conv = self.card.input
        if conv.fixed_size:
            assert mask.shape == (conv.fixed_size, conv.fixed_size)
        assert mask.shape[0] % conv.pad_multiple == 0 and mask.shape[1] % conv.pad_multiple == 0
        u8 = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
        filled = cv2.inpaint(u8, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)
        return EngineOutput(image=filled.astype(np.float32) / 255)


def deep_card(**changes) -> ModelCard:
    base = ModelCard(
        name="test_recording",
        family="test_recording",
        title="recording test engine",
        kind="deep",
        working_size=64,
        tile_size=64,
        tile_overlap=16,
        context_margin=8,
        input=InputConvention(pad_multiple=16),
        module="tests.test_pipeline",
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def photo() -> np.ndarray:
    return data.astronaut()[:300, :400].copy()


def test_outside_mask_pixels_are_byte_identical(photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[100:140, 200:260] = True
    mask[10:20, 10:30] = True
    before = photo.copy()
    result = inpaint(photo, mask, "opencv_telea")
    assert result.image.shape == photo.shape and result.image.dtype == np.uint8
    assert np.array_equal(result.image[~mask], photo[~mask])
    assert not np.array_equal(result.image[mask], photo[mask])
    assert np.array_equal(photo, before), "the input must never be modified"


def test_empty_mask_returns_image_unchanged_with_notice(photo: np.ndarray) -> None:
    result = inpaint(photo, np.zeros(photo.shape[:2], bool), "patchmatch")
    assert np.array_equal(result.image, photo)
    assert result.notices == ["the mask is empty: the image is returned unchanged"]
    assert result.regions == []


def test_mask_of_another_size_is_refused(photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"mask size \(10, 10\) does not match image size \(300, 400\)"):
        inpaint(photo, np.ones((10, 10), bool), "opencv_telea")


def test_unknown_option_and_strategy_are_errors(photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[5:9, 5:9] = True
    with pytest.raises(ValueError, match="unknown option.*tile_sise"):
        inpaint(photo, mask, "opencv_telea", {"tile_sise": 128})
    with pytest.raises(ValueError, match="unknown strategy 'tiles'"):
        inpaint(photo, mask, "opencv_telea", {"strategy": "tiles"})
    with pytest.raises(registry.UnknownModelError, match="unknown model 'deepfill_v9'.*patchmatch"):
        inpaint(photo, mask, "deepfill_v9")


def test_crop_boxes_merge_so_nothing_is_filled_twice() -> None:
    card = deep_card(kind="classical", context_margin=10, input=InputConvention(pad_multiple=1))
    mask = np.zeros((200, 300), bool)
    mask[50:60, 50:60] = True  # box with margin: 40..70
    mask[50:60, 75:85] = True  # 65..95 overlaps the first
    mask[150:160, 250:260] = True  # far away
    plans = plan_regions(mask, card, InpaintOptions(strategy="crop"))
    boxes = sorted(p.box for p in plans)
    assert boxes == [(40, 40, 95, 70), (240, 140, 270, 170)]
    engine = RecordingEngine(card)
    result = inpaint(np.full((200, 300, 3), 128, np.uint8), mask, options={"strategy": "crop"}, engine=engine)
    assert sorted(engine.calls) == [(30, 30), (30, 55)]
    assert len(result.regions) == 2


def test_deep_regions_get_working_size_context_and_padding() -> None:
    card = deep_card()
    mask = np.zeros((200, 300), bool)
    mask[100:105, 100:110] = True
    (plan,) = plan_regions(mask, card, InpaintOptions(strategy="crop"))
    x0, y0, x1, y1 = plan.box
    assert (x1 - x0, y1 - y0) == (64, 64) and plan.mode == "direct"
    engine = RecordingEngine(card)
    inpaint(np.zeros((200, 300, 3), np.uint8), mask, options={"strategy": "crop"}, engine=engine)
    assert engine.calls == [(64, 64)]

    # the whole 50×70 image as one region: padded (reflect) to multiples of 16, 64×80, and cropped back
    small = data.astronaut()[:50, :70].copy()
    hole = np.zeros((50, 70), bool)
    hole[20:30, 30:40] = True
    engine = RecordingEngine(card)
    result = inpaint(small, hole, options={"strategy": "full"}, engine=engine)
    assert engine.calls == [(64, 80)]
    (seen, seen_hole), = engine.seen
    region = small.astype(np.float32) / 255
    assert np.array_equal(seen, np.pad(region, ((0, 14), (0, 10), (0, 0)), mode="reflect"))
    assert not seen_hole[50:].any() and not seen_hole[:, 70:].any() and seen_hole[20:30, 30:40].all()
    assert result.image.shape == small.shape and np.array_equal(result.image[~hole], small[~hole])
    assert not np.array_equal(result.image[hole], small[hole])


def test_fixed_size_models_always_see_their_size() -> None:
    card = deep_card(input=InputConvention(fixed_size=64, pad_multiple=1))
    mask = np.zeros((300, 300), bool)
    mask[100:200, 50:250] = True  # larger than 64: resized (crop) or tiled (tile)
    for strategy in ("crop", "tile", "resize", "auto", "full"):
        engine = RecordingEngine(card)
        result = inpaint(data.astronaut()[:300, :300].copy(), mask, options={"strategy": strategy}, engine=engine)
        assert set(engine.calls) == {(64, 64)}, strategy
        assert result.image.shape == (300, 300, 3)


def test_tiles_only_where_the_hole_is() -> None:
    card = deep_card(tile_size=64, tile_overlap=16)
    image = data.astronaut()[:256, :256].copy()
    mask = np.zeros((256, 256), bool)
    mask[:, 120:124] = True  # a thin vertical scratch through the full height
    engine = RecordingEngine(card)
    result = inpaint(image, mask, options={"strategy": "tile", "margin": 200}, engine=engine)
    (plan,) = result.regions
    assert plan.mode == "tile" and plan.box == (0, 0, 256, 256)
    ys, xs = tile_positions(256, 64, 16), tile_positions(256, 64, 16)
    touching_columns = [x for x in xs if x <= 123 and x + 64 > 120]
    assert plan.tiles == len(ys) * len(touching_columns) < len(ys) * len(xs)
    assert np.array_equal(result.image[~mask], image[~mask])


def test_blend_weights_are_smooth_and_flat_at_region_edges() -> None:
    w = blend_weights(64, 16, at_start=False, at_end=False)
    assert w[0] > 0 and w[31] == 1.0 and np.all(np.diff(w[:16]) > 0)
    assert np.array_equal(blend_weights(64, 16, at_start=True, at_end=True), np.ones(64, np.float32))
    starts = tile_positions(200, 64, 16)
    assert starts[0] == 0 and starts[-1] == 136 and all(b - a <= 48 for a, b in zip(starts, starts[1:]))


def test_tile_blending_leaves_no_seam_on_a_smooth_gradient() -> None:
    h, w = 256, 384
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gradient = np.stack([xx / w * 200 + 20, yy / h * 200 + 20, (xx + yy) / (w + h) * 200 + 20], -1)
    image = np.rint(gradient).astype(np.uint8)
    mask = np.zeros((h, w), bool)
    for x in range(8, w - 8, 14):  # many thin strokes crossing every tile border
        mask[8 : h - 8, x : x + 5] = True
    card = deep_card(tile_size=96, tile_overlap=32)
    result = inpaint(image, mask, options={"strategy": "tile", "margin": 0}, engine=RecordingEngine(card))
    error = np.abs(result.image.astype(np.float32) - gradient).mean(-1)
    starts = tile_positions(w, 96, 32)
    border_cols = np.zeros(w, bool)
    for s in starts[1:]:
        border_cols[max(0, s - 3) : s + 3] = True
    for s in starts[:-1]:
        border_cols[max(0, s + 96 - 3) : s + 96 + 3] = True
    at_border = error[:, border_cols][mask[:, border_cols]]
    inside = error[:, ~border_cols][mask[:, ~border_cols]]
    assert at_border.size > 100 and inside.size > 100
    assert at_border.mean() <= inside.mean() + 0.25, (at_border.mean(), inside.mean())
    assert at_border.max() <= max(inside.max(), 2.0)


@dataclasses.dataclass
class TileMeanEngine:
    """Fills every hole pixel with the mean of the tile's known pixels: blocky, like a model that drifts."""

    card: ModelCard
    device: str = "cpu"

    def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:
        out = image.copy()
        out[mask] = image[~mask].mean(0)
        return EngineOutput(image=out)


@pytest.mark.parametrize("ramp", [True, False])
def test_tile_weights_make_the_blend_continuous(ramp: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not ramp:  # the same test must catch a uniform average (the seam IOPaint users see)
        monkeypatch.setattr(pipeline, "blend_weights", lambda size, *a, **k: np.ones(size, np.float32))
    h, w = 128, 384
    xx = np.broadcast_to(np.arange(w, dtype=np.float32), (h, w))
    image = np.repeat(np.rint(xx / w * 200 + 20).astype(np.uint8)[..., None], 3, -1)
    mask = np.ones((h, w), bool)
    mask[::8, ::8] = False  # a sparse lattice of known pixels in every tile
    card = deep_card(tile_size=96, tile_overlap=32)
    result = inpaint(image, mask, options={"strategy": "tile", "margin": 0}, engine=TileMeanEngine(card))
    row = result.image[3, :, 0].astype(np.float32)  # a row that is all hole
    largest_step = np.abs(np.diff(row)).max()
    if ramp:
        assert largest_step <= 4.0, largest_step
    else:
        assert largest_step > 8.0, largest_step


def test_auto_choices() -> None:
    card = deep_card(tile_size=64, tile_overlap=16, context_margin=4)
    small = np.zeros((300, 300), bool)
    small[100:110, 100:110] = True
    assert [p.mode for p in plan_regions(small, card, InpaintOptions())] == ["direct"]
    scattered = np.zeros((300, 300), bool)
    for y in range(20, 280, 30):  # small holes, boxes merged into one big region: tile it
        scattered[y : y + 8, 20:280:40] = True
        scattered[y + 4 : y + 28, 40:44] = True
    modes = [p.mode for p in plan_regions(scattered, card, InpaintOptions())]
    assert modes == ["tile"]
    big = np.zeros((300, 300), bool)
    big[50:250, 50:250] = True  # one large hole: fill at the card's largest size, refine at full size
    (plan,) = plan_regions(big, card, InpaintOptions())
    assert plan.mode == "refine" and plan.scale == pytest.approx(64 / 208)


def test_resize_pastes_only_inside_the_hole(photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[60:240, 80:320] = True
    result = inpaint(photo, mask, "opencv_telea", {"strategy": "resize"})
    (plan,) = result.regions
    assert plan.mode == "direct"  # the region fits Telea's tile size: nothing to downscale
    card = deep_card(working_size=64, tile_size=64)
    engine = RecordingEngine(card)
    result = inpaint(photo, mask, options={"strategy": "resize"}, engine=engine)
    assert result.regions[0].mode == "resize" and engine.calls[0][0] <= 64 and engine.calls[0][1] <= 64
    assert np.array_equal(result.image[~mask], photo[~mask])


def test_cuda_out_of_memory_retries_with_smaller_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    card = deep_card(tile_size=128, tile_overlap=16)
    engine = RecordingEngine(card)
    original = engine.run

    def picky_run(image: np.ndarray, mask: np.ndarray) -> EngineOutput:
        if mask.shape[0] > 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(image, mask)

    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    engine.run = picky_run  # type: ignore[method-assign]
    mask = np.zeros((128, 128), bool)
    mask[30:90, 30:90] = True
    result = inpaint(data.astronaut()[:128, :128].copy(), mask, options={"strategy": "crop"}, engine=engine)
    assert result.regions[0].mode == "tile" and set(engine.calls) == {(64, 64)}


@pytest.mark.parametrize("model", ["patchmatch", "opencv_telea", "opencv_ns"])
def test_classical_engines_fill_a_real_photo(model: str, photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    cv2.circle(mask.view(np.uint8), (200, 150), 25, 1, -1)
    result = inpaint(photo, mask, model)
    hole = result.image[mask].astype(float)
    assert np.array_equal(result.image[~mask], photo[~mask])
    # the fill continues the surroundings: close in mean colour to a ring around the hole
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~mask
    assert np.abs(hole.mean(0) - photo[ring].astype(float).mean(0)).max() < 40


def test_classical_direct_regions_run_on_the_bytes(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """8-bit engines get the uint8 region itself (no float round trip) and their bytes land in the result."""
    from inpaintstudio.classical import engines as classical

    engine = pipeline.get_engine("opencv_telea")
    seen: list[np.dtype] = []
    real_run = classical.ClassicalEngine.run

    def spying_run(self, image, mask):
        seen.append(image.dtype)
        out = real_run(self, image, mask)
        seen.append(out.image.dtype)
        return out

    monkeypatch.setattr(classical.ClassicalEngine, "run", spying_run)
    mask = np.zeros(photo.shape[:2], bool)
    mask[100:140, 150:200] = True
    result = inpaint(photo, mask, "opencv_telea", InpaintOptions(strategy="crop"), engine=engine, keep_float=True)
    assert seen == [np.uint8, np.uint8]
    expected = cv2.inpaint(photo[result.regions[0].box[1]:result.regions[0].box[3],
                                 result.regions[0].box[0]:result.regions[0].box[2]].copy(),
                           mask[result.regions[0].box[1]:result.regions[0].box[3],
                                result.regions[0].box[0]:result.regions[0].box[2]].astype(np.uint8), 5,
                           cv2.INPAINT_TELEA)
    x0, y0, x1, y1 = result.regions[0].box
    np.testing.assert_array_equal(result.image[y0:y1, x0:x1], np.where(mask[y0:y1, x0:x1, None],
                                                                       expected, photo[y0:y1, x0:x1]))
    np.testing.assert_array_equal(result.image01 * 255, result.image.astype(np.float32))
    float_out = engine.run(photo[:64, :64].astype(np.float32) / 255, mask[:64, :64])  # tiles, coarse runs
    assert float_out.image.dtype == np.float32 and float_out.image.max() <= 1.0


def test_patchmatch_is_deterministic(photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[120:160, 180:230] = True
    a = inpaint(photo, mask, "patchmatch").image
    b = inpaint(photo, mask, "patchmatch").image
    assert np.array_equal(a, b)


def test_engines_are_cached() -> None:
    assert pipeline.get_engine("opencv_telea") is pipeline.get_engine("opencv_telea", "cuda")


def test_device_selection() -> None:
    from inpaintstudio.core.engines import select_device

    assert select_device("cpu") == "cpu"
    import torch

    if not torch.cuda.is_available():
        assert select_device(None) in ("cpu", "mps")
        with pytest.raises(RuntimeError, match="'cuda' requested but CUDA is not available"):
            select_device("cuda")
