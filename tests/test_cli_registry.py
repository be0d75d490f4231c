"""Registry messages and the command line, end to end on a real photo."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from inpaintstudio import registry, weights
from inpaintstudio.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_WEIGHTS_MISSING, main
from inpaintstudio.core import loading

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inpaintstudio", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def photo_and_mask(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    image = data.chelsea()  # 300×451 real photo, public domain
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[120:170, 200:260] = 255
    image_path, mask_path = tmp_path / "cat.jpg", tmp_path / "cat_mask.png"
    Image.fromarray(image).save(image_path, quality=95)
    Image.fromarray(mask).save(mask_path)
    decoded = np.asarray(Image.open(image_path).convert("RGB"))
    return image_path, mask_path, decoded, mask > 127


def test_every_card_is_consistent() -> None:
    names = [card.name for card in registry.list_cards()]
    assert names[:3] == ["patchmatch", "opencv_telea", "opencv_ns"]
    assert len(names) == len(set(names))
    assert registry.DEFAULT_MODEL == "patchmatch" and registry.get_card("patchmatch").kind == "classical"
    for card in registry.list_cards():
        module = loading.model_module(card)
        assert module.__name__ == card.module, card.name
        if card.kind == "classical":
            assert callable(module.make_engine), card.name
            continue
        assert card.weights and card.weights[0].filename.endswith(".safetensors"), card.name
        assert card.input.pad_multiple >= 1 and card.working_size > 0
        for function in ("build", "predict", "remap_official_state_dict", "config_from_fixture", "parity_forward"):
            assert callable(getattr(module, function)), f"{card.module} lacks {function}"
        # the torch-free card repeats what the network requires; the two must agree
        if hasattr(module, "SIZE_MULTIPLE"):
            assert card.input.pad_multiple == module.SIZE_MULTIPLE, card.name
        config = loading.card_config(card)
        if hasattr(config, "pad_multiple"):
            assert card.input.pad_multiple == config.pad_multiple, card.name
        if hasattr(config, "input_size"):
            assert card.working_size == config.input_size, card.name


def test_cards_are_found_from_the_card_files_without_importing_torch() -> None:
    code = (
        "import sys\n"
        "from inpaintstudio import registry\n"
        "from inpaintstudio.cli import main\n"
        "names = [card.name for card in registry.list_cards()]\n"
        "assert main(['models']) == 0\n"
        "try:\n"
        "    main(['inpaint', 'only-one-argument'])\n"
        "except SystemExit as stop:\n"
        "    assert stop.code == 2\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.endswith('.network') or '.layers' in m)\n"
        "print(','.join(names)); print('loaded:', loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "loaded: []"
    listed = [name for name in lines[-2].split(",") if ":" not in name]  # variants follow their model
    assert listed == [card.name for card in registry.builtin_cards() if card.task == "inpaint"]
    for folder in registry.model_folders():
        module = importlib.import_module(f"inpaintstudio.models.{folder}.card")
        assert module.CARDS and all(card in registry.builtin_cards() for card in module.CARDS), folder


def test_cli_runs_from_any_folder(tmp_path: Path) -> None:
    """Outside the checkout, with the package on the path only: no command may rely on the working folder."""
    env = {key: value for key, value in os.environ.items() if key != "INPAINTSTUDIO_WEIGHTS"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "inpaintstudio", "models"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()]
    assert "patchmatch" in names and "sem_net" in names
    assert list(tmp_path.iterdir()) == []  # listing writes nothing into the working folder


def test_a_registered_card_wins_and_unregistering_restores_the_builtin() -> None:
    builtin = registry.get_card("hint")
    replacement = registry.register(dataclasses.replace(builtin, title="a test stand-in"))
    try:
        assert registry.get_card("hint") is replacement
        assert registry.resolve("hint") is replacement and registry.resolve(builtin) is builtin
        assert [card.name for card in registry.list_cards()].count("hint") == 1
    finally:
        registry.unregister("hint")
    assert registry.get_card("hint") is builtin


def test_unknown_model_message_lists_known_models() -> None:
    with pytest.raises(registry.UnknownModelError) as info:
        registry.get_card("deepfill_v9")
    assert "unknown model 'deepfill_v9'" in str(info.value) and "patchmatch" in str(info.value)


def test_missing_weights_message_names_file_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(tmp_path / "w"))
    deep = [card for card in registry.list_cards() if card.kind == "deep"]
    assert deep, "at least one deep model is registered"
    for card in deep:
        status = loading.weight_status(card)
        assert status["state"] == "missing"
        with pytest.raises(registry.WeightsMissingError) as info:
            loading.load(card.name)
        message = str(info.value)
        assert f"Expected file: {card.weights[0].filename}" in message
        assert f"In folder:     {tmp_path / 'w'}" in message
        assert "classical engines" in message


def test_weight_status_verifies_sha256(tmp_path: Path) -> None:
    card = registry.get_card("hint")
    payload = tmp_path / "hint.safetensors"
    payload.write_bytes(b"not really weights")
    digest = weights.sha256_file(payload)
    good = dataclasses.replace(card, weights_path=payload,
                               weights=(dataclasses.replace(card.weights[0], sha256=digest),))
    assert loading.weight_status(good)["state"] == "verified"
    bad = dataclasses.replace(good, weights=(dataclasses.replace(card.weights[0], sha256="0" * 64),))
    assert loading.weight_status(bad)["state"] == "corrupt"
    assert loading.weight_status(dataclasses.replace(card, weights_path=payload))["state"] == "present"
    assert loading.weight_status("patchmatch")["state"] == "builtin"


def test_cli_inpaint_end_to_end(photo_and_mask, tmp_path: Path) -> None:
    image_path, mask_path, image, hole = photo_and_mask
    out = tmp_path / "out.png"
    proc = run_cli("inpaint", str(image_path), str(mask_path), "-m", "patchmatch", "-o", str(out))
    assert proc.returncode == EXIT_OK, proc.stderr
    result = np.asarray(Image.open(out))
    assert result.shape == image.shape
    assert np.array_equal(result[~hole], image[~hole])
    assert not np.array_equal(result[hole], image[hole])
    assert Image.open(out).info["inpaintstudio:model"] == "patchmatch"
    assert f"-> {out}" in proc.stdout


def test_cli_inpaint_folders(photo_and_mask, tmp_path: Path) -> None:
    image_path, mask_path, image, hole = photo_and_mask
    images, masks, outs = tmp_path / "images", tmp_path / "masks", tmp_path / "outs"
    images.mkdir(), masks.mkdir()
    for stem in ("a", "b"):
        (images / f"{stem}.jpg").write_bytes(image_path.read_bytes())
        (masks / f"{stem}.png").write_bytes(mask_path.read_bytes())
    assert main(["inpaint", str(images), str(masks), "-m", "opencv_telea", "-o", str(outs)]) == EXIT_OK
    assert sorted(p.name for p in outs.iterdir()) == ["a.png", "b.png"]
    # one mask for every image
    outs2 = tmp_path / "outs2"
    assert main(["inpaint", str(images), str(mask_path), "-m", "opencv_ns", "-o", str(outs2)]) == EXIT_OK
    assert np.array_equal(np.asarray(Image.open(outs2 / "a.png"))[~hole], image[~hole])


def test_cli_errors_have_stable_codes(photo_and_mask, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    image_path, _, _, _ = photo_and_mask
    small_mask = tmp_path / "small.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(small_mask)
    out = str(tmp_path / "o.png")
    assert main(["inpaint", str(image_path), str(small_mask), "-o", out]) == EXIT_BAD_INPUT
    assert "10×10" in capsys.readouterr().err
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["inpaint", str(corrupt), str(small_mask), "-o", out]) == EXIT_BAD_INPUT
    assert "broken.png" in capsys.readouterr().err
    assert main(["inpaint", str(image_path), str(small_mask), "-m", "deepfill_v9", "-o", out]) == EXIT_BAD_INPUT
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(tmp_path / "none"))
    mask = tmp_path / "m.png"
    Image.fromarray(np.pad(np.full((10, 10), 255, np.uint8), ((0, 290), (0, 441)))).save(mask)
    assert main(["inpaint", str(image_path), str(mask), "-m", "hint", "-o", out]) == EXIT_WEIGHTS_MISSING
    err = capsys.readouterr().err
    assert "hint.safetensors" in err and str(tmp_path / "none") in err
    assert not Path(out).exists()


def test_cli_compare_and_models(photo_and_mask, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    image_path, mask_path, image, _ = photo_and_mask
    empty = tmp_path / "no-weights"
    empty.mkdir()
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(empty))
    grid = tmp_path / "grid.png"
    code = main(["compare", str(image_path), str(mask_path), "-m", "patchmatch", "-m", "opencv_telea",
                 "-o", str(grid)])
    assert code == EXIT_OK
    panels = np.asarray(Image.open(grid))
    assert panels.shape[0] > image.shape[0] and panels.shape[1] > 3 * image.shape[1]
    assert main(["models"]) == EXIT_OK
    table = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:] if line.strip()}
    assert rows["patchmatch"][1:3] == ["classical", "builtin"]
    assert rows["hint"][1:3] == ["deep", "missing"] and str(empty / "hint.safetensors") in table


def test_the_weights_manifest_is_generated_from_the_model_folders() -> None:
    """weights/manifest.json is the output of `weights manifest`, never edited by hand."""
    proc = subprocess.run([sys.executable, "-m", "inpaintstudio", "weights", "manifest"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    on_disk = (REPO / "weights" / "manifest.json").read_text()
    assert json.loads(proc.stdout) == json.loads(on_disk), (
        "weights/manifest.json is stale: python -m inpaintstudio weights manifest > weights/manifest.json")
