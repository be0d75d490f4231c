"""What every model folder must satisfy, parametrised over the folders the registry discovers (no list here).

Each model's own test file keeps only what is particular to it. A model is one folder: the last test drops a
throwaway folder into ``inpaintstudio/models`` and finds it listed, runnable, fetchable and importable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import inpaintstudio.models
from inpaintstudio import registry, weights
from inpaintstudio.core import loading, pipeline
from inpaintstudio.modelcard import contract_gaps
from tests.conftest import FIXTURES, REPO

DEEP = [card for card in registry.builtin_cards() if card.needs_weights]
WITH_FIXTURE = [card for card in DEEP if (FIXTURES / card.name / "config.json").is_file()]


def _ids(cards: list[registry.ModelCard]) -> list[str]:
    return [card.name for card in cards]


def test_every_model_folder_is_discovered_with_its_cards() -> None:
    folders = sorted(path.name for path in (REPO / "inpaintstudio" / "models").iterdir()
                     if (path / "card.py").is_file())
    assert registry.model_folders() == folders
    assert {card.module.split(".")[2] for card in DEEP} == set(folders)
    assert len(WITH_FIXTURE) >= 7  # every model with published code has a parity fixture


@pytest.mark.parametrize("card", registry.builtin_cards(), ids=_ids(list(registry.builtin_cards())))
def test_every_module_satisfies_the_model_contract(card: registry.ModelCard) -> None:
    module = loading.model_module(card)
    assert contract_gaps(module, card) == []
    if not card.needs_weights:
        return
    config = loading.card_config(card)
    if hasattr(config, "pad_multiple"):  # the torch-free card repeats what the network requires
        assert card.input.pad_multiple == config.pad_multiple
    if card.input.fixed_size:
        assert card.working_size == card.input.fixed_size
    sources = registry.all_variants(card.name)
    assert sources or card.name in registry.unpublished_notes(), "publish a SOURCES entry or an UNPUBLISHED note"
    assert all(source.model == card.name for source in sources)


@pytest.mark.parametrize("card", WITH_FIXTURE, ids=_ids(WITH_FIXTURE))
def test_fixture_weights_load_strictly_with_the_official_names(card: registry.ModelCard) -> None:
    folder = FIXTURES / card.name
    module = loading.model_module(card)
    net = module.build(module.config_from_fixture(json.loads((folder / "config.json").read_text())))
    state = load_file(str(folder / "weights.safetensors"))
    weights.load_strict(net, state, name=card.name)  # raises on any missing, unexpected or misshaped key
    assert set(net.state_dict()) >= set(state)


@pytest.mark.parametrize("card", [c for c in WITH_FIXTURE if (FIXTURES / c.name / "default_keys.json").is_file()],
                         ids=lambda card: card.name)
def test_the_released_configuration_has_the_authors_key_layout(card: registry.ModelCard) -> None:
    reference = json.loads((FIXTURES / card.name / "default_keys.json").read_text())
    if isinstance(reference["keys"], dict):  # {name: shape}, with n_keys / n_parameters (MobileSAM's fixture)
        reference = {"keys": [[key, shape] for key, shape in reference["keys"].items()],
                     "n_tensors": reference["n_keys"], "total_parameters": reference["n_parameters"]}
    module = loading.model_module(card)
    with torch.device("meta"):
        net = module.build(loading.card_config(card))
    state = net.state_dict()
    ours = [[key, list(value.shape)] + ([str(value.dtype).removeprefix("torch.")] if value.dtype != torch.float32
                                        else []) for key, value in state.items()]
    # entries carry a dtype only when it is not float32 (some fixtures record none at all)
    assert [entry[:len(theirs)] for entry, theirs in zip(ours, reference["keys"], strict=True)] == reference["keys"]
    assert len(state) == reference["n_tensors"]
    assert sum(p.numel() for p in net.parameters()) == reference["total_parameters"]


# ------------------------------------------------------------------------------------- a dropped-in model
@pytest.fixture
def throwaway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.test_fetch import Server

    server = Server()
    root = tmp_path / "extra_models"
    shutil.copytree(REPO / "tests" / "throwaway" / "throwaway_net", root / "throwaway_net")
    monkeypatch.setenv("THROWAWAY_URL", f"{server.url}/net.pth")
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(inpaintstudio.models, "__path__", [*inpaintstudio.models.__path__, str(root)])
    registry._catalogue.cache_clear()
    yield server, tmp_path
    registry._catalogue.cache_clear()
    pipeline.forget_engines("throwaway_net")
    server.close()
    import sys

    for name in [m for m in sys.modules if m.startswith("inpaintstudio.models.throwaway_net")]:
        del sys.modules[name]


def test_a_dropped_in_model_folder_is_a_model_everywhere(throwaway, capsys) -> None:
    from inpaintstudio.cli import main

    server, tmp_path = throwaway
    assert "throwaway_net" in registry.model_folders()
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    assert "throwaway_net " in listed and "  :demo " in listed

    torch.manual_seed(0)
    net = loading.model_module("throwaway_net").build()
    official = tmp_path / "net.pth"
    torch.save({f"generator.{key}": value for key, value in net.state_dict().items()}, official)
    server.files["/net.pth"] = official.read_bytes()
    assert main(["weights", "fetch", "throwaway_net", "--variant", "demo"]) == 0  # fetched, converted, locked
    assert loading.weight_status("throwaway_net:demo")["state"] == "verified"
    assert main(["weights", "import", "--model", "throwaway_net", str(official)]) == 0  # the plain import
    assert loading.weight_status("throwaway_net")["state"] in ("present", "verified")

    photo = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    mask = np.zeros((48, 40), np.uint8)
    mask[10:30, 8:24] = 255
    Image.fromarray(photo).save(tmp_path / "p.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert main(["inpaint", str(tmp_path / "p.png"), str(tmp_path / "m.png"), "-m", "throwaway_net:demo",
                 "-o", str(tmp_path / "out.png")]) == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    hole = mask > 0
    assert np.array_equal(out[~hole], photo[~hole]) and (out[hole] != photo[hole]).any()

    from inpaintstudio.ui.session import model_choices  # the studio's model list

    assert "throwaway_net" in [name for _, name in model_choices()]
