"""Variants as first-class models, the ``weights fetch`` command, and trained checkpoints that load again.

Everything runs through the command line a user types (``python -m inpaintstudio …`` in-process).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from skimage import data as skdata

from inpaintstudio import registry
from inpaintstudio.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_WEIGHTS_MISSING, main
from inpaintstudio.core import loading
from inpaintstudio.weights import fetch
from tests.conftest import parity_dir

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def weights_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(folder))
    monkeypatch.delenv(fetch.OFFLINE_ENV, raising=False)
    return folder


@pytest.fixture
def photo_and_mask(tmp_path: Path) -> tuple[Path, Path]:
    image = skdata.chelsea()[100:164, 180:276]  # 64×96 crop of a real photo
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[20:44, 30:70] = 255
    Image.fromarray(image).save(tmp_path / "cat.png")
    Image.fromarray(mask).save(tmp_path / "cat_mask.png")
    return tmp_path / "cat.png", tmp_path / "cat_mask.png"


def test_every_published_variant_is_a_card_that_says_what_it_is_for() -> None:
    names = [card.name for card in registry.list_cards()]
    for source in registry.published_sources():
        if source.model not in names:  # a model whose network is not in this tree yet (e.g. LaMa)
            continue
        card = registry.get_card(source.name)
        assert card.name in names and card.family == registry.get_card(source.model).family
        assert card.weights[0].filename == f"{source.model}.{source.variant}.safetensors"
        assert source.dataset in card.title and f"for {source.purpose}" in card.notes
    assert names.index("sem_net:places2") == names.index("sem_net") + 1
    assert "scenes and object removal" in registry.get_card("sem_net:places2").notes
    assert "faces" in registry.get_card("hint:celebahq").notes
    assert "murals" in registry.get_card("hint:dunhuang").notes
    with pytest.raises(registry.UnknownModelError, match="sem_net has no variant 'ffhq'; its variants: places2, "
                                                         "celebahq"):
        registry.get_card("sem_net:ffhq")


def models_rows(out: str) -> dict[str, str]:
    """``{"model" or "model:variant": weights column}`` from ``models``: variants sit beneath their model."""
    rows, model = {}, ""
    for line in out.splitlines()[1:]:
        if line.startswith("  :"):
            variant, state = line.split()[:2]
            rows[model + variant] = state
        else:
            model = line.split()[0]
            rows[model] = line[line.index(line.split()[2], len(model) + 2):].split("  ")[0]
    return rows


def test_models_lists_every_variant_with_status(weights_folder, capsys) -> None:
    assert main(["models"]) == EXIT_OK
    out = capsys.readouterr().out
    rows = models_rows(out)
    for name in ("sem_net:places2", "sem_net:celebahq", "mxt:places2", "hint:dunhuang", "inclg:celeba",
                 "tsgl:psv", "tsgl_512:places2"):
        assert rows[name] == "missing", name
    assert rows["patchmatch"] == "builtin" and rows["hint"] == "missing"
    assert sum(line.startswith("hint") for line in out.splitlines()) == 1  # one row per model
    lines = out.splitlines()
    assert lines[lines.index(next(line for line in lines if line.startswith("hint "))) + 1].startswith("  :places2")


def test_a_bare_name_resolves_to_the_installed_variant(weights_folder) -> None:
    weights_folder.mkdir()
    assert loading.resolve_model("hint").card.name == "hint" and not loading.resolve_model("hint").runnable
    (weights_folder / "hint.celeba.safetensors").write_bytes(b"an installed variant")
    resolved = loading.resolve_model("hint")
    assert resolved.card.name == "hint:celeba" and resolved.runnable and resolved.variant == "celeba"
    assert resolved.note == "hint runs as hint:celeba (its installed variant)"
    assert loading.weight_status("hint")["state"] == "present"
    (weights_folder / "hint.safetensors").write_bytes(b"the user's own import")
    assert loading.resolve_model("hint").card.name == "hint"  # the model's own file before a non-default variant
    (weights_folder / "hint.places2.safetensors").write_bytes(b"the default variant")
    resolved = loading.resolve_model("hint")
    assert resolved.card.name == "hint:places2"
    assert resolved.note == "hint runs as hint:places2 (the default variant; also installed: hint:celeba, hint)"
    assert loading.resolve_model("hint:celeba").card.name == "hint:celeba"  # a variant named is that variant
    assert loading.resolve_model(registry.get_card("hint")).card.name == "hint"  # a card is taken as it is


def test_missing_variant_says_how_to_fetch_it(weights_folder, photo_and_mask, tmp_path, capsys) -> None:
    image, mask = photo_and_mask
    assert main(["inpaint", str(image), str(mask), "-m", "sem_net:places2", "-o", str(tmp_path / "o.png")]) \
        == EXIT_WEIGHTS_MISSING
    err = capsys.readouterr().err
    assert "Expected file: sem_net.places2.safetensors" in err
    assert "Fetch them (Places2, for scenes and object removal) with: python -m inpaintstudio weights fetch " \
           "sem_net --variant places2" in err


def test_fetch_command_offline_and_unfetchable(weights_folder, capsys) -> None:
    assert main(["weights", "fetch", "sem_net", "--variant", "places2", "--offline"]) == EXIT_WEIGHTS_MISSING
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "https://drive.google.com/drive/folders/1sgJRu-Vf6u6taZY-RpY8cFXRAH09i4fu" in err
    assert main(["weights", "fetch", "tsgl:celeba"]) == EXIT_WEIGHTS_MISSING
    assert "pan.baidu.com" in capsys.readouterr().err
    assert main(["weights", "fetch", "hint", "--variant", "ffhq"]) == EXIT_BAD_INPUT
    assert "its variants: places2, celebahq, celeba, dunhuang" in capsys.readouterr().err


@pytest.fixture
def fake_inclg_variant(weights_folder, tmp_path, monkeypatch):
    """The fixture-sized INCLG registered as a model whose ``celeba`` variant sits on a fake Google Drive
    folder (the published folder id) as the authors' ``InpaintingModel_gen.pth``."""
    from safetensors.torch import load_file

    from inpaintstudio.models.inclg import network as inclg

    config = inclg.config_from_fixture(json.loads((parity_dir("inclg") / "config.json").read_text()))
    base = registry.register(dataclasses.replace(registry.get_card("inclg"), name="test_variant_inclg", config=config))
    source = registry.register_source(
        dataclasses.replace(registry.get_source("inclg:celeba"), model=base.name))
    official = tmp_path / "official.pth"
    torch.save({"iteration": 9, "generator": load_file(str(parity_dir("inclg") / "weights.safetensors"))}, official)

    class Drive:
        def list_folder(self, folder_id, timeout):
            assert folder_id == "1H9FZ-jJUkYBDcNASX8kBnmipgGgv_y7t"
            return [fetch.RemoteFile("gen", "InpaintingModel_gen.pth"),
                    fetch.RemoteFile("dis", "InpaintingModel_dis.pth")]

        def download(self, file_id, destination, progress, timeout):
            assert file_id == "gen"
            data = official.read_bytes()
            destination.write_bytes(data)
            progress(len(data), len(data))

    monkeypatch.setattr(fetch, "DRIVE", Drive())
    yield source
    registry.unregister(base.name)
    registry.unregister_source(source.name)


def test_fetched_variant_is_listed_as_ready_and_runs(fake_inclg_variant, photo_and_mask, tmp_path, capsys) -> None:
    source = fake_inclg_variant
    assert main(["weights", "fetch", source.model, "--variant", "celeba"]) == EXIT_OK
    captured = capsys.readouterr()
    assert "InpaintingModel_dis.pth" in captured.err and source.name in captured.out
    assert main(["models"]) == EXIT_OK
    rows = models_rows(capsys.readouterr().out)
    assert rows[source.name] == "verified"
    assert rows[source.model] == f"verified (runs {source.name})"
    image, mask = photo_and_mask
    out = tmp_path / "out.png"
    assert main(["inpaint", str(image), str(mask), "-m", source.name, "-o", str(out)]) == EXIT_OK
    before, after = np.asarray(Image.open(image)), np.asarray(Image.open(out))
    hole = np.asarray(Image.open(mask)) > 127
    assert np.array_equal(before[~hole], after[~hole]) and (before[hole] != after[hole]).any()
    bare = tmp_path / "bare.png"  # the bare name runs the installed variant, and says so
    assert main(["inpaint", str(image), str(mask), "-m", source.model, "-o", str(bare)]) == EXIT_OK
    assert f"{source.model} runs as {source.name} (the default variant)" in capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(bare)), after)
    scored = tmp_path / "eval"  # eval resolves the same way
    scored.mkdir()
    Image.open(image).save(scored / "cat.png")
    assert main(["eval", "--model", source.model, "--images", str(scored), "--mask-ratio", "0-20", "--no-lpips",
                 "--no-fid", "--json", str(tmp_path / "e.json")]) == EXIT_OK
    assert json.loads((tmp_path / "e.json").read_text())["model"] == source.name
    assert main(["weights", "fetch", source.name]) == EXIT_OK
    assert "matches the lock" in capsys.readouterr().out


def test_models_tab_download_reports_progress_and_lists_the_variant_ready(fake_inclg_variant) -> None:
    from inpaintstudio.ui.session import model_choices
    from inpaintstudio.ui.tabs import models as models_tab

    source = fake_inclg_variant
    seen: list[tuple[float, str]] = []
    report = models_tab.fetch_variant(source.name, lambda fraction, desc: seen.append((fraction, desc)))
    assert report.startswith(f"{source.name}: InpaintingModel_gen.pth -> ") and "InpaintingModel_dis.pth" in report
    assert seen and seen[-1][0] == 1.0 and seen[-1][1].startswith(f"{source.name}: ")
    row = next(line for line in models_tab.models_markdown().splitlines() if f"`{source.name}`" in line)
    assert "verified (sha256)" in row and "CelebA" in row
    assert (f"{source.name} (weights verified)", source.name) in model_choices()


def test_edit_tab_inline_download_moves_the_model_into_the_run_list(fake_inclg_variant) -> None:
    from inpaintstudio.ui import choices
    from inpaintstudio.ui.tabs import models as models_tab

    source = fake_inclg_variant
    waiting = {group.name: group for group in choices.model_groups() if not group.can_run}
    assert source.name in waiting[source.model].fetchable  # under "More models (need weights)", downloadable
    seen: list[float] = []
    out = models_tab.download_inline(source.name, lambda fraction, desc: seen.append(fraction))
    assert out.report.startswith(f"{source.name}: ") and seen[-1] == 1.0
    rows = dict((value, label) for label, value in out.models["choices"])
    assert rows[source.model] == f"{source.model} (runs {source.name})"  # one row per model, its variant runs
    assert choices.names_to_run([source.model], []) == [source.name]


# ----------------------------------------------------------------------------- trained checkpoints
@pytest.fixture(scope="module")
def trained_hint(tmp_path_factory) -> Path:
    """A HINT trained for one step with the fixture's small model_config, exported by the trainer."""
    from inpaintstudio.training.backbones import VGGFeatures
    from inpaintstudio.training.trainer import TrainConfig, Trainer

    folder = tmp_path_factory.mktemp("train")
    for name in ("astronaut", "coffee"):
        Image.fromarray(getattr(skdata, name)()).save(folder / f"{name}.png")
    module = importlib.import_module("inpaintstudio.models.hint.network")
    small = asdict(module.config_from_fixture(json.loads((parity_dir("hint") / "config.json").read_text())))
    config = TrainConfig.from_dict({
        "model": "hint", "model_config": small, "iterations": 1, "seed": 3,
        "data": {"images": str(folder), "size": 32, "batch_size": 1}, "disc_width": 8,
        "output_dir": str(folder / "run"), "progress": False, "log_every": 0, "sample_every": 0,
        "checkpoint_every": 0,
    })
    trainer = Trainer(config, vgg=VGGFeatures(19))
    trainer.train()
    return trainer.export()


def test_trained_checkpoint_runs_with_weights_option(trained_hint, weights_folder, photo_and_mask, tmp_path,
                                                     capsys) -> None:
    with safe_open(str(trained_hint), framework="pt") as handle:
        assert json.loads(handle.metadata()["config"])["dim"] < 48  # smaller than the released HINT
    image, mask = photo_and_mask
    out = tmp_path / "trained.png"
    assert main(["inpaint", str(image), str(mask), "-m", "hint", "--weights", str(trained_hint), "-o", str(out)]) \
        == EXIT_OK
    assert out.is_file()
    grid = tmp_path / "grid.png"
    assert main(["compare", str(image), str(mask), "-m", "patchmatch", "-m", "hint", "--weights", str(trained_hint),
                 "-o", str(grid)]) == EXIT_OK
    assert "hint:" in capsys.readouterr().out


def test_trained_checkpoint_imported_as_a_variant(trained_hint, weights_folder, photo_and_mask, tmp_path,
                                                  capsys) -> None:
    assert main(["weights", "import", "--model", "hint", "--variant", "mydata", str(trained_hint)]) == EXIT_OK
    capsys.readouterr()
    written = weights_folder / "hint.mydata.safetensors"
    assert fetch.lock_entry("hint:mydata")["original_file"] == trained_hint.name
    assert loading.weight_status("hint:mydata")["state"] == "verified"
    assert main(["models"]) == EXIT_OK
    assert models_rows(capsys.readouterr().out)["hint:mydata"] == "verified"
    image, mask = photo_and_mask
    assert main(["inpaint", str(image), str(mask), "-m", "hint:mydata", "-o", str(tmp_path / "o.png")]) == EXIT_OK
    assert written.is_file()


def test_clinic_defaults_to_inclg_celeba(weights_folder) -> None:
    from inpaintstudio.face import clinic

    assert clinic.default_model() == "inclg:celeba"
    weights_folder.mkdir()
    (weights_folder / "inclg.safetensors").write_bytes(b"a plain import of INCLG")
    assert clinic.default_model() == "inclg"  # only a plain import here: use it rather than nothing
    (weights_folder / "inclg.celeba.safetensors").write_bytes(b"the fetched variant")
    assert clinic.default_model() == "inclg:celeba"
