"""MobileSAM: parity with the authors' code, the released key list, fetch and import, and the Selector's cache."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from inpaintstudio import registry, weights
from inpaintstudio.cli import main
from inpaintstudio.core import loading
from inpaintstudio.core.parity import run_parity
from inpaintstudio.errors import EXIT_OK, WeightsMissingError
from inpaintstudio.models.mobile_sam import network as ms
from inpaintstudio.selection import Prompt, Selector
from inpaintstudio.selection.predictor import find_mobile_sam_weights
from inpaintstudio.weights import fetch
from inpaintstudio.weights.sources import Location, Source
from tests.conftest import fixture_net, fixture_tensors_of, parity_dir

FIXTURE = parity_dir("mobile_sam")
CONFIG = json.loads((FIXTURE / "config.json").read_text())
URL = "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt"


@pytest.fixture(scope="module", autouse=True)
def _threads(single_thread) -> None:
    return None


@pytest.fixture(scope="module")
def tensors() -> dict[str, dict[str, torch.Tensor]]:
    found = fixture_tensors_of(FIXTURE)
    found["intermediates"] = load_file(str(FIXTURE / "intermediates.safetensors"))
    return found


@pytest.fixture(scope="module")
def net(tensors) -> ms.MobileSAM:
    return fixture_net(ms, ms.config_from_fixture(CONFIG), tensors["weights"])


@pytest.fixture(scope="module")
def prompt(tensors) -> Prompt:
    inputs = tensors["inputs"]
    points = tuple((int(x), int(y), bool(label)) for (x, y), label in
                   zip(inputs["point_coords"].tolist(), inputs["point_labels"].tolist()))
    return Prompt(box=tuple(int(v) for v in inputs["box"].tolist()), points=points)


@pytest.fixture(scope="module")
def release_file(tmp_path_factory) -> Path:
    """A stand-in for the released ``mobile_sam.pt``: the default network's state_dict, random values."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("release") / "mobile_sam.pt"
    torch.save(ms.build().state_dict(), path)
    return path


# ------------------------------------------------------------------------------------------------ parity
def test_parity_fixture_within_tolerance() -> None:
    report = run_parity(FIXTURE)
    assert report.ok, report.table()
    errors = {row.name: row.max_abs_error for row in report.rows if row.max_abs_error is not None}
    assert set(CONFIG["tolerance"]["atol"]) <= set(errors)
    assert errors["image_embeddings"] < 5e-5
    assert max(v for k, v in errors.items() if k != "image_embeddings") < 1e-5


def test_prompt_intermediates_match(net, tensors) -> None:
    with torch.no_grad():
        produced = ms.parity_forward(net, tensors["inputs"])
    for name, expected in tensors["intermediates"].items():
        assert float((produced[name].detach() - expected).abs().max()) < 1e-5, name


def test_strict_load_refuses_a_missing_key(tensors) -> None:
    state = dict(tensors["weights"])
    state.pop("image_encoder.layers.1.blocks.0.attn.attention_biases")
    with pytest.raises(weights.WeightsError, match="attention_biases"):
        weights.load_strict(ms.build(ms.config_from_fixture(CONFIG)), state)


def test_bias_table_is_gathered_again_after_loading_into_an_eval_network(tensors) -> None:
    fresh = ms.build(ms.config_from_fixture(CONFIG))  # build() returns it in eval mode: the table of zeros is cached
    fresh.load_state_dict(tensors["weights"])
    attn = fresh.image_encoder.layers[1].blocks[0].attn
    assert torch.equal(attn._bias(torch.zeros(1)), attn.attention_biases[:, attn.attention_bias_idxs])
    assert attn.attention_biases.abs().sum() > 0


def test_preprocessing_matches_the_fixture(tensors) -> None:
    from PIL import Image

    raw = tensors["inputs"]["raw_image"].numpy()
    h, w = ms.resized_size(*raw.shape[:2])
    assert (h, w) == (683, 1024) and ms.resized_size(1024, 333) == (1024, 333) and ms.resized_size(3, 2000) == (2, 1024)
    resized = np.asarray(Image.fromarray(raw).resize((w, h), Image.BILINEAR))
    assert np.array_equal(resized, tensors["inputs"]["resized_image"].numpy())


def test_postprocess_shape() -> None:
    low = torch.zeros(1, 3, 256, 256)
    assert ms.postprocess_masks(low, ms.resized_size(320, 480), (320, 480)).shape == (1, 3, 320, 480)
    assert ms.postprocess_masks(low, ms.resized_size(2000, 30), (2000, 30)).shape == (1, 3, 2000, 30)


def test_encoder_needs_1024_and_the_merge_rule(net) -> None:
    assert [ms.merge_stride(d) for d in (128, 160, 320, 448, 576)] == [2, 2, 1, 1, 1]
    with pytest.raises(ValueError, match="end at a 32² grid; SAM's decoder needs 64²"):
        ms.TinyViT(ms.TinyViTConfig(embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1)))  # no stride-1 last merge
    with pytest.raises(ValueError, match="TinyViT runs on 1024² inputs"):
        net.image_encoder(torch.zeros(1, 3, 512, 512))


# ------------------------------------------------------------------------------------------------ release
def test_default_configuration_has_the_released_keys() -> None:
    reference = json.loads((FIXTURE / "default_keys.json").read_text())
    with torch.device("meta"):
        full = ms.build()
    ours = {key: list(value.shape) for key, value in full.state_dict().items()}
    assert reference["n_keys"] == len(ours) == 439
    assert ours == {key: list(shape) for key, shape in reference["keys"].items()}
    assert sum(p.numel() for p in full.parameters()) == reference["n_parameters"] == 10_130_092
    assert "image_encoder.head.weight" in ours and "image_encoder.norm_head.bias" in ours


def test_published_source_states_size_and_both_checksums() -> None:
    source = registry.get_source("mobile_sam")
    location = source.locations[0]
    official = CONFIG["official_weights"]
    assert (source.name, location.ref) == ("mobile_sam:sa1b", URL)
    assert location.size == official["bytes"] == 40_728_226
    assert location.sha256 == official["sha256_published_on_hf_mirror"]
    assert location.md5 == official["md5_in_iopaint"]
    assert registry.get_card("mobile_sam").licence.startswith("Apache-2.0")


def _release_source(path: Path, variant: str = "test", **changes: object) -> Source:
    data = path.read_bytes()
    location = Location("url", URL, pick=("mobile_sam.pt",), md5=hashlib.md5(data).hexdigest(),
                        sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    return registry.register_source(Source("mobile_sam", variant, "SA-1B", "selection",
                                                 (dataclasses.replace(location, **changes),),
                                                 official_filename="mobile_sam.pt"))


@pytest.fixture
def offline_download(release_file, monkeypatch, tmp_path) -> Path:
    """``download_url`` copies the stand-in release instead of touching the network."""
    folder = tmp_path / "weights"
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(folder))
    monkeypatch.delenv(fetch.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(fetch, "download_url", lambda url, destination, *a, **k: shutil.copy(release_file, destination))
    yield folder
    for name in registry.registered_sources():
        registry.unregister_source(name)


def test_fetch_checks_size_and_checksums_converts_and_locks(offline_download, release_file) -> None:
    source = _release_source(release_file)
    result = fetch.fetch(source.name, log=lambda line: None)
    assert result.path == offline_download / "mobile_sam.test.safetensors" and result.action == "fetched"
    entry = fetch.read_lock(offline_download)["mobile_sam:test"]
    assert entry["published_sha256"] == source.locations[0].sha256 == entry["download_sha256"]
    assert entry["md5"] == source.locations[0].md5 and entry["download_bytes"] == release_file.stat().st_size
    assert entry["tensors"] == 439 and entry["dropped_keys"] == []
    assert loading.weight_status("mobile_sam:test")["state"] == "verified"
    card, why = find_mobile_sam_weights()
    assert card is not None and card.name == "mobile_sam:test" and "verified" in why


@pytest.mark.parametrize(("change", "message"), [
    ({"size": 40_728_226}, "bytes, its publisher states 40728226"),
    ({"sha256": "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"}, "the published one is 6dbb9052"),
    ({"md5": "f3c0d8cda613564d499310dab6c812cd"}, "its publisher states f3c0d8cd"),
])
def test_a_download_that_is_not_the_release_is_deleted(offline_download, release_file, change, message) -> None:
    source = _release_source(release_file, **change)
    with pytest.raises(fetch.VerificationError, match=message):
        fetch.fetch(source.name, log=lambda line: None)
    assert not (offline_download / "mobile_sam.test.safetensors").exists()
    assert not (offline_download / "downloads").exists()


def test_import_then_auto_uses_mobile_sam(release_file, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(tmp_path / "weights"))
    assert main(["weights", "import", "--model", "mobile_sam", str(release_file)]) == EXIT_OK
    assert (tmp_path / "weights" / "mobile_sam.safetensors").is_file()
    capsys.readouterr()
    assert main(["models"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split()[:3] == ["mobile_sam", "select", "present"]  # listed after every inpainting model
    assert lines[-1].split()[:2] == [":sa1b", "missing"]  # its published variant, beneath it
    assert "mobile_sam" not in [card.name for card in registry.list_cards()]
    rgb = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    selector = Selector(rgb)
    assert selector.method == "mobile_sam" and "imported" in selector.method_note
    result = selector.select(Prompt(points=((30, 20, True),)))
    assert result.method == "mobile_sam" and result.mask.shape == (40, 60)


def test_mobile_sam_is_not_an_inpainting_engine(tmp_path, capsys) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(tmp_path / "mask.png")
    argv = ["inpaint", str(tmp_path / "photo.png"), str(tmp_path / "mask.png"), "-m", "mobile_sam", "-o",
            str(tmp_path / "out.png")]
    assert main(argv) == 2
    assert "mobile_sam selects objects and does not inpaint: use `inpaintstudio select`" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_mobile_sam_without_weights_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(WeightsMissingError, match="weights fetch mobile_sam"):
        Selector(np.zeros((8, 8, 3), np.uint8), method="mobile_sam")


# ------------------------------------------------------------------------------------------------ Selector
def test_encoder_runs_once_for_many_prompts(net, tensors, prompt) -> None:
    calls = []
    hook = net.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        selector = Selector(tensors["inputs"]["raw_image"].numpy(), network=net)
        for each in (prompt, Prompt(box=prompt.box), Prompt(points=prompt.points[:1]), prompt):
            assert selector.select(each).mask.shape == (320, 480)
    finally:
        hook.remove()
    assert len(calls) == 1 and selector.embed_count == 1 and selector.method == "mobile_sam"


def test_the_mask_with_the_best_predicted_iou_is_kept(net, tensors, prompt) -> None:
    selector = Selector(tensors["inputs"]["raw_image"].numpy(), network=net)
    result = selector.select(prompt)
    outputs = tensors["outputs"]
    best = int(outputs["points_box.multi.iou_predictions"][0].argmax())
    expected = (outputs["points_box.multi.masks_logits"][0, best] > 0).numpy()
    assert np.mean(result.mask == expected) > 0.9999
    assert f"predicted IoU {float(outputs['points_box.multi.iou_predictions'][0, best]):.2f}" in result.note


def test_prompt_coordinates_reach_the_decoder_scaled(net, tensors, prompt) -> None:
    selector = Selector(tensors["inputs"]["raw_image"].numpy(), network=net)
    points, box = selector._predictor._prompt_tensors(prompt)
    inputs = tensors["inputs"]
    assert torch.allclose(points[0][0], inputs["point_coords_resized"], atol=1e-4)
    assert torch.equal(points[1][0], inputs["point_labels"])
    assert torch.allclose(box, inputs["box_resized"], atol=1e-4)


def test_folded_batchnorm_and_fused_attention_compute_the_same(tensors) -> None:
    torch.manual_seed(0)
    block = ms.ConvBN(4, 6, 3, 1, 1)
    block.bn.running_mean.normal_()
    block.bn.running_var.uniform_(0.5, 2.0)
    block.bn.weight.data.normal_()
    block.eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        reference = block.bn(block.c(x))
        assert torch.allclose(block(x), reference, atol=1e-5)
        assert torch.allclose(block(x.contiguous(memory_format=torch.channels_last)), reference, atol=1e-5)
        block.bn.bias.add_(1.0)
        block.load_state_dict(block.state_dict())  # a load brings the new values in
        assert torch.allclose(block(x), block.bn(block.c(x)), atol=1e-5)
    attn = ms.TinyViTAttention(8, 2, 3).eval()
    tokens = torch.randn(3, 9, 8)
    with torch.no_grad():
        attn.attention_biases.normal_()
        attn.refresh_bias_cache()
        spelled_out = attn(tokens)
        attn.use_sdpa = True
        assert torch.allclose(attn(tokens), spelled_out, atol=1e-6)


def test_two_selectors_share_one_network_across_threads(net, tensors, prompt) -> None:
    from concurrent.futures import ThreadPoolExecutor

    raw = tensors["inputs"]["raw_image"].numpy()
    selectors = [Selector(raw, network=net), Selector(raw[::-1].copy(), network=net)]
    with ThreadPoolExecutor(2) as pool:
        masks = list(pool.map(lambda sel: sel.select(prompt).mask, selectors * 2))
    assert np.array_equal(masks[0], masks[2]) and np.array_equal(masks[1], masks[3])
    assert [sel.embed_count for sel in selectors] == [1, 1]
