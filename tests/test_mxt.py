"""M×T: parity with the official code, state-dict layout, blocks against hand-written references, import."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from inpaintstudio import registry, weights
from inpaintstudio.core import loading
from inpaintstudio.core.engines import TorchEngine
from inpaintstudio.core.parity import run_parity
from inpaintstudio.models.mxt import network as mxt
from tests.conftest import parity_dir

FIXTURE = parity_dir("mxt")
FIXTURE_JSON = json.loads((FIXTURE / "config.json").read_text())


@pytest.fixture(scope="module")
def fixture_net() -> torch.nn.Module:
    net = mxt.build(mxt.config_from_fixture(FIXTURE_JSON))
    weights.load_strict(net, load_file(str(FIXTURE / "weights.safetensors")), name="mxt fixture")
    return net.eval()


@pytest.fixture(scope="module")
def fixture_inputs() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURE / "inputs.safetensors"))


# ------------------------------------------------------------------------------------------------ parity
def test_parity_fixture() -> None:
    report = run_parity(FIXTURE)
    print(report.table())
    assert report.ok, report.table()
    assert {row.name for row in report.rows} == {"output_raw", "output_composite", "output_float64_reference"}
    assert all(row.max_abs_error is not None for row in report.rows)



def test_intermediates_and_input_convention(fixture_net, fixture_inputs) -> None:
    image, mask = fixture_inputs["image"], fixture_inputs["mask"]
    assert torch.equal(torch.cat([mxt.fill_holes(image, mask), mask], dim=1), fixture_inputs["net_input"])
    expected = load_file(str(FIXTURE / "intermediates.safetensors"))
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        getattr(fixture_net, key.split(".", 1)[1]).register_forward_hook(
            lambda _m, _i, out, key=key: captured.__setitem__(key, out)
        )
        for key in expected
    ]
    try:
        with torch.no_grad():
            fixture_net(mxt.fill_holes(image, mask), mask)
    finally:
        for hook in hooks:
            hook.remove()
    for key, ref in expected.items():
        err = float((captured[key] - ref).abs().max())
        assert err <= 1e-4 * max(1.0, float(ref.abs().max())), (key, err)


def test_engine_uses_card_convention(fixture_net, fixture_inputs) -> None:
    """The card's convention (fill 1.0, mask 1 = hole, range [0,1]) fed through the engine reproduces the fixture."""
    card = registry.get_card("mxt")
    engine = TorchEngine(card, fixture_net, "cpu", mxt.predict)
    image = fixture_inputs["image"][0].permute(1, 2, 0).numpy()
    hole = fixture_inputs["mask"][0, 0].numpy() > 0.5
    out = engine.run(image, hole)
    want = load_file(str(FIXTURE / "outputs.safetensors"))["output_raw"][0].permute(1, 2, 0).numpy()
    assert abs(out.image - want).max() < 1e-4


# ------------------------------------------------------------------------------------------------ layout
def test_default_state_dict_matches_official_keys() -> None:
    official = json.loads((FIXTURE / "default_keys.json").read_text())
    with torch.device("meta"):
        net = mxt.build()
    ours = [[key, list(value.shape)] for key, value in net.state_dict().items()]
    assert ours == [entry[:2] for entry in official["keys"]]
    assert len(ours) == official["n_tensors"] == 3358
    assert sum(p.numel() for p in net.parameters()) == official["total_parameters"] == 155_257_780
    with torch.device("meta"):
        lean = mxt.build(mxt.Config(register_unused_modules=False))
    assert sum(p.numel() for p in lean.parameters()) == 37_610_544  # parameters used in forward
    assert set(lean.state_dict()) < set(net.state_dict())


def test_card() -> None:
    card = registry.get_card("mxt")
    assert card.family == "mxt" and card.module == "inpaintstudio.models.mxt.network" and card.working_size == 256
    assert card.input.pad_multiple == 8 and card.input.value_range == (0.0, 1.0)
    assert card.input.hole_fill == 1.0 and card.input.mask_hole_value == 1 and card.input.fixed_size is None
    assert card.weights[0].filename == "mxt.safetensors"
    assert card.weights[0].official_filename == "InpaintingModel_gen.pth"
    assert "github.com/ChrisChen1023/MxT" in card.weights[0].source


# ------------------------------------------------------------------------------------------------ sizes
def test_non_square_and_batch_independent(fixture_net) -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 48, 80, generator=generator)
    mask = (torch.rand(2, 1, 48, 80, generator=generator) > 0.7).float()
    with torch.no_grad():
        out = mxt.predict(fixture_net, mxt.fill_holes(image, mask), mask)["image"]
        single = fixture_net(mxt.fill_holes(image[1:], mask[1:]), mask[1:])
    assert out.shape == (2, 3, 48, 80)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert float((out[1:] - single).abs().max()) < 1e-5  # CBFN's mean and SRSA pooling are per sample
    assert float((out[0] - out[1]).abs().max()) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("side", [32, 256])
def test_default_model_shapes(side: int) -> None:
    """The released configuration (random weights): 4-channel input, 3-channel output in [0, 1]."""
    torch.manual_seed(5)
    net = mxt.build(mxt.Config(register_unused_modules=False)).eval()
    image, mask = torch.rand(1, 3, side, side), (torch.rand(1, 1, side, side) > 0.6).float()
    with torch.no_grad():
        out = net(mxt.fill_holes(image, mask), mask)
    assert out.shape == (1, 3, side, side) and 0 <= float(out.min()) and float(out.max()) <= 1


def test_size_not_multiple_of_8_is_refused(fixture_net) -> None:
    with pytest.raises(ValueError, match="divisible by 8"):
        fixture_net(torch.ones(1, 3, 20, 24), torch.zeros(1, 1, 20, 24))


# ------------------------------------------------------------------------------------------------ blocks
def _adaptive_pool_reference(x: torch.Tensor, size: int) -> torch.Tensor:
    """Adaptive average pooling with explicit bins [floor(i·n/s), ceil((i+1)·n/s))."""
    h, w = x.shape[-2:]
    rows = [(math.floor(i * h / size), math.ceil((i + 1) * h / size)) for i in range(size)]
    cols = [(math.floor(j * w / size), math.ceil((j + 1) * w / size)) for j in range(size)]
    return torch.stack(
        [torch.stack([x[..., r0:r1, c0:c1].mean(dim=(-2, -1)) for c0, c1 in cols], -1) for r0, r1 in rows], -2
    )


def _srsa_reference(attn: mxt.SpatialReducedSelfAttention, y: torch.Tensor) -> torch.Tensor:
    """SRSA written out head by head."""
    b, c, h, w = y.shape
    qkv = F.conv2d(F.conv2d(y, attn.qkv2.weight), attn.qkv_dwconv2.weight, padding=1, groups=3 * c)
    q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]
    k_pool, v_pool = _adaptive_pool_reference(k, 8), _adaptive_pool_reference(v, 8)
    per_head = c // attn.heads
    out = torch.zeros(b, c, h * w, dtype=y.dtype)
    for head in range(attn.heads):
        part = slice(head * per_head, (head + 1) * per_head)
        query = q[:, part].reshape(b, per_head, h * w)
        key = k_pool[:, part].reshape(b, per_head, 64)
        value = v_pool[:, part].reshape(b, per_head, 64)
        key = key / key.norm(dim=-1, keepdim=True)
        value = value / value.norm(dim=-1, keepdim=True)
        scores = torch.softmax(torch.einsum("bcn,bcm->bnm", query, key) * attn.temperature2[head, 0, 0], dim=-1)
        out[:, part] = torch.einsum("bcm,bnm->bcn", value, scores)
    out = out.reshape(b, c, h, w) + F.conv2d(v, attn.lce.weight, padding=1, groups=c)
    return F.conv2d(out, attn.project_out.weight)


@pytest.mark.parametrize("size", [(20, 12), (6, 10)])
def test_srsa_matches_written_out_reference(size: tuple[int, int]) -> None:
    torch.manual_seed(1)
    attn = mxt.SpatialReducedSelfAttention(12, 3, mxt.Config(register_unused_modules=False)).double()
    attn.requires_grad_(False)
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.3)
        attn.temperature2.copy_(torch.tensor([0.7, 2.0, 4.5]).view(3, 1, 1))
    y = torch.randn(2, 12, *size, dtype=torch.float64)
    with torch.no_grad():
        got = attn(y)
        q, k, _ = attn.qkv_dwconv2(attn.qkv2(y)).chunk(3, dim=1)
        scores = attn.attention(q, k)
    assert scores.shape == (2, 3, size[0] * size[1], 64)  # every pixel attends to the 8×8 pooled grid
    assert torch.allclose(scores.sum(-1), torch.ones((), dtype=torch.float64))
    assert float((got - _srsa_reference(attn, y)).abs().max()) < 1e-10


def test_cbfn_is_gdfn_plus_global_mean() -> None:
    torch.manual_seed(2)
    cfg = mxt.Config(register_unused_modules=False)
    cbfn, gdfn = mxt.FeedForward(6, cfg, "cbfn"), mxt.FeedForward(6, cfg, "gdfn")
    gdfn.load_state_dict(cbfn.state_dict())
    u = torch.randn(2, 6, 8, 12)
    with torch.no_grad():
        plain = gdfn(u)
        diff = cbfn(u) - plain
    assert float(diff.std(dim=(1, 2, 3)).max()) < 1e-6  # one constant per sample
    assert torch.allclose(diff[:, 0, 0, 0], plain.mean(dim=(1, 2, 3)), atol=1e-6)
    assert float(plain.mean(dim=(1, 2, 3)).abs().min()) > 1e-4  # the test would notice a missing broadcast


def test_positional_table() -> None:
    table = mxt.sinusoidal_positions(3, 8)
    assert torch.equal(table[0], torch.tensor([0.0, 1.0] * 4))
    assert table[1, 0].item() == pytest.approx(0.841471, abs=1e-6)
    assert table[1, 1].item() == pytest.approx(0.540302, abs=1e-6)
    assert table[2, 2].item() == pytest.approx(math.sin(2 * math.exp(-2 * math.log(10000) / 8)), abs=1e-6)


def test_mamba_branch_scans_in_raster_order() -> None:
    """Perturbing pixel (2, 1) of a 4×5 map changes exactly the outputs at raster positions ≥ 2·5 + 1."""
    torch.manual_seed(3)
    branch = mxt.MambaBranch(8, mxt.Config(register_unused_modules=False)).eval()
    x = torch.randn(1, 8, 4, 5)
    moved = x.clone()
    moved[0, :, 2, 1] += torch.randn(8)  # not a constant: the LayerNorm would cancel that
    with torch.no_grad():
        change = (branch(moved) - branch(x)).abs().amax(dim=1).flatten()
    assert float(change[:11].max()) < 1e-6
    assert float(change[11:].min()) > 1e-6


@pytest.mark.parametrize(
    "switches, absent",
    [
        ({"mixer_arrangement": "sequential"}, ".fuse."),
        ({"use_mamba_branch": False}, ".mam."),
        ({"use_srsa": False}, ".attn."),
        ({"ffn": "gdfn"}, None),
    ],
)
def test_paper_variants_build_and_run(switches: dict, absent: str | None) -> None:
    base = mxt.Config(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=0, register_unused_modules=False)
    torch.manual_seed(4)
    reference = mxt.build(base).eval()
    torch.manual_seed(4)
    variant = mxt.build(dataclasses.replace(base, **switches)).eval()
    keys = set(variant.state_dict())
    if absent is not None:
        assert not any(absent in key for key in keys) and any(absent in key for key in reference.state_dict())
    else:
        assert keys == set(reference.state_dict())
    image, mask = torch.rand(1, 3, 16, 24), torch.zeros(1, 1, 16, 24)
    with torch.no_grad():
        out, ref = variant(image, mask), reference(image, mask)
    assert out.shape == (1, 3, 16, 24) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert float((out - ref).abs().max()) > 1e-6


# ------------------------------------------------------------------------------------------------ import
def test_import_official_checkpoint(tmp_path, fixture_inputs) -> None:
    official = load_file(str(FIXTURE / "weights.safetensors"))
    extra = "encoder_level1.0.attn.temperature"  # e.g. a tensor of an older code version
    generator = {"module." + key: value for key, value in official.items()}
    generator["module." + extra] = torch.ones(1, 1, 1)
    source = tmp_path / "InpaintingModel_gen.pth"
    torch.save({"iteration": 7, "generator": generator}, source)

    config = mxt.config_from_fixture(FIXTURE_JSON)
    card = registry.register(dataclasses.replace(registry.get_card("mxt"), name="test_mxt_import", config=config))
    try:
        report = loading.import_checkpoint(card.name, source, tmp_path / "out.safetensors")
        assert report.dropped == [extra] and report.missing == [] and report.iteration == 7
        assert report.tensors == len(official) == 774
        net = mxt.build(card.config)
        weights.load_strict(net, weights.read_checkpoint(tmp_path / "out.safetensors")[0])
        image, mask = fixture_inputs["image"], fixture_inputs["mask"]
        with torch.no_grad():
            produced = mxt.predict(net.eval(), mxt.fill_holes(image, mask), mask)["image"]
        want = load_file(str(FIXTURE / "outputs.safetensors"))["output_raw"]
        assert float((produced - want).abs().max()) < 1e-4

        # A checkpoint lacking a tensor (even an unused one) is refused with the key named.
        del generator["module.refinement.0.mam.mamba2.D"]
        torch.save({"iteration": 7, "generator": generator}, source)
        with pytest.raises(weights.WeightsError, match=r"refinement\.0\.mam\.mamba2\.D"):
            loading.import_checkpoint(card.name, source, tmp_path / "refused.safetensors")
        assert not (tmp_path / "refused.safetensors").exists()
    finally:
        registry.unregister(card.name)


def test_remap_keeps_official_names_only() -> None:
    tensor = torch.zeros(1)
    sd = {
        "latent.7.attn.qkv2.weight": tensor,
        "refinement.3.ffn1.conv.6.body.bias": tensor,
        "output.0.weight": tensor,
        "latent.x.attn.qkv2.weight": tensor,
        "encoder_level1.0.attn.temperature": tensor,
        "discriminator.conv1.weight": tensor,
    }
    kept, info = mxt.remap_official_state_dict(sd)
    assert list(kept) == ["latent.7.attn.qkv2.weight", "refinement.3.ffn1.conv.6.body.bias", "output.0.weight"]
    assert info["dropped"] == [
        "latent.x.attn.qkv2.weight", "encoder_level1.0.attn.temperature", "discriminator.conv1.weight"
    ]
    assert info["renamed"] == {}


def test_srsa_on_pixel_rows_matches_the_channel_major_path() -> None:
    """Channels-last input takes the pixel-row form of the attention; NCHW input the original reshapes."""
    torch.manual_seed(5)
    layer = mxt.SpatialReducedSelfAttention(24, 4, mxt.Config(register_unused_modules=False)).eval()
    torch.nn.init.uniform_(layer.temperature2, 0.5, 2.0)
    y = torch.randn(2, 24, 16, 12)
    with torch.no_grad():
        channel_major = layer(y)
        rows = layer(y.contiguous(memory_format=torch.channels_last))
    assert (rows - channel_major).abs().max().item() < 1e-5


@pytest.mark.parametrize("heads", [1, 4])
def test_srsa_trains_on_channels_last_input(heads) -> None:
    """With autograd the pixel-row attention keeps differentiable products (no ``out=`` writes) and gives the same
    output and input gradient as the channel-major path."""
    torch.manual_seed(6)
    layer = mxt.SpatialReducedSelfAttention(24, heads, mxt.Config(register_unused_modules=False))
    y = torch.randn(2, 24, 16, 12)
    grads = []
    for x in (y.clone(), y.contiguous(memory_format=torch.channels_last)):
        x.requires_grad_(True)
        out = layer(x)
        out.square().mean().backward()
        grads.append((out.detach(), x.grad))
    assert (grads[0][0] - grads[1][0]).abs().max().item() < 1e-5
    assert (grads[0][1] - grads[1][1]).abs().max().item() < 1e-6
    with torch.no_grad():  # and inference takes the one-head shortcut without changing the result
        assert (layer(y.contiguous(memory_format=torch.channels_last)) - grads[0][0]).abs().max().item() < 1e-5


@pytest.mark.parametrize("bias", [False, True])
def test_folded_fuse_equals_the_mixers_projections_then_the_fuse(bias, monkeypatch) -> None:
    """Inference folds the fuse into the Mamba and SRSA output projections; the block's output is unchanged."""
    torch.manual_seed(7)
    cfg = mxt.Config(register_unused_modules=False, bias=bias)
    block = mxt.HybridModule(16, 2, cfg).eval()
    if bias:  # non-zero biases everywhere they exist, so that the folded bias is exercised
        for module in block.modules():
            if getattr(module, "bias", None) is not None and isinstance(module.bias, torch.nn.Parameter):
                torch.nn.init.uniform_(module.bias, -0.5, 0.5)
    x = torch.randn(2, 16, 12, 10).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert block._folded_fuse_applies(x)
        folded = block(x)
        monkeypatch.setattr(mxt.HybridModule, "_folded_fuse_applies", lambda self, x: False)
        unfolded = block(x)
    assert folded.is_contiguous(memory_format=torch.channels_last)
    assert (folded - unfolded).abs().max().item() < 1e-5 * max(1.0, unfolded.abs().max().item())
    monkeypatch.undo()
    assert not block._folded_fuse_applies(x)  # autograd on (training): the modules as they are
