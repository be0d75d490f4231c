"""Two-process DistributedDataParallel training under torchrun (gloo on CPU): it completes and the ranks agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skdata

REPO = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys, torch, torch.distributed as dist
from inpaintstudio.training.trainer import Trainer, TrainConfig, load_config_file
dist.init_process_group("gloo")
torch.set_num_threads(1)
trainer = Trainer(TrainConfig.from_dict(load_config_file(sys.argv[1])))
from torch.nn.parallel import DistributedDataParallel
assert isinstance(trainer._generator_call, DistributedDataParallel)
assert isinstance(trainer._discriminator_call, DistributedDataParallel)
assert not isinstance(trainer.generator, DistributedDataParallel)  # predict, samples and export use the network
logs = trainer.train()
trainer.save_checkpoint()
torch.save({"state": trainer.generator.state_dict(), "d": trainer.discriminator.state_dict(), "logs": logs},
           f"{sys.argv[2]}/rank{dist.get_rank()}.pt")
dist.destroy_process_group()
"""


def test_two_process_gloo_run_agrees(tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skdata, name)()[:256, :256]).save(photos / f"{name}.png")
    from dataclasses import asdict

    from inpaintstudio.models.hint import network as hint

    fixture = json.loads((REPO / "tests" / "fixtures" / "parity" / "hint" / "config.json").read_text())
    config = {
        "model": "hint", "model_config": asdict(hint.config_from_fixture(fixture)), "iterations": 3, "seed": 2,
        "output_dir": str(tmp_path / "run"), "loss": {"perceptual": 0, "style": 0}, "disc_width": 8,
        "progress": False, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
        "data": {"images": str(photos), "size": 32, "batch_size": 1},
    }
    (tmp_path / "c.json").write_text(json.dumps(config))
    (tmp_path / "run_ddp.py").write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(tmp_path / "run_ddp.py"), str(tmp_path / "c.json"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), key
    for key, value in r0["d"].items():
        assert torch.equal(value, r1["d"][key]), key
    assert r0["logs"]["g_loss"] != r1["logs"]["g_loss"]  # each rank saw its own half of the batch
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["iteration"] == 3 and len(checkpoint["rng"]) == 2
    assert (tmp_path / "run" / "log.csv").read_text().count("\n") == 4
