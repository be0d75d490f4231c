"""HINT: parity with the official code, default state-dict layout, non-square inputs, checkpoint import."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from inpaintstudio import registry, weights
from inpaintstudio.core import loading
from inpaintstudio.core.parity import run_parity
from inpaintstudio.models.hint import network as hint
from tests.conftest import parity_dir

FIXTURE = parity_dir("hint")
FIXTURE_JSON = json.loads((FIXTURE / "config.json").read_text())
PARITY_ATOL = 1e-4


@pytest.fixture(scope="module")
def fixture_net() -> hint.HINT:
    net = hint.build(hint.config_from_fixture(FIXTURE_JSON))
    weights.load_strict(net, load_file(str(FIXTURE / "weights.safetensors")), name="hint fixture")
    return net.eval()


@pytest.fixture(scope="module")
def fixture_inputs() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURE / "inputs.safetensors"))


def test_parity_with_official_outputs() -> None:
    report = run_parity(FIXTURE)
    print(report.table())
    assert report.ok, report.table()
    errors = {row.name: row.max_abs_error for row in report.rows}
    assert set(errors) == {"output_raw", "output_composite", "output_float64_reference"}
    assert all(err is not None and err <= PARITY_ATOL for err in errors.values())



def test_intermediates_match_official(fixture_net, fixture_inputs) -> None:
    reference = load_file(str(FIXTURE / "intermediates.safetensors"))
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        getattr(fixture_net, name).register_forward_hook(
            lambda _m, _i, out, name=name: captured.__setitem__(f"intermediate.{name}", out)
        )
        for name in ("encoder_level3", "latent", "decoder_level3", "output")
    ]
    try:
        with torch.no_grad():
            fixture_net(fixture_inputs["image"], fixture_inputs["mask"])
    finally:
        for handle in hooks:
            handle.remove()
    assert set(captured) == set(reference)
    for key, want in reference.items():
        tol = PARITY_ATOL * max(1.0, float(want.abs().max()))
        assert (captured[key] - want).abs().max().item() <= tol, key


def test_wrapper_inputs_match_fixture(fixture_inputs) -> None:
    image, mask = fixture_inputs["image"], fixture_inputs["mask"]
    assert torch.equal(hint.network_input(image, mask), fixture_inputs["net_input"])
    assert torch.equal(hint.downsample_mask(mask, 2), fixture_inputs["mask_half"])
    assert torch.equal(hint.downsample_mask(mask, 4), fixture_inputs["mask_quarter"])
    assert torch.equal(hint.downsample_mask(mask, 8), fixture_inputs["mask_eighth"])
    # nearest keeps the top-left pixel of every cell
    assert torch.equal(hint.downsample_mask(mask, 2), mask[..., ::2, ::2])


def test_per_block_parameter_counts() -> None:
    with torch.device("meta"):
        net = hint.build()

    def count(block: torch.nn.Module) -> int:
        return sum(p.numel() for p in block.parameters())

    assert count(net.encoder_level1[0]) == 93_709
    assert count(net.encoder_level2[0]) == 362_558
    assert count(net.encoder_level3[0]) == 1_424_380
    assert count(net.latent[0]) == 5_648_156
    assert count(net.decoder_level1[0]) == 362_557


def test_non_square_input_runs_and_keeps_batch_items_independent(fixture_net) -> None:
    generator = torch.Generator().manual_seed(7)
    image = torch.rand(2, 3, 48, 80, generator=generator)
    mask = (torch.rand(2, 1, 48, 80, generator=generator) > 0.6).float()
    with torch.no_grad():
        out = fixture_net(image, mask)
        single = fixture_net(image[1:], mask[1:])
    assert out.shape == (2, 3, 48, 80)
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0
    assert torch.allclose(out[1:], single, atol=1e-5, rtol=0)
    assert (out[0] - out[1]).abs().max().item() > 1e-3
    # the network fills the holes itself: whatever is under the hole does not matter
    with torch.no_grad():
        scribbled = fixture_net(image * (1 - mask) + 0.3 * mask, mask)
    assert torch.allclose(scribbled, out, atol=1e-6, rtol=0)


def test_size_not_multiple_of_16_is_refused(fixture_net) -> None:
    with pytest.raises(ValueError, match="48x72"):
        fixture_net(torch.rand(1, 3, 48, 72), torch.zeros(1, 1, 48, 72))


def test_mpd_pairs_each_feature_channel_with_the_mask_of_its_sub_pixel_position() -> None:
    features = torch.zeros(1, 1, 2, 2)
    features[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    features = features.repeat(1, 2, 1, 1)  # 2 channels -> 8 unshuffled channels
    mask = torch.tensor([[[[10.0, 20.0], [30.0, 40.0]]]])
    unshuffled = torch.nn.functional.pixel_unshuffle(features, 2)
    z = hint.MaskAwarePixelShuffleDownsample.interleave(unshuffled, mask)
    assert z.shape == (1, 16, 1, 1)
    pairs = z.flatten().view(8, 2)
    assert torch.equal(pairs[:, 1], pairs[:, 0] * 10)  # same (dy, dx) for every k
    mpd = hint.MaskAwarePixelShuffleDownsample(4)
    assert tuple(mpd.proj.weight.shape) == (8, 2, 3, 3)


def test_temperature_switch_divides_instead_of_multiplying() -> None:
    torch.manual_seed(0)
    z = torch.randn(1, 8, 8, 8)
    multiply = hint.SCAL(8, 2, False, "multiply", True)
    divide = hint.SCAL(8, 2, False, "divide", True)
    divide.load_state_dict(multiply.state_dict())
    with torch.no_grad():
        multiply.temperature.copy_(torch.tensor([2.0, 4.0]).view(2, 1, 1))
        divide.temperature.copy_(torch.tensor([0.5, 0.25]).view(2, 1, 1))
        assert torch.allclose(multiply(z), divide(z), atol=1e-6)
        unnormalised = hint.SCAL(8, 2, False, "multiply", False)
        unnormalised.load_state_dict(multiply.state_dict())
        assert (multiply(z) - unnormalised(z)).abs().max().item() > 1e-3


def test_card_convention() -> None:
    card = registry.get_card("hint")
    assert card.input.pad_multiple == 16 and card.input.hole_fill == 1.0 and card.input.mask_hole_value == 1
    assert card.input.value_range == (0.0, 1.0) and card.working_size == 256
    assert card.weights[0].filename == "hint.safetensors"
    assert card.weights[0].official_filename == "InpaintingModel_gen.pth"
    assert "github.com/ChrisChen1023/HINT" in card.weights[0].source


@pytest.fixture
def import_card():
    card = dataclasses.replace(
        registry.get_card("hint"), name="test_hint_import", config=hint.config_from_fixture(FIXTURE_JSON)
    )
    registry.register(card)
    yield card
    registry.unregister(card.name)


def _fake_official_checkpoint(path, generator: dict[str, torch.Tensor]) -> None:
    torch.save({"iteration": 42, "generator": generator}, str(path))


def test_import_official_checkpoint_drops_refinement_and_reproduces_fixture(
    tmp_path, import_card, fixture_inputs
) -> None:
    fixture_weights = load_file(str(FIXTURE / "weights.safetensors"))
    refinement = {
        "refinement.0.norm1_1.body.weight": torch.ones(16),
        "refinement.0.attn.temperature": torch.ones(1, 1, 1),
        "refinement.3.ffn.project_out.weight": torch.zeros(16, 42, 1, 1),
    }
    source = tmp_path / "InpaintingModel_gen.pth"
    _fake_official_checkpoint(source, {**fixture_weights, **refinement})

    report = loading.import_checkpoint(import_card.name, source, tmp_path / "out.safetensors")

    assert report.dropped == sorted(refinement)
    assert report.iteration == 42 and report.missing == [] and report.tensors == 253
    written = load_file(str(tmp_path / "out.safetensors"))
    assert set(written) == set(fixture_weights)
    net = hint.build(import_card.config)
    weights.load_strict(net, written, name="imported")
    expected = load_file(str(FIXTURE / "outputs.safetensors"))["output_raw"]
    with torch.no_grad():
        produced = net.eval()(fixture_inputs["image"], fixture_inputs["mask"])
    assert (produced - expected).abs().max().item() <= PARITY_ATOL


def test_import_refuses_checkpoint_missing_a_used_key(tmp_path, import_card) -> None:
    generator = load_file(str(FIXTURE / "weights.safetensors"))
    del generator["latent.1.attn.temperature"]
    generator["refinement.0.norm1.body.bias"] = torch.zeros(16)
    source = tmp_path / "InpaintingModel_gen.pth"
    _fake_official_checkpoint(source, generator)
    with pytest.raises(weights.WeightsError, match=r"latent\.1\.attn\.temperature"):
        loading.import_checkpoint(import_card.name, source, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_remap_keeps_every_non_refinement_key() -> None:
    sd = {"patch_embed.gproj1.weight": torch.zeros(1), "refinement.1.ffn.dwconv.weight": torch.zeros(1)}
    kept, info = hint.remap_official_state_dict(sd)
    assert list(kept) == ["patch_embed.gproj1.weight"]
    assert info == {"dropped": ["refinement.1.ffn.dwconv.weight"], "renamed": {}}


def test_scal_channel_attention_on_pixel_rows_matches_the_channel_major_path() -> None:
    """Channels-last input takes the pixel-row form of the attention; NCHW input the original reshapes."""
    torch.manual_seed(3)
    layer = hint.SCAL(24, 4, bias=False, temperature_mode="multiply", normalize_qk=True)
    torch.nn.init.uniform_(layer.temperature, 0.5, 2.0)
    z = torch.randn(2, 24, 8, 12)
    with torch.no_grad():
        channel_major = layer.channel_attention(z)
        rows = layer.channel_attention(z.contiguous(memory_format=torch.channels_last))
    assert rows.is_contiguous(memory_format=torch.channels_last)
    assert (rows - channel_major).abs().max().item() < 1e-5
