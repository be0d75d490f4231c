"""INCLG: parity with the authors' code, official key list, landmark map rendering, spec acceptance tests."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from inpaintstudio import registry
from inpaintstudio.core.parity import run_parity
from inpaintstudio.models.inclg import network as inclg
from tests.conftest import parity_dir


@pytest.fixture(scope="module")
def fixture_json() -> dict:
    return json.loads((parity_dir("inclg") / "config.json").read_text())


@pytest.fixture(scope="module")
def small_net(fixture_json: dict) -> inclg.InpaintGenerator:
    """The fixture-sized generator with the fixture's (perturbed) weights, eval mode."""
    net = inclg.build(inclg.config_from_fixture(fixture_json))
    net.load_state_dict(load_file(str(parity_dir("inclg") / "weights.safetensors")), strict=True)
    return net.eval()


def test_parity_with_official_code() -> None:
    report = run_parity(parity_dir("inclg"))
    print(report.table())
    assert report.ok, report.table()
    rows = {row.name: row for row in report.rows}
    assert rows["landmark_cells_yx"].max_abs_error == 0.0
    assert rows["landmark_map_single"].max_abs_error == 0.0
    assert rows["landmarks"].max_abs_error <= 1e-5
    assert rows["output_raw"].max_abs_error <= 2e-4



def test_default_keys_and_parameter_count() -> None:
    reference = json.loads((parity_dir("inclg") / "default_keys.json").read_text())
    with torch.device("meta"):
        net = inclg.build()
    keys = [
        [name, list(t.shape)] + ([str(t.dtype).removeprefix("torch.")] if t.dtype != torch.float32 else [])
        for name, t in net.state_dict().items()
    ]
    assert keys == reference["keys"]
    assert sum(p.numel() for p in net.parameters()) == reference["total_parameters"] == 14_418_895
    assert sum(t.numel() for t in net.state_dict().values()) == reference["total_state_dict_values"]
    with torch.device("meta"):
        used = inclg.build(inclg.Config(keep_unused_before_share1=False))
    assert sum(p.numel() for p in used.parameters()) == 13_894_479  # used in forward, without before_share1


def test_aliased_spectral_norm_keys_share_storage(small_net: inclg.InpaintGenerator) -> None:
    sd = small_net.state_dict()
    for alias, canonical in inclg.ALIAS_PREFIXES.items():
        for suffix in ("weight_orig", "weight_u", "weight_v", "bias"):
            assert sd[alias + suffix].data_ptr() == sd[canonical + suffix].data_ptr()


def test_remap_fills_dropped_aliases_and_refuses_inconsistent_ones(fixture_json: dict) -> None:
    official = load_file(str(parity_dir("inclg") / "weights.safetensors"))
    same, info = inclg.remap_official_state_dict(official)
    assert same.keys() == official.keys() and info["dropped"] == [] and info["aliases_filled"] == {}

    without_aliases = {k: v for k, v in official.items() if not k.startswith(tuple(inclg.ALIAS_PREFIXES))}
    assert len(official) - len(without_aliases) == 12
    filled, info = inclg.remap_official_state_dict(without_aliases)
    assert len(info["aliases_filled"]) == 12
    net = inclg.build(inclg.config_from_fixture(fixture_json))
    net.load_state_dict(filled, strict=True)

    broken = dict(official)
    broken["auto_attn.model.model.1.bias"] = broken["auto_attn.model.model.1.bias"] + 1
    with pytest.raises(ValueError, match="different tensors"):
        inclg.remap_official_state_dict(broken)


def test_landmark_map_rendering_matches_spec() -> None:
    # all points at (0.5, 0.25) -> ones at row 32, column 64 in all 68 channels
    lmk = torch.tensor([0.5, 0.25]).repeat(68)[None]
    cells = inclg.landmark_cells(lmk, 68, 128, 128)
    vmap = inclg.render_landmark_map(cells, 128)
    assert vmap.shape == (1, 68, 128, 128)
    assert torch.equal(vmap.sum(dim=(2, 3)), torch.ones(1, 68))
    assert bool((vmap[0, :, 32, 64] == 1).all())
    # clamping: >= 127/128 -> 127, negative -> 0
    edge = torch.tensor([[127.5 / 128, -0.3] + [0.5, 0.5] * 67])
    assert inclg.landmark_cells(edge, 68, 128, 128)[0, 0].tolist() == [0, 127]
    # thesis variant: one channel per point
    spread = torch.tensor([[(p % 10) / 10, (p // 10) / 10] for p in range(68)]).reshape(1, 136)
    one_hot = inclg.render_landmark_map(inclg.landmark_cells(spread, 68, 128, 128), 128, "one_hot_per_point")
    assert torch.equal(one_hot.sum(dim=(2, 3)), torch.ones(1, 68))
    replicated = inclg.render_landmark_map(inclg.landmark_cells(spread, 68, 128, 128), 128)
    assert torch.equal(replicated[0, 5], one_hot[0].sum(0))


def test_zero_initialised_mixing_scalars() -> None:
    net = inclg.build(inclg.Config(ngf=8, lmk_hidden=40, residual_blocks=1))
    assert net.landmark_gamma.item() == net.auto_attn.gamma.item() == net.auto_attn.alpha.item() == 0.0
    assert net.prelu.weight.item() == pytest.approx(0.25)


def test_image_loss_gives_no_gradient_to_landmark_head(small_net: inclg.InpaintGenerator) -> None:
    inputs = load_file(str(parity_dir("inclg") / "inputs.safetensors"))
    net = inclg.build(small_net.cfg)
    net.load_state_dict(small_net.state_dict())
    net.eval()
    out = net(inputs["image"] * (1 - inputs["mask"]) + inputs["mask"], inputs["mask"], inputs["mask_half"],
              inputs["mask_quarter"])
    out.image.mean().backward()
    head = ["fc_landmark", "conv_afteratt_first", "conv_afteratt_node1", "conv_afteratt_node2",
            "conv_afterarr_node3", "prelu", "landmark_gamma"]
    for name, param in net.named_parameters():
        if name.split(".")[0] in head:
            assert param.grad is None or float(param.grad.abs().max()) == 0.0, name
    assert float(net.encoder1[1].gate_conv.weight.grad.abs().max()) > 0


def test_predict_contract(small_net: inclg.InpaintGenerator) -> None:
    inputs = load_file(str(parity_dir("inclg") / "inputs.safetensors"))
    outputs = load_file(str(parity_dir("inclg") / "outputs.safetensors"))
    image, mask = inputs["image"], inputs["mask"]
    with torch.no_grad():
        got = inclg.predict(small_net, image * (1 - mask) + mask, mask)
    assert got["image"].shape == (1, 3, 256, 256)
    assert float(got["image"].min()) >= 0.0 and float(got["image"].max()) <= 1.0
    assert got["landmarks"].shape == (1, 68, 2)
    torch.testing.assert_close(got["landmarks"].reshape(1, 136), outputs["landmarks"], atol=1e-5, rtol=0)
    torch.testing.assert_close(got["image"], outputs["output_raw"], atol=2e-4, rtol=0)
    with pytest.raises(ValueError, match="256"):
        inclg.predict(small_net, torch.zeros(1, 3, 128, 128), torch.zeros(1, 1, 128, 128))


def test_thesis_variants_run() -> None:
    x, m = torch.rand(1, 3, 256, 256), torch.zeros(1, 1, 256, 256)
    m[..., 96:160, 96:160] = 1
    base = inclg.build(inclg.Config(ngf=4, lmk_hidden=8, residual_blocks=1, gated=False, landmark_branch=False))
    with torch.no_grad():
        out = inclg.predict(base.eval(), x, m)
    assert "landmarks" not in out and out["image"].shape == (1, 3, 256, 256)
    assert not any("gate_conv" in k or "fc_landmark" in k for k in base.state_dict())
    zero_fill = inclg.build(inclg.Config(ngf=4, lmk_hidden=8, residual_blocks=1, hole_fill=0.0)).eval()
    white = inclg.build(inclg.Config(ngf=4, lmk_hidden=8, residual_blocks=1)).eval()
    white.load_state_dict(zero_fill.state_dict())
    with torch.no_grad():
        a, b = inclg.predict(zero_fill, x, m)["image"], inclg.predict(white, x, m)["image"]
    assert float((a - b).abs().max()) > 1e-4  # the hole fill reaches the output


def test_card() -> None:
    card = registry.get_card("inclg")
    assert card.capabilities == frozenset({"landmarks"})
    assert card.input.fixed_size == 256 and card.input.hole_fill == 1.0 and card.input.mask_hole_value == 1
    assert card.input.value_range == (0.0, 1.0)
    assert card.weights[0].filename == "inclg.safetensors"
    assert card.weights[0].official_filename == "InpaintingModel_gen.pth"
    assert "drive.google.com" in card.weights[0].source
    assert card.module == "inpaintstudio.models.inclg.network"
