"""TSGL (256 TSGL-MEDFE and 512 TSGL-LaMa): parity, preprocessing, key lists, switches, checkpoint import."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from inpaintstudio import registry, weights
from inpaintstudio.core import loading
from inpaintstudio.core.parity import run_parity
from inpaintstudio.models.tsgl import network as tsgl
from tests.conftest import fixture_net, fixture_tensors_of, parity_dir

FIXTURE = parity_dir("tsgl")
PREPROCESSING = FIXTURE / "preprocessing" / "preprocessing.safetensors"


@pytest.fixture(scope="module")
def fixture_config() -> tsgl.Config:
    return tsgl.config_from_fixture(json.loads((FIXTURE / "config.json").read_text()))


@pytest.fixture(scope="module")
def fixture_tensors() -> dict[str, dict[str, torch.Tensor]]:
    return fixture_tensors_of(FIXTURE)



# ------------------------------------------------------------------------------------------------- parity
def test_parity_fixture_within_tolerance() -> None:
    report = run_parity(FIXTURE)
    print(report.table())
    assert report.ok, report.table()
    errors = {row.name: row.max_abs_error for row in report.rows}
    assert errors["output_raw"] < 1e-4
    assert errors["aux_edge_prediction_trainscript"] is not None and errors["aux_edge_prediction_trainscript"] < 1e-5



# ------------------------------------------------------------------------------------------------- preprocessing
def test_preprocessing_reproduces_official_pipeline(fixture_tensors) -> None:
    pre = load_file(str(PREPROCESSING))
    inputs = fixture_tensors["inputs"]
    got = tsgl.prepare_official_inputs(pre["rgb_uint8"].numpy(), pre["rtv_uint8"].numpy())
    assert torch.equal(got["image"], inputs["image"])
    assert torch.equal(got["texture"], inputs["texture"])
    assert np.array_equal(got["folded"], pre["folded_uint8"].numpy())
    assert float((got["gray"] - pre["gray"]).abs().max()) <= 1e-7
    assert int((got["edge"] != pre["edge_uint8"].float()).sum()) == 0
    assert torch.equal(got["edge"], inputs["edge"]) and torch.equal(got["gray"], inputs["gray"])


def test_fold_switch_changes_structure_inputs() -> None:
    pre = load_file(str(PREPROCESSING))
    rgb = pre["rgb_uint8"].numpy()
    folded = tsgl.prepare_official_inputs(rgb, rgb, tsgl.Config())
    true = tsgl.prepare_official_inputs(rgb, rgb, tsgl.Config(fold_structure_inputs=False))
    assert np.array_equal(true["folded"], rgb)
    # mid-grey maps to black and dark pixels fold onto bright ones: grey differs a lot
    assert float((folded["gray"] - true["gray"]).abs().mean()) > 0.1
    assert int((folded["edge"] != true["edge"]).sum()) > 100


def test_fold_values() -> None:
    u = torch.tensor([0, 1, 64, 127, 128, 200, 255], dtype=torch.float32)
    v = (u / 255 - 0.5) / 0.5
    folded = tsgl.fold_to_uint8(v.view(1, 1, -1).expand(3, 1, -1))[0, :, 0].astype(int)
    assert folded[3] == 0 and folded[4] == 1 and folded[5] == 2 * 200 - 255 and folded[6] == 255
    assert folded[0] == 1  # v = −1 → trunc(−255) = −255 → 1 (mod 256)


def test_rtv_matches_reference_within_one_grey_level() -> None:
    pre = load_file(str(PREPROCESSING))
    smooth = tsgl.rtv_smooth(pre["rgb_uint8"].numpy() / 255.0)  # MATLAB's branch: PCG(0.1) + michol
    stored = np.round(np.clip(smooth, 0, 1) * 255).astype(int)
    diff = np.abs(stored - pre["rtv_uint8"].numpy().astype(int))
    print(f"RTV vs Octave tsmooth: max {diff.max()}, mean {diff.mean():.3f} grey levels")
    assert diff.max() <= 1 and diff.mean() < 0.3

    def total_variation(a: np.ndarray) -> float:
        a = a.astype(float)
        return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())

    assert total_variation(stored) < 0.6 * total_variation(pre["rgb_uint8"].numpy())


def test_rtv_direct_solver_is_close_to_pcg() -> None:
    image = load_file(str(PREPROCESSING))["rgb_uint8"].numpy()[64:128, 64:128] / 255.0
    exact = tsgl.rtv_smooth(image, solver="direct")
    inexact = tsgl.rtv_smooth(image, solver="pcg")
    gap = np.abs(exact - inexact) * 255
    assert 0 < gap.max() <= 8 and gap.mean() < 1.0


# ------------------------------------------------------------------------------------------------- key lists
def test_paper_depths_parameter_count() -> None:
    with torch.device("meta"):
        net = tsgl.build(tsgl.Config(depths=(2, 2, 6, 2)))
    assert sum(p.numel() for p in net.parameters()) == 190_568_860


# ------------------------------------------------------------------------------------------------- switches
def test_raw_reshape_bug_switch_changes_output(fixture_config, fixture_tensors) -> None:
    net = fixture_net(tsgl, dataclasses.replace(fixture_config, clb_raw_reshape=False), fixture_tensors["weights"])
    with torch.no_grad():
        out = tsgl.parity_forward(net, fixture_tensors["inputs"])["output_raw"]
    assert float((out - fixture_tensors["outputs"]["output_raw"]).abs().max()) > 0.1


def test_balance_module_quirk_switches_change_equalisation() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 16, 32, 32)
    outputs = {}
    for name, kwargs in {
        "code": {},
        "transpose": {"raw_reshape": False},
        "neighbours": {"softmax_dim": "neighbours"},
    }.items():
        torch.manual_seed(1)
        options = {"softmax_dim": "positions", "raw_reshape": True} | kwargs
        block = tsgl.FeatureEqualisation(16, 4, 1.5, 32, **options).eval()
        with torch.no_grad():
            outputs[name] = block(x)
    assert float((outputs["code"] - outputs["transpose"]).abs().max()) > 0.1
    assert float((outputs["code"] - outputs["neighbours"]).abs().max()) > 0.1
    # the Gaussian table is row-normalised
    table = tsgl.gaussian_table(32, 1.5)
    assert torch.allclose(table.sum(1), torch.ones(1024))


def test_mask_conv_and_mask_switches() -> None:
    torch.manual_seed(0)
    conv = tsgl.MaskNormalisedConv(4, 4, 3, "loaded")
    x = torch.randn(1, 4, 8, 8)
    ones = torch.ones(1, 1, 8, 8)
    with torch.no_grad():
        loaded, _ = conv(x, ones)
        conv.mask_conv_mode = "ones"
        clean, _ = conv(x, ones)
    # with W_m = 1 the interior normaliser is cin·k² = 36
        plain = conv.input_conv(x)
    assert torch.allclose(clean[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1] / 36, atol=1e-6)
    assert float((loaded - clean).abs().max()) > 1.0
    cfg = tsgl.Config(cnum=2)
    holes = torch.zeros(1, 1, 256, 256)
    holes[..., 64:192, 64:192] = 1
    assert float(tsgl.BalanceModule(cfg)._valid_mask(holes).min()) == 1.0  # code: never any hole
    real = tsgl.BalanceModule(dataclasses.replace(cfg, clb_mask="holes"))._valid_mask(holes)
    assert float(real.sum()) == 32 * 32 - 16 * 16


# ------------------------------------------------------------------------------------------------- import & predict
def test_import_official_checkpoint_round_trip(tmp_path, fixture_config, fixture_tensors) -> None:
    card = registry.get_card("tsgl")
    name = "test_tsgl_import"
    registry.register(dataclasses.replace(card, name=name, config=fixture_config))
    try:
        official = {f"module.{key}": value.clone() for key, value in fixture_tensors["weights"].items()}
        source = tmp_path / "G_10.pth"
        torch.save(official, source)
        report = loading.import_checkpoint(name, source, tmp_path / "out.safetensors")
    finally:
        registry.unregister(name)
    assert report.dropped == [] and report.missing == []
    assert report.tensors == len(fixture_tensors["weights"]) == 548
    state, _ = weights.read_checkpoint(tmp_path / "out.safetensors")
    net = fixture_net(tsgl, fixture_config, state)
    with torch.no_grad():
        out = tsgl.parity_forward(net, fixture_tensors["inputs"])
    expected = fixture_tensors["outputs"]
    assert float((out["output_raw"] - expected["output_raw"]).abs().max()) < 2e-4
    assert float((out["output_composite"] - expected["output_composite"]).abs().max()) < 2e-4


def test_discriminator_checkpoint_is_refused() -> None:
    fake = {"encoder.0.weight_orig": torch.zeros(64, 3, 5, 5), "classifier.weight": torch.zeros(1, 512, 5, 5)}
    with pytest.raises(ValueError, match="discriminator"):
        tsgl.remap_official_state_dict(fake)


def test_card() -> None:
    card = registry.get_card("tsgl")
    assert card.family == "tsgl" and card.module == "inpaintstudio.models.tsgl.network"
    assert card.input.fixed_size == 256 and card.input.value_range == (-1.0, 1.0)
    assert card.input.mask_hole_value == 0 and card.input.hole_fill == 0.0
    assert card.weights[0].filename == "tsgl.safetensors" and card.weights[0].official_filename == "G_<n>.pth"
    assert "pan.baidu.com" in card.weights[0].source
    assert card.config is None and loading.card_config(card) == tsgl.Config()
    assert "Apache-2.0" in card.licence and "CC BY-NC-SA 4.0" in card.licence and "no code" in card.licence


def test_structure_partial_conv_matches_the_official_count() -> None:
    """Official form: count = conv2d(m, ones(cout, cin, k, k)) on the replicated mask, ratio = cin·k²/(count+1e-8)
    kept where count > 0, output = conv(x·m)·ratio (then BN, act)."""
    torch.manual_seed(0)
    layer = tsgl.StructurePartialConv(3, 5, 5, 2, bn=False).eval()
    x = torch.randn(1, 3, 16, 16)
    mask = (torch.rand(1, 1, 16, 16) > 0.6).float()
    mask[..., :8, :8] = 0  # a window with no valid input
    with torch.no_grad():
        y, new_mask = layer(x, mask)
        full = mask.expand(1, 3, 16, 16)
        count = torch.nn.functional.conv2d(full, torch.ones(5, 3, 5, 5), stride=2, padding=2)
        ratio = 75 / (count + 1e-8) * count.clamp(0, 1)
        expected = torch.relu(torch.nn.functional.conv2d(full * x, layer.conv.weight, stride=2, padding=2) * ratio)
    assert torch.allclose(y, expected, atol=1e-5)
    assert torch.equal(new_mask, count.clamp(0, 1)[:, :1]) and float(new_mask.min()) == 0.0
    assert list(layer.state_dict()) == ["conv.weight"]


def test_predict_uses_known_mask_polarity(fixture_config, fixture_tensors) -> None:
    net = fixture_net(tsgl, dataclasses.replace(fixture_config, rtv_solver="direct"), fixture_tensors["weights"])
    inputs = fixture_tensors["inputs"]
    known = inputs["mask"]
    image = inputs["image"] * known  # holes filled with 0, as the card asks
    with torch.no_grad():
        out = tsgl.predict(net, image, known)["image"]
        holes_as_mask = tsgl.predict(net, image, 1 - known)["image"]
    assert out.shape == (1, 3, 256, 256) and float(out.abs().max()) <= 1.0
    # close to the official output (edges/RTV recomputed from the hole-filled image, so not identical)
    reference = fixture_tensors["outputs"]["output_raw"]
    error = float((out - reference).abs().mean())
    assert error < 0.05 and 5 * error < float((holes_as_mask - reference).abs().mean())
    with pytest.raises(ValueError, match="256"):
        tsgl.predict(net, torch.zeros(1, 3, 128, 128), torch.ones(1, 1, 128, 128))
