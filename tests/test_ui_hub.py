"""Weights from the Hugging Face Hub at a pinned revision, tested offline against a local folder laid out
like the Hub cache (``HF_HOME/hub/models--ORG--NAME/snapshots/COMMIT/FILE``, ``HF_HUB_OFFLINE=1``).

huggingface_hub reads ``HF_HOME`` and ``HF_HUB_OFFLINE`` when it is imported, so each case runs in a
fresh interpreter with that environment. Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_REPO = "inpaintstudio-test/weights"


def _fake_hub_cache(home: Path, files: dict[str, bytes]) -> None:
    model = home / "hub" / f"models--{HUB_REPO.replace('/', '--')}"
    snapshot = model / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    (model / "refs").mkdir()
    (model / "refs" / "main").write_text(COMMIT)


def _run(tmp_path: Path, code: str, **env: str) -> dict:
    environment = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "INPAINTSTUDIO_WEIGHTS": str(tmp_path / "weights"),
        "INPAINTSTUDIO_HF_REPO": HUB_REPO,
        "INPAINTSTUDIO_HF_REVISION": COMMIT,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": str(REPO),
        **env,
    }
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


SCENARIOS = """
import json, os
from dataclasses import replace
from inpaintstudio import registry, weights
from inpaintstudio.core import loading
from inpaintstudio.ui.tabs.models import fetch_hub_weights

def attempt(card="mxt", **kwargs):
    try:
        path = weights.hub_download(registry.resolve(card), **kwargs)
        return {"path": str(path), "bytes": path.read_bytes().decode(), "state": loading.weight_status("mxt")["state"]}
    except weights.WeightsError as error:
        return {"error": str(error)}

out = {}
os.environ["INPAINTSTUDIO_HF_REVISION"] = ""
out["unpinned"] = attempt()
out["unknown_revision"] = attempt(revision="f" * 40)
out["unknown_left_nothing"] = os.path.exists(os.path.join(os.environ["INPAINTSTUDIO_WEIGHTS"], "mxt.safetensors"))
card = registry.get_card("mxt")
out["tampered"] = attempt(replace(card, weights=(replace(card.weights[0], filename="tampered.safetensors",
                                                          sha256="0" * 64),)), revision=COMMIT)
os.environ["INPAINTSTUDIO_HF_REVISION"] = COMMIT
out["pinned"] = attempt()
os.remove(out["pinned"]["path"])
out["startup"] = fetch_hub_weights()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Every scenario in one fresh interpreter (imports are slow), against one fake cache."""
    tmp_path = tmp_path_factory.mktemp("hub")
    _fake_hub_cache(tmp_path / "hf", {"mxt.safetensors": b"weights at a pinned commit", "tampered.safetensors": b"t"})
    return tmp_path, _run(tmp_path, f"COMMIT = {COMMIT!r}\n" + SCENARIOS)


def test_hub_download_from_local_cache_at_pinned_revision(hub: tuple[Path, dict]) -> None:
    tmp_path, out = hub
    assert out["pinned"]["path"] == str(tmp_path / "weights" / "mxt.safetensors")
    assert out["pinned"]["bytes"] == "weights at a pinned commit"
    assert out["pinned"]["state"] == "present"


def test_hub_download_needs_a_pinned_revision_and_an_existing_one(hub: tuple[Path, dict]) -> None:
    _, out = hub
    assert out["unpinned"]["error"] == f"pin the revision of {HUB_REPO}: set INPAINTSTUDIO_HF_REVISION to a commit hash"
    assert out["unknown_revision"]["error"].startswith(f"could not fetch mxt.safetensors from {HUB_REPO}@{'f' * 40}")
    assert out["unknown_left_nothing"] is False


def test_hub_download_refuses_a_file_whose_digest_differs_from_the_card(hub: tuple[Path, dict]) -> None:
    tmp_path, out = hub
    assert "the card expects " + "0" * 64 in out["tampered"]["error"]
    assert not (tmp_path / "weights" / "tampered.safetensors").exists()


def test_studio_start_up_fetches_missing_checkpoints_from_the_named_repository(hub: tuple[Path, dict]) -> None:
    tmp_path, out = hub
    assert f"mxt: fetched to {tmp_path / 'weights' / 'mxt.safetensors'}" in out["startup"]
    assert any(line.startswith("csfc: could not fetch csfc.safetensors") for line in out["startup"])


def test_studio_start_up_fetches_nothing_without_a_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    from inpaintstudio.ui.tabs.models import fetch_hub_weights

    monkeypatch.delenv("INPAINTSTUDIO_HF_REPO", raising=False)
    assert fetch_hub_weights() == []


def test_instructions_keep_their_angle_brackets_in_markdown() -> None:
    from inpaintstudio.ui.tabs.models import markdown_text

    text = "take the generator G_<n>.pth from the folder, then run `weights import PATH/G_<n>.pth`"
    assert markdown_text(text) == ("take the generator G_&lt;n&gt;.pth from the folder, then run "
                                   "`weights import PATH/G_<n>.pth`")
