"""``eval``: the per-bin numbers equal a hand computation of evaluation.md's protocol; ``train`` via the CLI."""

from __future__ import annotations

import argparse
import csv
import importlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from skimage.metrics import structural_similarity

from inpaintstudio import registry, weights
from inpaintstudio.cli.train_eval import add_commands
from inpaintstudio.core.engines import EngineOutput
from inpaintstudio.training import data
from inpaintstudio.training.evaluate import evaluate_engine

REPO = Path(__file__).resolve().parent.parent


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(autouse=True)
def _offline_backbones(monkeypatch, tmp_path):
    """No VGG/Inception anywhere: LPIPS and FID must be skipped with a message."""
    monkeypatch.setenv("INPAINTSTUDIO_BACKBONES", str(tmp_path / "none"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path / "none"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skdata, name)()).save(folder / f"{name}.png")
    return folder


@pytest.fixture()
def mask_dir(tmp_path) -> Path:
    """Five 512² masks: two in 0–20 %, one in 20–40 %, two in 40–60 % (white = hole)."""
    folder = tmp_path / "masks"
    folder.mkdir()
    for i, (ratio_bin, seed) in enumerate((("0-20", 1), ("20-40", 2), ("40-60", 3), ("0-20", 4), ("40-60", 5))):
        hole = data.generate_mask(512, ratio_bin, seed)
        Image.fromarray((hole * 255).astype(np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def _tiny_hint_card(tmp_path: Path) -> tuple[registry.ModelCard, Path]:
    hint = importlib.import_module("inpaintstudio.models.hint.network")
    fixture = json.loads((REPO / "tests" / "fixtures" / "parity" / "hint" / "config.json").read_text())
    cfg = hint.config_from_fixture(fixture)
    torch.manual_seed(3)
    net = hint.build(cfg)
    path = tmp_path / "tiny_hint.safetensors"
    weights.save_safetensors(net.state_dict(), path)
    card = replace(registry.get_card("hint"), name="test_eval_hint", config=cfg)
    return card, path


SIDE = 96  # --size: HINT's own 256² would cost 24 forwards at 256² for the same check


def test_eval_numbers_equal_a_hand_computation(photos, mask_dir, tmp_path, capsys) -> None:
    card, weight_file = _tiny_hint_card(tmp_path)
    registry.register(card)
    try:
        code = _main(["eval", "--model", card.name, "--images", str(photos), "--masks", str(mask_dir),
                      "--weights", str(weight_file), "--json", str(tmp_path / "r.json"),
                      "--csv", str(tmp_path / "r.csv"), "--size", str(SIDE)])
    finally:
        registry.unregister(card.name)
    assert code == 0
    printed = capsys.readouterr()
    assert "PSNR↑" in printed.out and "20-40%" in printed.out
    assert "vgg16-397923af.pth" in printed.err and "pt_inception-2015-12-05-6726825d.pth" in printed.err
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["skipped"]) == {"LPIPS", "FID"}
    assert report["protocol"]["size"] == SIDE

    # by hand: sorted images, mask k mod N of each bin's sorted list, threshold 127 after a bicubic resize
    hint = importlib.import_module("inpaintstudio.models.hint.network")
    net = hint.build(card.config)
    net.load_state_dict(weights.read_checkpoint(weight_file)[0])
    net.eval()
    names = sorted(p.name for p in photos.iterdir())
    bins = {"0-20": ["00000.png", "00003.png"], "20-40": ["00001.png"], "40-60": ["00002.png", "00004.png"]}
    for ratio_bin, mask_names in bins.items():
        psnrs, ssims, l1s = [], [], []
        for k, name in enumerate(names):
            img = Image.open(photos / name).convert("RGB")
            side = min(img.size)
            left, top = (img.size[0] - side) // 2, (img.size[1] - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((SIDE, SIDE), Image.BICUBIC)
            gt = np.asarray(img, np.float32) / 255
            m = Image.open(mask_dir / mask_names[k % len(mask_names)]).convert("L").resize((SIDE, SIDE), Image.BICUBIC)
            hole = (np.asarray(m) > 127).astype(np.float32)
            x = torch.from_numpy(gt).permute(2, 0, 1)[None]
            h = torch.from_numpy(hole)[None, None]
            with torch.no_grad():
                out = hint.predict(net, x * (1 - h) + h, h)["image"][0].permute(1, 2, 0).numpy()
            comp = out.clip(0, 1) * hole[..., None] + gt * (1 - hole[..., None])
            a, b = (comp.clip(0, 1) * 255).astype(np.uint8), (gt * 255).astype(np.uint8)
            psnrs.append(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b) ** 2)))
            ssims.append(structural_similarity(b, a, channel_axis=-1, data_range=255))
            l1s.append(100 * np.abs(comp - gt).mean())
        got = report["bins"][ratio_bin]
        assert got["images"] == 4
        assert got["PSNR"] == pytest.approx(np.mean(psnrs), abs=1e-4)
        assert got["SSIM"] == pytest.approx(np.mean(ssims), abs=1e-6)
        assert got["L1"] == pytest.approx(np.mean(l1s), abs=1e-4)

    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(rows) == 3 * 5  # 4 images + 1 mean row per bin
    assert rows[1]["mask"] == "00003.png"  # image 1 → mask 1 mod 2 of 0-20


class _MeanFillEngine:
    """Fills holes with the mean colour of the known pixels and records the size of every call."""

    def __init__(self, card: registry.ModelCard) -> None:
        self.card, self.device, self.sizes = card, "cpu", []

    def run(self, image: np.ndarray, hole: np.ndarray) -> EngineOutput:
        self.sizes.append(hole.shape)
        return EngineOutput(image=np.where(hole[..., None], image[~hole].mean(0), image).astype(np.float32))


@pytest.mark.parametrize(("model", "side"), [("tsgl_512", 512), ("hint", 256), ("csfc", 256)])
def test_eval_fixed_size_models_at_their_size_others_at_256_when_the_images_differ(photos, tmp_path, model: str,
                                                                                     side: int) -> None:
    engine = _MeanFillEngine(registry.get_card(model))
    images = sorted(photos.iterdir())[:2]  # astronaut 512×512, chelsea 451×300: two sizes
    report = evaluate_engine(engine, images, ratio_bins=["20-40"], save_dir=tmp_path / "out")
    assert report.size == side and engine.sizes == [(side, side)] * 2
    assert ("fixed input size" in report.size_rule) == (model == "tsgl_512")
    assert ("differ in size" in report.size_rule) == (model != "tsgl_512")
    saved = sorted((tmp_path / "out" / "20-40").iterdir())
    assert len(saved) == 2 and Image.open(saved[0]).size == (side, side)
    assert 5 < report.bins[0].means()["PSNR"] < 40


def test_eval_scores_a_free_size_model_at_the_images_own_size(tmp_path) -> None:
    """Telea's working side is 3072: 256² test photos are filled and scored at 256², as with --size 256."""
    folder = tmp_path / "small"
    folder.mkdir()
    for name in ("astronaut", "rocket", "coffee"):
        Image.fromarray(getattr(skdata, name)()).resize((256, 256), Image.BICUBIC).save(folder / f"{name}.png")
    runs = {}
    for extra in ([], ["--size", "256"]):
        out = tmp_path / f"telea{len(extra)}.json"
        assert _main(["eval", "--model", "opencv_telea", "--images", str(folder), "--mask-ratio", "20-40",
                      "--no-lpips", "--no-fid", "--json", str(out), *extra]) == 0
        runs[len(extra)] = json.loads(out.read_text())
    own, forced = runs[0], runs[2]
    assert registry.get_card("opencv_telea").working_size > 256
    assert own["protocol"]["size"] == 256 and own["protocol"]["size_rule"] == "the images' own size (256×256)"
    assert own["scored_at"] == {"astronaut.png": 256, "coffee.png": 256, "rocket.png": 256}
    assert own["bins"] == forced["bins"] and forced["protocol"]["size_rule"] == "--size 256"


def test_eval_generated_masks_and_bad_input(photos, tmp_path) -> None:
    # Telea at 128² (a 40–60 % hole at 256² takes seconds per image); the command is the same
    out = tmp_path / "telea.json"
    assert _main(["eval", "--model", "opencv_telea", "--images", str(photos), "--mask-ratio", "40-60",
                  "--limit", "2", "--size", "128", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    result = report["bins"]
    assert list(result) == ["40-60"] and result["40-60"]["images"] == 2 and 15 < result["40-60"]["PSNR"] < 40
    assert report["protocol"]["size"] == 128 and set(report["scored_at"].values()) == {128}
    assert _main(["eval", "--model", "opencv_telea", "--images", str(photos), "--mask-ratio", "10-30"]) == 2
    assert _main(["eval", "--model", "no_such_model", "--images", str(photos), "--mask-ratio", "all"]) == 2


def test_train_command_then_eval_the_export(photos, mask_dir, tmp_path) -> None:
    """``train --config`` (YAML) writes checkpoint + export; a second call resumes; ``eval --weights`` reads it."""
    hint = importlib.import_module("inpaintstudio.models.hint.network")
    fixture = json.loads((REPO / "tests" / "fixtures" / "parity" / "hint" / "config.json").read_text())
    model_config = asdict(hint.config_from_fixture(fixture))
    config = {
        "model": "hint", "model_config": model_config, "iterations": 2, "output_dir": str(tmp_path / "run"),
        "loss": {"perceptual": 0, "style": 0}, "disc_width": 8, "progress": False, "log_every": 1,
        "data": {"images": str(photos), "size": 32, "batch_size": 2, "masks": str(mask_dir)},
    }
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert _main(["train", "--config", str(tmp_path / "c.yaml")]) == 0
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    assert _main(["train", "--config", str(tmp_path / "c.yaml"), "--iterations", "3"]) == 0
    log = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [r["iteration"] for r in log] == ["1", "2", "3"]  # resumed at 2, not restarted
    export = tmp_path / "run" / "hint.safetensors"

    card = replace(registry.get_card("hint"), name="test_train_hint", config=hint.Config(**{
        k: tuple(v) if isinstance(v, list) else v for k, v in model_config.items()}))
    registry.register(card)
    try:
        assert _main(["eval", "--model", card.name, "--images", str(photos), "--mask-ratio", "0-20", "--limit", "2",
                      "--weights", str(export), "--no-lpips", "--no-fid"]) == 0
    finally:
        registry.unregister(card.name)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**config, "lr": 1}))
    assert _main(["train", "--config", str(tmp_path / "bad.yaml")]) == 2


def test_eval_size_outside_the_range_or_unlike_a_fixed_input_is_refused() -> None:
    from inpaintstudio.training.evaluate import scoring_side

    fixed = registry.get_card("inclg")
    assert fixed.input.fixed_size
    assert scoring_side(fixed).side == scoring_side(fixed, fixed.input.fixed_size).side == fixed.input.fixed_size
    with pytest.raises(ValueError, match=f"takes only {fixed.input.fixed_size}"):
        scoring_side(fixed, fixed.input.fixed_size * 2)
    free = registry.get_card("opencv_telea")
    assert scoring_side(free, 256).side == 256 and scoring_side(free).side == 256
    for side in (0, 8, 5000):
        with pytest.raises(ValueError, match="from 16 to 4096"):
            scoring_side(free, side)
