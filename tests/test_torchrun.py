"""eval and batch inpaint spread over processes with torchrun (2 CPU processes, gloo): the files are split, process 0
writes the one report, and every score and pixel equals a single process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from inpaintstudio import registry
from inpaintstudio.core import pipeline
from inpaintstudio.training import data
from inpaintstudio.training.evaluate import evaluate_engine, merge_reports
from tests.conftest import REPO

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("photos")
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    for k, name in enumerate(PHOTOS):
        rgb = getattr(skdata, name)()
        rgb = np.stack([rgb] * 3, -1) if rgb.ndim == 2 else rgb
        Image.fromarray(rgb).resize((80, 64)).save(images / f"{name}.png")
        Image.fromarray((data.generate_mask(64, "20-40", k) * 255).astype(np.uint8)).resize((80, 64)).save(
            masks / f"{name}.png")
    return images, masks


def _run(args: list[str], cwd: Path, processes: int, logs: Path | None = None) -> subprocess.CompletedProcess:
    """The command in one process, or under torchrun; with ``logs``, each process's output goes to its own file
    there (processes sharing one pipe may interleave their lines)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    if logs is not None and processes > 1:
        launcher += ["--redirects", "3", "--log-dir", str(logs)]
    done = subprocess.run([*launcher, "-m", "inpaintstudio", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_eval_over_two_processes_scores_as_one(folders, tmp_path) -> None:
    images, _ = folders
    reports = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        done = _run(["eval", "--model", "opencv_telea", "--images", str(images), "--mask-ratio", "0-20,20-40",
                     "--no-lpips", "--no-fid", "--json", str(out / "r.json"), "--csv", str(out / "r.csv")],
                    tmp_path, processes)
        reports[processes] = (json.loads((out / "r.json").read_text()), (out / "r.csv").read_text(), done.stdout)
    (one, one_csv, _), (two, two_csv, stdout) = reports[1], reports[2]
    assert "process 1 of 2: 3 images" in stdout and "process 2 of 2: 2 images" in stdout
    assert stdout.count("images per bin") == 1  # one table, from process 0
    assert one == two and one_csv == two_csv
    assert one["bins"]["20-40"]["images"] == len(PHOTOS)


def test_batch_inpaint_over_two_processes_writes_each_file_once(folders, tmp_path) -> None:
    images, masks = folders
    outputs = {}
    for processes in (1, 2):
        out = tmp_path / f"out{processes}"
        _run(["inpaint", str(images), str(masks), "-m", "opencv_telea", "-o", f"{out}/"], tmp_path, processes,
             logs=tmp_path / "logs")
        outputs[processes] = {path.name: np.asarray(Image.open(path)) for path in sorted(out.iterdir())}
    per_process = sorted((tmp_path / "logs").rglob("stdout.log"), key=lambda path: path.parent.name)
    texts = [path.read_text() for path in per_process]
    assert len(texts) == 2 and "process 1 of 2: 3 images" in texts[0] and "process 2 of 2: 2 images" in texts[1]
    written = [[line.split(" -> ")[1].split()[0] for line in text.splitlines() if " -> " in line] for text in texts]
    assert [len(files) for files in written] == [3, 2]
    assert not set(written[0]) & set(written[1]) and len(set(written[0]) | set(written[1])) == len(PHOTOS)
    assert outputs[1].keys() == outputs[2].keys() == {f"{name}.png" for name in PHOTOS}
    assert all(np.array_equal(outputs[1][name], outputs[2][name]) for name in outputs[1])


class _TinyInception(torch.nn.Module):
    """A stand-in FID feature net (8-d features): the merge must give the FID one process computes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(3, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.mean((2, 3)))


def test_merged_shards_equal_one_process_fid_included(folders) -> None:
    images, masks = folders
    paths = sorted(images.iterdir())
    engine = pipeline.get_engine(registry.get_card("opencv_telea"))
    common = dict(masks=masks, ratio_bins=["0-20", "20-40", "40-60"], size=64, fid_net=_TinyInception())
    whole = evaluate_engine(engine, paths, **common)
    merged = merge_reports([evaluate_engine(engine, paths, shard=(rank, 3), **common) for rank in range(3)])
    assert whole.as_json() == merged.as_json() and whole.csv_text() == merged.csv_text()
    assert any(b.fid is not None for b in whole.bins)
