"""Every deep model through the studio: fixture-sized networks with the authors' fixture weights,
registered under test names, run by the pipeline with the crop and tile strategies on the CPU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from inpaintstudio import registry
from inpaintstudio.core import loading, pipeline
from tests.conftest import FIXTURES

# every deep model with a parity fixture (read from the folders: a new model is covered without an edit here)
FIXTURE_MODELS = [card.name for card in registry.builtin_cards()
                  if card.needs_weights and card.task == "inpaint" and (FIXTURES / card.name / "config.json").is_file()]


def register_fixture_model(model: str) -> registry.ModelCard:
    folder = FIXTURES / model
    config = json.loads((folder / "config.json").read_text())
    module = loading.model_module(model)
    card = registry.get_card(model)
    fixed = card.input.fixed_size
    model_config = module.config_from_fixture(config)
    if hasattr(model_config, "rtv_iterations"):  # TSGL: one RTV pass per tile, not three (1.2 s per 256² tile)
        model_config = dataclasses.replace(model_config, rtv_iterations=1)
    test_card = dataclasses.replace(
        card,
        name=f"test_{model}",
        config=model_config,
        weights_path=Path(folder / "weights.safetensors"),
        working_size=fixed or 64,
        tile_size=fixed or 64,
        tile_overlap=16,
        context_margin=8,
    )
    return registry.register(test_card)


@pytest.fixture(params=FIXTURE_MODELS)
def fixture_model(request: pytest.FixtureRequest):
    card = register_fixture_model(request.param)
    yield card
    registry.unregister(card.name)
    pipeline.forget_engines(card.name)


@pytest.mark.parametrize("strategy", ["crop", "tile"])
def test_fixture_model_runs_through_the_pipeline(fixture_model: registry.ModelCard, strategy: str) -> None:
    fixed = fixture_model.input.fixed_size
    side = (fixed or 64) + 64
    photo = data.astronaut()
    if side + 150 > photo.shape[1]:  # a 512² model needs a photo larger than the astronaut
        photo = np.ascontiguousarray(np.tile(photo, (2, 2, 1)))
    image = np.ascontiguousarray(photo[100 : 100 + side, 150 : 150 + side + 16])
    mask = np.zeros(image.shape[:2], bool)
    mask[40:70, 30:90] = True  # one hole
    mask[side - 30 : side - 20, side - 20 : side + 10] = True  # a second one near the corner
    result = pipeline.inpaint(image, mask, fixture_model.name, {"strategy": strategy, "margin": 8})
    assert result.image.shape == image.shape and result.image.dtype == np.uint8
    assert np.array_equal(result.image[~mask], image[~mask]), "outside-mask pixels must be byte-identical"
    assert not np.array_equal(result.image[mask], image[mask])
    if strategy == "tile":
        assert any(plan.mode == "tile" and plan.tiles >= 2 for plan in result.regions), result.regions
    if "landmarks" in fixture_model.capabilities and strategy == "crop":
        assert result.landmarks is not None and result.landmarks.shape == (68, 2)


def test_deep_models_without_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(tmp_path))
    image = data.astronaut()[:64, :64].copy()
    mask = np.zeros((64, 64), bool)
    mask[10:20, 10:20] = True
    for card in registry.list_cards():
        if card.kind != "deep":
            continue
        pipeline.forget_engines(card.name)
        with pytest.raises(registry.WeightsMissingError, match=card.weights[0].filename):
            pipeline.inpaint(image, mask, card.name)


def test_official_checkpoint_format_imports(fixture_model: registry.ModelCard, tmp_path: Path) -> None:
    """{'iteration', 'generator': {'module.' + key: tensor}} -> safetensors that loads strictly."""
    import torch

    from inpaintstudio import weights

    tensors, _ = weights.read_checkpoint(fixture_model.weights_path)
    official = tmp_path / "InpaintingModel_gen.pth"
    torch.save({"iteration": 1234, "generator": {f"module.{k}": v for k, v in tensors.items()}}, official)
    report = loading.import_checkpoint(fixture_model.name, official, tmp_path / "out.safetensors")
    assert report.iteration == 1234 and report.missing == [] and report.tensors == len(tensors)
    reloaded, meta = weights.read_checkpoint(tmp_path / "out.safetensors")
    assert meta["model"] == fixture_model.name and meta["iteration"] == "1234"
    assert all(torch.equal(reloaded[k], tensors[k]) for k in tensors)
