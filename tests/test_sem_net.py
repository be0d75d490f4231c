"""SEM-Net: parity with the official code, state-dict layout, scan orders, PE, checkpoint import."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from inpaintstudio import registry, weights
from inpaintstudio.core import loading
from inpaintstudio.core.parity import run_parity
from inpaintstudio.models.sem_net import network as sem_net
from tests.conftest import parity_dir

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = sem_net.Config(dim=6, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1)
UNUSED_PREFIXES = ("refinement.", "output_before.", "down1_2.proj.", "down2_3.proj.", "down3_4.proj.")


def _fixture_json() -> dict:
    return json.loads((parity_dir("sem_net") / "config.json").read_text())


def test_parity_with_official_code() -> None:
    report = run_parity(parity_dir("sem_net"))
    print(report.table())
    assert report.ok
    errors = {row.name: row.max_abs_error for row in report.rows}
    assert errors["output_raw"] < 1e-4 and errors["output_composite"] < 1e-4
    assert errors["output_float64_reference"] < 1e-4



def test_intermediates_match_official_modules() -> None:
    folder = parity_dir("sem_net")
    net = sem_net.build(sem_net.config_from_fixture(_fixture_json()))
    weights.load_strict(net, load_file(str(folder / "weights.safetensors")))
    net.eval()
    inputs = load_file(str(folder / "inputs.safetensors"))
    wanted = load_file(str(folder / "intermediates.safetensors"))
    seen: dict[str, torch.Tensor] = {}
    for name in ("encoder_level2", "encoder_level3", "latent", "decoder_level3", "output"):
        getattr(net, name).register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out))
    filled = inputs["image"] * (1 - inputs["mask"]) + inputs["mask"]
    assert torch.equal(torch.cat([filled, inputs["mask"]], 1), inputs["net_input"])
    with torch.no_grad():
        net(filled, inputs["mask"])
    for name, tensor in seen.items():
        ref = wanted[f"intermediate.{name}"]
        assert (tensor - ref).abs().max().item() <= 1e-4 * max(1.0, ref.abs().max().item()), name


def test_default_state_dict_matches_official_layout() -> None:
    listing = json.loads((parity_dir("sem_net") / "default_keys.json").read_text())
    with torch.device("meta"):
        full = sem_net.build()
        used_only = sem_net.build(sem_net.Config(register_unused_modules=False))
    ours = [[key, list(value.shape)] for key, value in full.state_dict().items()]
    assert ours == [entry[:2] for entry in listing["keys"]]
    assert len(ours) == 2390
    assert sum(p.numel() for p in full.parameters()) == listing["total_parameters"] == 138_099_744
    assert sum(p.numel() for p in used_only.parameters()) == 81_438_048


def test_snake_orders_and_round_trip() -> None:
    rows = sem_net.snake_order(4, 5, by_columns=False)
    cols = sem_net.snake_order(4, 5, by_columns=True)
    assert rows.tolist() == [0, 1, 2, 3, 4, 9, 8, 7, 6, 5, 10, 11, 12, 13, 14, 19, 18, 17, 16, 15]
    assert cols.tolist() == [0, 5, 10, 15, 16, 11, 6, 1, 2, 7, 12, 17, 18, 13, 8, 3, 4, 9, 14, 19]
    assert sem_net.snake_order(2, 3, by_columns=False, snake=False).tolist() == [0, 1, 2, 3, 4, 5]
    x = torch.randn(2, 3, 20)
    for order in (rows, cols):
        assert torch.equal(x[:, :, order][:, :, torch.argsort(order)], x)


def test_positional_table_values() -> None:
    table = sem_net.positional_table(3, 8)
    assert table[0].tolist() == [0.0, 1.0] * 4
    assert abs(table[1, 0].item() - 0.841471) < 1e-6 and abs(table[1, 1].item() - 0.540302) < 1e-6
    assert abs(table[2, 2].item() - torch.sin(torch.tensor(2 * 10000 ** (-2 / 8))).item()) < 1e-6


def test_non_square_input_and_gradient_flow() -> None:
    """48×80 runs; every used parameter gets gradient and the registered-but-unused ones get none."""
    torch.manual_seed(0)
    net = sem_net.build(TINY)
    image, mask = torch.rand(1, 3, 48, 80), (torch.rand(1, 1, 48, 80) > 0.6).float()
    out = net(image * (1 - mask) + mask, mask)
    assert out.shape == (1, 3, 48, 80)
    assert 0.0 <= out.min().item() and out.max().item() <= 1.0
    out.mean().backward()
    for name, param in net.named_parameters():
        unused = name.startswith(UNUSED_PREFIXES) or ".norm1_1." in name or ".ffn1." in name
        assert (param.grad is None) == unused, name
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.rand(1, 3, 40, 80), torch.zeros(1, 1, 40, 80))


def test_paper_variants_build_and_change_the_output() -> None:
    torch.manual_seed(1)
    reference = sem_net.build(TINY).eval()
    image, mask = torch.rand(1, 3, 32, 48), (torch.rand(1, 1, 32, 48) > 0.5).float()
    with torch.no_grad():
        base = reference(image, mask)
        raster = sem_net.build(dataclasses.replace(TINY, snake=False)).eval()
        raster.load_state_dict(reference.state_dict())  # same weights: only the scan order differs
        assert (raster(image, mask) - base).abs().max().item() > 1e-4
        no_pe = sem_net.build(dataclasses.replace(TINY, positional_embedding=False)).eval()
        no_pe.load_state_dict(reference.state_dict())
        assert (no_pe(image, mask) - base).abs().max().item() > 1e-4
        for switch in ({"bidirectional": False}, {"spatial_ffn": False}, {"reduce_last_skip": True},
                       {"layer_norm_type": "BiasFree"}, {"register_unused_modules": False}):
            variant = sem_net.build(dataclasses.replace(TINY, **switch)).eval()
            assert variant(image, mask).shape == (1, 3, 32, 48), switch
    keys = sem_net.build(dataclasses.replace(TINY, bidirectional=False)).state_dict()
    assert not any(".attn.mamba2." in key for key in keys)


def test_card_and_predict() -> None:
    card = registry.get_card("sem_net")
    assert card.input.pad_multiple == 16 and card.input.hole_fill == 1.0 and card.input.mask_hole_value == 1
    assert card.input.value_range == (0.0, 1.0) and card.working_size == 256
    assert card.weights[0].filename == "sem_net.safetensors"
    assert card.weights[0].official_filename == "InpaintingModel_gen.pth"
    net = sem_net.build(TINY).eval()
    with torch.no_grad():
        result = sem_net.predict(net, torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32))
    assert result["image"].shape == (2, 3, 32, 32)
    with torch.inference_mode():  # cached scan orders / PE tables made here must stay usable by autograd
        sem_net.predict(net, torch.rand(1, 3, 16, 48), torch.zeros(1, 1, 16, 48))
    net(torch.rand(1, 3, 16, 48), torch.zeros(1, 1, 16, 48)).mean().backward()


def test_import_official_checkpoint(tmp_path) -> None:
    folder = parity_dir("sem_net")
    fixture_weights = load_file(str(folder / "weights.safetensors"))
    generator = {f"module.{key}": value for key, value in fixture_weights.items()}
    generator["module.extra_head.weight"] = torch.ones(3)
    source = tmp_path / "InpaintingModel_gen.pth"
    torch.save({"iteration": 123, "generator": generator}, source)
    card = dataclasses.replace(
        registry.get_card("sem_net"), name="test_sem_net_import",
        config=sem_net.config_from_fixture(_fixture_json()), weights_path=tmp_path / "sem_net.safetensors",
    )
    registry.register(card)
    try:
        report = loading.import_checkpoint(card.name, source, tmp_path / "sem_net.safetensors")
        assert report.dropped == ["extra_head.weight"]
        assert report.iteration == 123 and report.tensors == len(fixture_weights) == 554
        assert report.parameters == 429_126
        written = load_file(report.destination)
        assert written.keys() == fixture_weights.keys()
        assert all(torch.equal(written[key], fixture_weights[key]) for key in written)
        del generator["module.latent.0.attn.mamba2.D"]
        torch.save({"iteration": 5, "generator": generator}, source)
        with pytest.raises(weights.WeightsError, match="latent.0.attn.mamba2.D"):
            loading.import_checkpoint(card.name, source, tmp_path / "other.safetensors")
    finally:
        registry.unregister(card.name)
