"""LaMa (Big-LaMa): parity with the authors' code, config mapping, key list, predict path, checkpoint import."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

from inpaintstudio import registry, weights
from inpaintstudio.core import loading
from inpaintstudio.core.parity import run_parity
from inpaintstudio.models.lama import network as lama
from tests.conftest import fixture_net, fixture_tensors_of, parity_dir

FIXTURE = parity_dir("lama")


@pytest.fixture(scope="module")
def fixture_config() -> lama.Config:
    return lama.config_from_fixture(json.loads((FIXTURE / "config.json").read_text()))


@pytest.fixture(scope="module")
def fixture_tensors() -> dict[str, dict[str, torch.Tensor]]:
    return fixture_tensors_of(FIXTURE)



# ------------------------------------------------------------------------------------------------- parity
def test_parity_fixture_within_tolerance() -> None:
    report = run_parity(FIXTURE)
    print(report.table())
    assert report.ok, report.table()
    errors = {row.name: row.max_abs_error for row in report.rows}
    assert errors["predicted"] < 1e-5 and errors["inpainted"] < 1e-5



def test_float64_matches_the_official_float64_run(fixture_config, fixture_tensors) -> None:
    state = {k: v.double() if v.is_floating_point() else v for k, v in fixture_tensors["weights"].items()}
    net = lama.build(fixture_config).double()
    weights.load_strict(net, state)
    inputs = {k: v.double() for k, v in fixture_tensors["inputs"].items()}
    with torch.no_grad():
        out = lama.parity_forward(net.eval(), inputs)["predicted"].float()
    assert float((out - fixture_tensors["outputs"]["predicted_float64_reference"]).abs().max()) < 1e-6


def test_network_input_matches_fixture(fixture_tensors) -> None:
    inputs = fixture_tensors["inputs"]
    assert torch.equal(lama.network_input(inputs["image"], inputs["mask"]), inputs["net_input"])


def test_fixture_config_maps_onto_config(fixture_config) -> None:
    assert fixture_config == lama.Config(ngf=8, n_blocks=2)


@pytest.mark.parametrize("change, message", [
    ({"dropout": 0.1}, "unknown LaMa config keys in fixture: \\['dropout'\\]"),
    ({"kind": "pix2pixhd_global"}, "ffc_resnet"),
    ({"out_ffc": True}, "out_ffc"),
    ({"spatial_transform_layers": [3]}, "spatial_transform_layers"),
    ({"init_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0.5, "enable_lfu": False}}, "purely local"),
    ({"resnet_conv_kwargs": {"ratio_gin": 0.75, "ratio_gout": 0.75, "enable_lfu": True}}, "enable_lfu"),
])
def test_fixture_config_refuses_what_is_not_built(change, message) -> None:
    values = json.loads((FIXTURE / "config.json").read_text())["config"] | change
    with pytest.raises(ValueError, match=message):
        lama.config_from_fixture({"config": values})


def test_default_key_list_equals_official() -> None:
    reference = json.loads((FIXTURE / "default_keys.json").read_text())
    with torch.device("meta"):
        net = lama.build()
    ours = []
    for key, value in net.state_dict().items():
        entry = [key, list(value.shape)]
        if value.dtype != torch.float32:
            entry.append(str(value.dtype).replace("torch.", ""))
        ours.append(entry)
    assert len(ours) == 989 and ours == reference["keys"]
    assert sum(p.numel() for p in net.parameters()) == reference["total_parameters"] == 50_975_875
    with torch.device("meta"):
        fourier = lama.build(lama.Config(n_blocks=9))  # lama-fourier
    assert sum(p.numel() for p in fourier.parameters()) == 27_048_835


# ------------------------------------------------------------------------------------------------- predict path
def test_size_rule(fixture_config) -> None:
    net = lama.build(fixture_config).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 4, 16, 24)).shape == (1, 3, 16, 24)
        with pytest.raises(ValueError, match="multiples of 8"):
            net(torch.zeros(1, 4, 60, 64))
        with pytest.raises(ValueError, match="at least 16"):
            net(torch.zeros(1, 4, 8, 64))


def test_official_predict_pads_symmetric_bottom_right(fixture_config, fixture_tensors) -> None:
    """A 61×59 crop of the fixture: padded to 64×64 by repeating the edge (numpy 'symmetric'), composited, cropped
    back and truncated to uint8; the known pixels come back unchanged."""
    net = fixture_net(lama, fixture_config, fixture_tensors["weights"])
    inputs = fixture_tensors["inputs"]
    rgb = np.round(inputs["image"][0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)[:61, :59]
    mask = (inputs["mask"][0, 0].numpy() * 255).astype(np.uint8)[:61, :59]
    out = lama.official_predict(net, rgb, mask)
    assert out.shape == (61, 59, 3) and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], rgb[mask == 0])
    padded_rgb = np.pad(rgb, ((0, 3), (0, 5), (0, 0)), mode="symmetric")
    padded_mask = np.pad(mask, ((0, 3), (0, 5)), mode="symmetric")
    assert np.array_equal(padded_rgb[61, :59], rgb[60]) and np.array_equal(padded_rgb[62, :59], rgb[59])  # edge kept
    image = torch.from_numpy(padded_rgb).permute(2, 0, 1)[None].float() / 255
    holes = torch.from_numpy((padded_mask > 0).astype(np.float32))[None, None]
    with torch.no_grad():
        full = lama.parity_forward(net, {"image": image, "mask": holes})["inpainted"]
    expected = np.clip(full[0, :, :61, :59].permute(1, 2, 0).numpy() * 255, 0, 255).astype(np.uint8)
    assert np.array_equal(out, expected)
    assert not np.array_equal(out[mask > 0], rgb[mask > 0])


def test_predict_returns_the_raw_prediction(fixture_config, fixture_tensors) -> None:
    net = fixture_net(lama, fixture_config, fixture_tensors["weights"])
    inputs = fixture_tensors["inputs"]
    image = inputs["image"] * (1 - inputs["mask"])  # the card fills holes with 0
    with torch.no_grad():
        out = lama.predict(net, image, inputs["mask"])["image"]
    assert float((out - fixture_tensors["outputs"]["predicted"]).abs().max()) < 1e-5


def test_pipeline_matches_the_official_predict_path(fixture_config, fixture_tensors) -> None:
    """The studio's pipeline on a 61×59 image (card: pad bottom/right to 8 with 'symmetric', [0, 1], holes 0)
    gives the official predict script's result up to its uint8 conversion (rounding here, truncation there)."""
    from pathlib import Path

    from inpaintstudio.core import pipeline

    card = dataclasses.replace(registry.get_card("lama"), name="test_lama_pipeline", config=fixture_config,
                               weights_path=Path(FIXTURE / "weights.safetensors"))
    registry.register(card)
    try:
        inputs = fixture_tensors["inputs"]
        rgb = np.round(inputs["image"][0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)[:61, :59].copy()
        mask = inputs["mask"][0, 0].numpy()[:61, :59] > 0
        result = pipeline.inpaint(rgb, mask, card.name, {"strategy": "full"})
        official = lama.official_predict(fixture_net(lama, fixture_config, fixture_tensors["weights"]), rgb,
                                         mask.astype(np.uint8) * 255)
    finally:
        registry.unregister(card.name)
        pipeline.forget_engines(card.name)
    assert np.array_equal(result.image[~mask], rgb[~mask])
    gap = np.abs(result.image.astype(int) - official.astype(int))
    assert gap.max() <= 1 and gap[mask].mean() < 0.7


def test_card() -> None:
    card = registry.get_card("lama")
    assert card.module == "inpaintstudio.models.lama.network" and card.family == "lama"
    conv = card.input
    assert conv.value_range == (0.0, 1.0) and conv.mask_hole_value == 1 and conv.hole_fill == 0.0
    assert conv.pad_multiple == 8 and conv.pad_mode == "symmetric" and conv.fixed_size is None
    assert card.licence.startswith("Apache-2.0")
    assert "e3aa4aaa15225a33ec84f9f4bc47e500" in card.weights[0].source
    assert card.weights[0].filename == "lama.safetensors"


# ------------------------------------------------------------------------------------------------- import
class _TrainingConfig:
    """Stands for a pickled training config (Lightning hyper-parameters); unpickling must never run it."""

    built = False

    def __setstate__(self, state: dict) -> None:
        _TrainingConfig.built = True
        self.__dict__.update(state)


def _register_fixture_card(config: lama.Config) -> str:
    name = "test_lama_import"
    registry.register(dataclasses.replace(registry.get_card("lama"), name=name, config=config))
    return name


def test_import_lightning_checkpoint(tmp_path, fixture_config, fixture_tensors) -> None:
    """best.ckpt: generator under state_dict with 'generator.', other modules' keys dropped and named."""
    generator = {f"generator.{key}": value.clone() for key, value in fixture_tensors["weights"].items()}
    others = {
        "discriminator.model0.0.weight": torch.zeros(64, 3, 4, 4),
        "discriminator.model5.0.bias": torch.zeros(1),
        "loss_resnet_pl.impl.conv1.weight": torch.zeros(64, 3, 3, 3),
        "val_evaluator.scores.ssim.gaussian_kernel": torch.zeros(11),
        "test_evaluator.scores.lpips.perceptual_loss.net.scaling_layer.shift": torch.zeros(1, 3, 1, 1),
    }
    config = _TrainingConfig()
    config.__dict__.update({"generator": {"kind": "ffc_resnet", "ngf": 8}})
    checkpoint = {
        "epoch": 39, "global_step": 400000, "pytorch-lightning_version": "1.2.9",
        "state_dict": generator | others,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
        "hyper_parameters": {"config": config},
    }
    source = tmp_path / "best.ckpt"
    torch.save(checkpoint, source)
    _TrainingConfig.built = False
    name = _register_fixture_card(fixture_config)
    try:
        report = loading.import_checkpoint(name, source, tmp_path / "lama.safetensors")
    finally:
        registry.unregister(name)
    assert not _TrainingConfig.built, "the pickled config was rebuilt"
    assert report.dropped == sorted(others) and report.missing == []
    assert report.tensors == len(fixture_tensors["weights"]) == 157
    assert all(key in report.summary() for key in others)
    state, _ = weights.read_checkpoint(tmp_path / "lama.safetensors")
    assert all(torch.equal(state[key], value) for key, value in fixture_tensors["weights"].items())


class _TracedLaMa(torch.nn.Module):
    """LaMa's ``bin/to_jit.py`` wrapper shape: ``model`` (the training module) holds ``generator``."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.model = torch.nn.Module()
        self.model.generator = generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        predicted = self.model.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * predicted + (1 - mask) * image


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:'torch.load' received a zip file that looks like a TorchScript archive")
def test_import_torchscript_checkpoint(tmp_path, fixture_config, fixture_tensors) -> None:
    """big-lama.pt: a traced wrapper whose state_dict keys are 'model.generator.' + the generator's names."""
    generator = fixture_net(lama, fixture_config, fixture_tensors["weights"])
    inputs = fixture_tensors["inputs"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the size check is a constant in the trace
        traced = torch.jit.trace(_TracedLaMa(generator).eval(), (inputs["image"], inputs["mask"]))
    source = tmp_path / "big-lama.pt"
    traced.save(str(source))
    assert "model.generator.model.1.ffc.convl2l.weight" in torch.jit.load(str(source)).state_dict()
    with pytest.raises(weights.WeightsError):
        weights.read_checkpoint(source)  # weights_only torch.load refuses TorchScript archives
    name = _register_fixture_card(fixture_config)
    try:
        report = loading.import_checkpoint(name, source, tmp_path / "lama.safetensors")
    finally:
        registry.unregister(name)
    assert report.dropped == [] and report.missing == [] and report.tensors == 157
    state, _ = weights.read_checkpoint(tmp_path / "lama.safetensors")
    net = fixture_net(lama, fixture_config, state)
    with torch.no_grad():
        out = lama.parity_forward(net, inputs)
    assert float((out["inpainted"] - fixture_tensors["outputs"]["inpainted"]).abs().max()) < 1e-5


def test_checkpoint_without_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="no LaMa generator keys"):
        lama.remap_official_state_dict({"discriminator.model0.0.weight": torch.zeros(1)})
