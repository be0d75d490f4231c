"""TSGL-LaMa (tsgl_512): parity with the authors' code, config mapping, key list, input range, checkpoint import."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from inpaintstudio import registry, weights
from inpaintstudio.core import loading
from inpaintstudio.core.parity import run_parity
from inpaintstudio.models.tsgl_512 import network as tsgl_lama
from tests.conftest import fixture_net, fixture_tensors_of, parity_dir

FIXTURE = parity_dir("tsgl_512")


@pytest.fixture(scope="module")
def fixture_json() -> dict:
    return json.loads((FIXTURE / "config.json").read_text())


@pytest.fixture(scope="module")
def fixture_tensors() -> dict[str, dict[str, torch.Tensor]]:
    return fixture_tensors_of(FIXTURE)



# ------------------------------------------------------------------------------------------------- parity
def test_parity_fixture_within_tolerance() -> None:
    report = run_parity(FIXTURE)
    print(report.table())
    assert report.ok, report.table()
    errors = {row.name: row.max_abs_error for row in report.rows}
    assert errors["output_raw"] < 1e-4 and errors["output_composite"] < 1e-4
    assert errors["aux_edge_prediction_trainscript"] is not None and errors["aux_edge_prediction_trainscript"] < 1e-5



def test_float64_matches_the_official_float64_run(fixture_json, fixture_tensors) -> None:
    """Both sides in float64: the gap is far below float32 rounding noise (official float32 vs float64: 1.1e-5)."""
    state = {k: v.double() if v.is_floating_point() else v for k, v in fixture_tensors["weights"].items()}
    net = tsgl_lama.build(tsgl_lama.config_from_fixture(fixture_json)).double()
    weights.load_strict(net, state)
    inputs = {k: v.double() for k, v in fixture_tensors["inputs"].items()}
    with torch.no_grad():
        out = tsgl_lama.parity_forward(net.eval(), inputs)["output_raw"].float()
    assert float((out - fixture_tensors["outputs"]["output_raw_float64_reference"]).abs().max()) < 1e-6


def test_fixture_config_maps_onto_lama_config(fixture_json) -> None:
    cfg = tsgl_lama.config_from_fixture(fixture_json)
    assert (cfg.ngf, cfg.max_features, cfg.texture_width, cfg.n_blocks) == (4, 16, 16, 2)
    assert (cfg.spade_hidden, cfg.aux_blocks, cfg.ratio_global, cfg.n_downsampling) == (24, 3, 0.75, 5)
    assert cfg.image_range == "unit"
    # n_downsampling is a dead argument in the official constructor (literal 5)
    assert tsgl_lama.config_from_fixture({"config": {"n_downsampling": 3}}).n_downsampling == 5


@pytest.mark.parametrize("change, message", [
    ({"dropout": 0.1}, "unknown TSGL-LaMa config keys in fixture: \\['dropout'\\]"),
    ({"output_activation": "sigmoid"}, "output_activation"),
    ({"norm_layer": "InstanceNorm2d"}, "norm_layer"),
    ({"resnet_conv_kwargs": {"ratio_gin": 0.75, "ratio_gout": 0.75, "enable_lfu": True}}, "enable_lfu"),
    ({"padding_type": "zeros"}, "reflect"),
])
def test_fixture_config_refuses_what_is_not_built(fixture_json, change, message) -> None:
    values = dict(fixture_json["config"]) | change
    with pytest.raises(ValueError, match=message):
        tsgl_lama.config_from_fixture({"config": values})


def test_wrong_range_or_polarity_misses_the_fixture(fixture_json, fixture_tensors) -> None:
    """The fixture settles the convention: [0, 1] image and 1 = hole. [−1, 1] or the known mask are far off."""
    net = fixture_net(tsgl_lama, tsgl_lama.config_from_fixture(fixture_json), fixture_tensors["weights"])
    inputs, expected = fixture_tensors["inputs"], fixture_tensors["outputs"]["output_raw"]
    signed = dict(inputs, image=inputs["image"] * 2 - 1)
    flipped = dict(inputs, mask=1 - inputs["mask"])
    with torch.no_grad():
        for wrong in (signed, flipped):
            out = tsgl_lama.parity_forward(net, wrong)["output_raw"]
            assert float((out - expected).abs().max()) > 0.5


# ------------------------------------------------------------------------------------------------- key list
def test_default_key_list_equals_official() -> None:
    reference = json.loads((FIXTURE / "default_keys.json").read_text())
    with torch.device("meta"):
        net = tsgl_lama.build()
    ours = []
    for key, value in net.state_dict().items():
        entry = [key, list(value.shape)]
        if value.dtype != torch.float32:
            entry.append(str(value.dtype).replace("torch.", ""))
        ours.append(entry)
    assert len(ours) == 998 and ours == reference["keys"]
    total = sum(p.numel() for p in net.parameters())
    assert total == reference["total_parameters"] == 38_609_348
    up_high = sum(p.numel() for n, p in net.named_parameters() if n.startswith("up_high."))
    assert total - up_high == 34_468_035


# ------------------------------------------------------------------------------------------------- predict
def _small() -> tsgl_lama.LamaConfig:
    return tsgl_lama.LamaConfig(ngf=4, max_features=16, texture_width=16, n_blocks=2, aux_blocks=1, spade_hidden=8)


def test_small_forward_at_512() -> None:
    torch.manual_seed(0)
    net = tsgl_lama.build(_small()).eval()
    image = torch.rand(1, 3, 512, 512)
    holes = torch.zeros(1, 1, 512, 512)
    holes[..., 200:320, 150:300] = 1
    with torch.no_grad():
        out, edges = net.run(image * (1 - holes), torch.zeros_like(holes), torch.rand_like(holes), holes, True)
    assert out.shape == (1, 3, 512, 512) and edges.shape == (1, 1, 512, 512)
    assert bool(torch.isfinite(out).all()) and float(out.abs().max()) <= 1.0
    assert float(out.std()) > 1e-3 and 0.0 <= float(edges.min()) and float(edges.max()) <= 1.0
    with pytest.raises(ValueError, match="multiples of 32"):
        net.run(torch.zeros(1, 3, 80, 64), torch.zeros(1, 1, 80, 64), torch.zeros(1, 1, 80, 64),
                torch.zeros(1, 1, 80, 64))


def test_predict_follows_the_test_script_and_the_range_switch(fixture_json, fixture_tensors) -> None:
    cfg = tsgl_lama.config_from_fixture(fixture_json)
    inputs = fixture_tensors["inputs"]
    holes = inputs["mask"]
    image = inputs["image"] * (1 - holes)  # the card: [0, 1], holes filled with 0
    unit = fixture_net(tsgl_lama, cfg, fixture_tensors["weights"])
    signed = fixture_net(tsgl_lama, dataclasses.replace(cfg, image_range="signed"), fixture_tensors["weights"])
    with torch.no_grad():
        out = tsgl_lama.predict(unit, image, holes)["image"]
        gray, edge = tsgl_lama._structure_batch(image, 1 - holes, cfg.canny_sigma)
        direct = unit(image, edge * (1 - holes), gray * (1 - holes), holes)
        out_signed = tsgl_lama.predict(signed, image, holes)["image"]
        direct_signed = signed((image * 2 - 1) * (1 - holes), edge * (1 - holes), gray * (1 - holes), holes)
    assert torch.equal(out, direct)  # [0, 1] in, the raw tanh output out
    assert torch.allclose(out_signed, (direct_signed + 1) / 2)  # [−1, 1] in, mapped back to [0, 1]
    assert float((out - out_signed).abs().max()) > 0.1
    # grey matches the fixture's (computed from the complete image) on known pixels
    known = (1 - holes).bool()
    assert float((gray - inputs["gray"])[known].abs().max()) < 1e-6


# ------------------------------------------------------------------------------------------------- card & import
def test_card_states_range_polarity_and_licences() -> None:
    card = registry.get_card("tsgl_512")
    assert card.module == "inpaintstudio.models.tsgl_512.network" and card.family == "tsgl"
    assert card.input.value_range == (0.0, 1.0) and card.input.mask_hole_value == 1
    assert card.input.fixed_size == 512 and card.input.hole_fill == 0.0
    config = loading.card_config(card)
    assert card.config_class == "LamaConfig" and config == tsgl_lama.LamaConfig() and config.image_range == "unit"
    assert "Apache-2.0" in card.licence and "CC BY-NC-SA 4.0" in card.licence
    assert "without a stated licence" in card.licence and "copies no code" in card.licence
    assert "2024-10-20" in card.notes and "image_range='signed'" in card.notes
    assert card.weights[0].filename == "tsgl_512.safetensors" and card.weights[0].official_filename == "G_<n>.pth"


def test_import_dataparallel_checkpoint(tmp_path, fixture_json, fixture_tensors) -> None:
    """A ``G_<n>.pth`` as DataParallel saves it: every official key under ``module.``."""
    card = registry.get_card("tsgl_512")
    name = "test_tsgl_512_import"
    config = tsgl_lama.config_from_fixture(fixture_json)
    registry.register(dataclasses.replace(card, name=name, config=config))
    try:
        official = {f"module.{key}": value.clone() for key, value in fixture_tensors["weights"].items()}
        assert "module.model_low_4.0.ffc.convl2g.weight" in official and "module.up_high.20.weight" in official
        source = tmp_path / "G_1.pth"
        torch.save(official, source)
        report = loading.import_checkpoint(name, source, tmp_path / "out.safetensors")
    finally:
        registry.unregister(name)
    assert report.dropped == [] and report.missing == [] and report.tensors == 634
    state, _ = weights.read_checkpoint(tmp_path / "out.safetensors")
    assert not any(key.startswith("module.") for key in state)
    net = fixture_net(tsgl_lama, config, state)
    with torch.no_grad():
        out = tsgl_lama.parity_forward(net, fixture_tensors["inputs"])["output_raw"]
    assert float((out - fixture_tensors["outputs"]["output_raw"]).abs().max()) < 1e-4


def test_discriminator_checkpoint_is_refused() -> None:
    fake = {"model0.0.weight": torch.zeros(64, 3, 4, 4), "model1.0.weight": torch.zeros(128, 64, 4, 4)}
    with pytest.raises(ValueError, match="discriminator"):
        tsgl_lama.remap_official_state_dict(fake)
