"""The training loop: one generator (+ the family's discriminator), checkpoints with exact resume, DDP.

One iteration (clean alternation, as TSGL's code and INCLG's Algorithm 1 do; the SEM-Net/HINT releases' quirk of
letting D accumulate the generator's adversarial gradient is not reproduced):

1. generator forward through the model's ``predict`` (:func:`~inpaintstudio.training.specs.run_generator`);
2. discriminator step on the real image and the detached fake (raw output, or the composite for TSGL);
3. generator step on the family's objective with D frozen; gradients clipped when ``grad_clip`` is set;
4. both LR schedulers step (per iteration, milestones in iterations).

CUDA runs the forward passes under float16 autocast with a GradScaler (``amp``); the VGG terms run in float32.
Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is initialised (NCCL on CUDA, gloo on CPU) and both networks
are wrapped in ``torch.nn.parallel.DistributedDataParallel``: it broadcasts rank 0's weights, averages gradients in
backward and broadcasts buffers before each forward; buffers (spectral-norm vectors, BatchNorm statistics) also follow
rank 0 after every step so the ranks end identical. The generator's training call (``predict`` or the spec's
``forward``, which may call methods other than ``forward``) is wrapped as one module so DDP sees it; evaluation,
samples and export use the unwrapped networks. Each rank reads its own slice of every global
batch. Only rank 0 writes logs, samples, checkpoints and exports.

Checkpoint (``<output_dir>/checkpoints/last.pt`` and ``step_<n>.pt``): generator, discriminator, optimisers,
schedulers, grad scaler, iteration, every rank's RNG states (torch, CUDA, NumPy, Python) and the config. Loading it
and training on gives the same numbers as a run that never stopped (the data order is a function of the step).
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from inpaintstudio import registry, weights
from inpaintstudio.core import loading
from inpaintstudio.core.engines import from_network, select_device, to_value_range
from inpaintstudio.training import specs
from inpaintstudio.training.backbones import VGGFeatures
from inpaintstudio.training.data import DataConfig, InpaintDataset, StepBatchSampler, list_images
from inpaintstudio.training.losses import GeneratorObjective, LossConfig, gan_discriminator_loss

__all__ = ["TrainConfig", "Trainer", "load_config_file", "card_json"]


@dataclass(frozen=True)
class TrainConfig:
    """A training run (the whole config file).

    Args:
        model: card name (``sem_net``, ``hint`` …); the card gives the family, conventions and default config.
        model_config: overrides of the model module's ``Config`` (e.g. a tiny ``dim`` for tests).
        loss, optim: overrides of the family's :class:`LossConfig` / :class:`OptimConfig` defaults.
        data: the :class:`DataConfig`.
        iterations: total generator steps of the run.
        output_dir: logs (``log.csv``, TensorBoard when installed), ``samples/``, ``checkpoints/``,
            ``<model>.safetensors`` (the exported generator).
        grad_clip: max global gradient norm per network (``None``: no clipping, as the releases).
        amp: float16 autocast + GradScaler on CUDA (ignored on CPU).
        device: ``auto``, ``cpu``, ``cuda`` …
        disc_width: base width of the discriminator (64 in every release).
        init_weights: optional safetensors/pth of the generator to start from (fine-tuning).
    """

    model: str
    model_config: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    optim: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    iterations: int = 1000
    seed: int = 10
    output_dir: str = "runs/train"
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    grad_clip: float | None = None
    amp: bool = True
    device: str = "auto"
    disc_width: int = 64
    progress: bool = True
    init_weights: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known: {sorted(known)}")
        if "model" not in data:
            raise ValueError("the config must name the model (model: sem_net, hint, …)")
        data = dict(data)
        data["data"] = DataConfig.from_dict(dict(data.get("data") or {}))
        return cls(**data)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML (``.yml``/``.yaml``) or JSON config as a dict."""
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() in (".yml", ".yaml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the config must be a mapping")
    return data


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if is_dataclass(value):
        return asdict(value)
    return str(value)


def card_json(card: registry.ModelCard) -> str:
    """The card as JSON (for safetensors metadata)."""
    return json.dumps(asdict(replace(card, config=None, weights_path=None)), default=_json_default, sort_keys=True)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *[float(v) for v in np_state[2:]]),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _GeneratorCall(nn.Module):
    """The generator's training call as one module, so DistributedDataParallel wraps the whole of it."""

    def __init__(self, trainer: "Trainer") -> None:
        super().__init__()
        self.net = trainer.generator
        self._run = lambda net, image01, hole, texture01: specs.run_generator(  # noqa: E731
            trainer.module, trainer.card, net, image01, hole, texture01, training=True)

    def forward(self, image01: Tensor, hole: Tensor, texture01: Tensor | None) -> dict[str, Tensor]:
        return self._run(self.net, image01, hole, texture01)


def _milestone_steps(milestones: tuple[float, ...], iterations: int) -> list[int]:
    return sorted({int(round(m * iterations)) if m < 1 else int(m) for m in milestones})


class Trainer:
    """Builds everything a run needs from a :class:`TrainConfig` and trains.

    Args:
        cfg: the run.
        vgg: an already loaded VGG for the perceptual/style terms (tests, benchmarks); otherwise the local file
            is loaded and its absence raises :class:`~inpaintstudio.training.backbones.BackboneMissingError`
            (set ``loss: {perceptual: 0, style: 0}`` to train without those terms).
        dataset: a ready dataset (defaults to the images and masks named in ``cfg.data``).
    """

    def __init__(self, cfg: TrainConfig, vgg: VGGFeatures | None = None, dataset: InpaintDataset | None = None):
        self.cfg = cfg
        self.rank, self.world_size = _world()
        self.device = torch.device(select_device(cfg.device))
        if self.device.type == "cuda" and self.world_size > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        self._seed(cfg.seed + self.rank)

        self.card = registry.get_card(cfg.model)
        self.module = loading.model_module(self.card)
        self.spec = specs.training_spec(self.card)  # refuses a model whose module has no recipe
        net_cfg = loading.card_config(self.card)
        if cfg.model_config:
            known = {f.name for f in fields(net_cfg)}
            unknown = sorted(set(cfg.model_config) - known)
            if unknown:
                raise ValueError(f"unknown {self.card.family} config keys {unknown}; known: {sorted(known)}")
            overrides = {k: tuple(v) if isinstance(v, list) and isinstance(getattr(net_cfg, k), tuple) else v
                         for k, v in cfg.model_config.items()}
            net_cfg = replace(net_cfg, **overrides)
        self.net_cfg = net_cfg
        self.generator = self.module.build(net_cfg).to(self.device)
        if cfg.init_weights:
            tensors, _ = weights.read_checkpoint(cfg.init_weights)
            weights.load_strict(self.generator, weights.clean_state_dict(tensors), name=self.card.name)
        self.loss_cfg: LossConfig = specs.loss_config_for(self.card, cfg.loss)
        self.optim_cfg = specs.optim_config_for(self.card, cfg.optim)
        self.objective = GeneratorObjective(self.loss_cfg, vgg).to(self.device)
        self.discriminator = None
        if self.loss_cfg.needs_discriminator:
            self.discriminator = specs.make_discriminator(self.card, cfg.disc_width)
            if self.discriminator is not None:
                self.discriminator = self.discriminator.to(self.device)

        oc = self.optim_cfg
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=oc.lr, betas=oc.betas,
                                      weight_decay=oc.weight_decay)
        steps = _milestone_steps(oc.milestones, cfg.iterations)
        self.g_sched = torch.optim.lr_scheduler.MultiStepLR(self.g_opt, steps, gamma=oc.gamma)
        self.d_opt = self.d_sched = None
        if self.discriminator is not None:
            self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=oc.d_lr, betas=oc.d_betas or oc.betas)
            self.d_sched = torch.optim.lr_scheduler.MultiStepLR(self.d_opt, steps, gamma=oc.gamma)
        self.amp = bool(cfg.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.iteration = 0

        self.dataset = dataset if dataset is not None else self._default_dataset()
        self.out_dir = Path(cfg.output_dir)
        self._csv_path = self.out_dir / "log.csv"
        self._tb = None
        self._generator_call: nn.Module = _GeneratorCall(self)
        self._discriminator_call: nn.Module | None = self.discriminator
        if self.world_size > 1:
            self._wrap_distributed()

    # ------------------------------------------------------------------------------------ set-up
    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _default_dataset(self) -> InpaintDataset:
        data = self.cfg.data
        if not data.images:
            raise ValueError("data.images is not set (a folder of images or a file list)")
        masks = None if data.masks == "irregular" else list_images(data.masks)
        return InpaintDataset(list_images(data.images), data, masks, train=True, seed=self.cfg.seed,
                              with_landmarks=specs.uses_landmarks(self.card) and self.loss_cfg.landmark > 0)

    def _networks(self) -> list[nn.Module]:
        return [n for n in (self.generator, self.discriminator) if n is not None]

    def _wrap_distributed(self) -> None:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        # the generator may register modules its forward never uses (SEM-Net's released definition does)
        self._generator_call = DistributedDataParallel(self._generator_call, device_ids=ids,
                                                       find_unused_parameters=True)
        if self.discriminator is not None:
            self._discriminator_call = DistributedDataParallel(self.discriminator, device_ids=ids)

    def _sync_buffers(self) -> None:
        if self.world_size == 1:
            return
        for net in self._networks():
            for buf in net.buffers():
                if buf.is_floating_point():
                    dist.broadcast(buf.data, src=0)

    def loader(self, start_step: int | None = None) -> torch.utils.data.DataLoader:
        """An endless loader whose first batch is the one of ``start_step`` (default: the current iteration)."""
        sampler = StepBatchSampler(len(self.dataset), self.cfg.data.batch_size, seed=self.cfg.seed,
                                   start_step=self.iteration if start_step is None else start_step,
                                   rank=self.rank, world_size=self.world_size)
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.cfg.data.workers,
                                           pin_memory=self.device.type == "cuda")

    # ------------------------------------------------------------------------------------- steps
    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)

    def _clip(self, net: nn.Module, optimiser: torch.optim.Optimizer) -> None:
        if self.cfg.grad_clip:
            self.scaler.unscale_(optimiser)
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.cfg.grad_clip)

    def step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """One training iteration on a batch; returns every loss term (floats) and the learning rate."""
        card, lc = self.card, self.loss_cfg
        image01 = batch["image"].to(self.device, non_blocking=True)
        hole = batch["hole"].to(self.device, non_blocking=True)
        target = to_value_range(image01, card.input)
        self.generator.train()
        with self._autocast():
            texture = batch.get("texture")
            out = self._generator_call(image01, hole, None if texture is None else texture.to(self.device))
        fake = out["image"].float()
        comp = fake * hole + target * (1 - hole)
        d_input = comp if lc.adv_input == "composite" else fake
        logs: dict[str, float] = {}

        if self.discriminator is not None and self.d_opt is not None:
            self.discriminator.train()
            self.discriminator.requires_grad_(True)
            with self._autocast():
                d_loss = gan_discriminator_loss(self._discriminator_call(target).float(),
                                                self._discriminator_call(d_input.detach()).float(), lc.gan)
            self.d_opt.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self._clip(self.discriminator, self.d_opt)
            self.scaler.step(self.d_opt)
            logs["d_loss"] = float(d_loss.detach())

        fake_scores = None
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
            with self._autocast():  # D is frozen here: the unwrapped network, so its DDP wrapper expects no backward
                fake_scores = self.discriminator(d_input).float()
        landmarks = out.get("landmarks")
        target_lmk = batch.get("landmarks")
        terms = self.objective(
            fake, target, hole, fake_scores=fake_scores,
            landmarks=None if landmarks is None else landmarks.float(),
            target_landmarks=None if target_lmk is None else target_lmk.to(self.device),
            edge=None if out.get("edge") is None else out["edge"].float(), target_edge=out.get("edge_target"),
        )
        self.g_opt.zero_grad(set_to_none=True)
        self.scaler.scale(terms.total).backward()
        self._clip(self.generator, self.g_opt)
        self.scaler.step(self.g_opt)
        self.scaler.update()
        self.g_sched.step()
        if self.d_sched is not None:
            self.d_sched.step()
        self._sync_buffers()
        if self.discriminator is not None:
            self.discriminator.requires_grad_(True)
        self.iteration += 1

        logs["g_loss"] = float(terms.total.detach())
        logs.update({k: float(v.detach()) for k, v in terms.parts.items()})
        with torch.no_grad():
            comp01 = from_network(comp, card.input)
            logs["hole_l1"] = float(((comp01 - image01).abs() * hole).sum() / (hole.sum() * 3).clamp_min(1))
        logs["lr"] = self.g_opt.param_groups[0]["lr"]
        return logs

    @torch.no_grad()
    def hole_l1(self, image01: Tensor, hole: Tensor, batch_statistics: bool = False,
                texture01: Tensor | None = None) -> float:
        """Mean |composite − image| over hole pixels, [0, 1] units (validation).

        The generator runs in eval mode; ``batch_statistics=True`` keeps BatchNorm on the batch's statistics (useful
        early in a run whose running statistics move slowly, e.g. CSFC's Keras momentum 0.01). Nothing is updated.
        ``texture01`` (TSGL): the texture images; the network is then fed as in training (structure inputs from the
        full image) instead of through ``predict``, which would run the slow RTV smoothing.
        """
        self.generator.eval()
        if batch_statistics:
            for m in self.generator.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.train()
                    m.track_running_stats, m._saved = False, (m.running_mean, m.running_var)
                    m.running_mean = m.running_var = None
        try:
            return self._hole_l1(image01, hole, texture01)
        finally:
            if batch_statistics:
                for m in self.generator.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.running_mean, m.running_var = m._saved
                        m.track_running_stats = True
                        del m._saved
                        m.eval()

    def _hole_l1(self, image01: Tensor, hole: Tensor, texture01: Tensor | None = None) -> float:
        out = specs.run_generator(self.module, self.card, self.generator, image01.to(self.device),
                                     hole.to(self.device), texture01, training=texture01 is not None)
        out01 = from_network(out["image"].float(), self.card.input).clamp(0, 1)
        hole = hole.to(self.device)
        diff = (out01 - image01.to(self.device)).abs() * hole
        return float(diff.sum() / (hole.sum() * 3).clamp_min(1))

    # -------------------------------------------------------------------------------------- loop
    def train(self, iterations: int | None = None) -> dict[str, float]:
        """Train until ``iterations`` (default: the config's total). Returns the last step's logs."""
        until = self.cfg.iterations if iterations is None else iterations
        logs: dict[str, float] = {}
        if self.iteration >= until:
            return logs
        batches = iter(self.loader())
        bar = self._progress(until)
        started, done = time.perf_counter(), 0
        while self.iteration < until:
            logs = self.step(next(batches))
            done += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(g=f"{logs['g_loss']:.4f}", hole_l1=f"{logs['hole_l1']:.4f}")
            if self.rank == 0:
                if self.cfg.log_every and self.iteration % self.cfg.log_every == 0:
                    logs["it_per_s"] = done / (time.perf_counter() - started)
                    self._log(logs)
                if self.cfg.sample_every and self.iteration % self.cfg.sample_every == 0:
                    self.save_samples(self.dataset_batch(min(4, len(self.dataset))))
            if self.cfg.checkpoint_every and self.iteration % self.cfg.checkpoint_every == 0:
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        return logs

    def _progress(self, until: int) -> Any:
        if self.rank != 0 or not self.cfg.progress:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(total=until, initial=self.iteration, desc=f"train {self.card.name}", dynamic_ncols=True)

    def dataset_batch(self, count: int) -> dict[str, Tensor]:
        """The first ``count`` samples of the dataset as a batch (fixed; for sample images), with their texture
        images when the data has them."""
        samples = [self.dataset[(i, 0)] for i in range(count)]
        return {k: torch.stack([s[k] for s in samples]) for k in ("image", "hole", "texture") if k in samples[0]}

    def _log(self, logs: dict[str, float]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        row = {"iteration": self.iteration, **{k: f"{v:.6g}" for k, v in logs.items()}}
        new = not self._csv_path.exists()
        if not new:
            with open(self._csv_path, newline="") as handle:
                header = next(csv.reader(handle), [])
            if set(row) - set(header):
                new = True
                self._csv_path.rename(self._csv_path.with_suffix(f".{self.iteration}.csv"))
        with open(self._csv_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row), extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
            except ImportError:
                self._tb = False
        if self._tb:
            for key, value in logs.items():
                self._tb.add_scalar(key, value, self.iteration)

    @torch.no_grad()
    def save_samples(self, batch: dict[str, Tensor]) -> Path:
        """PNG with one row per image: masked input | raw output | composite | ground truth.

        With the data's texture images (TSGL) the generator is fed as in training, as ``hole_l1`` does, instead of
        through ``predict``, which would run the RTV smoothing again (about a second per 256² image).
        """
        from PIL import Image

        image01, hole = batch["image"].to(self.device), batch["hole"].to(self.device)
        texture01 = batch.get("texture")
        self.generator.eval()
        out = specs.run_generator(self.module, self.card, self.generator, image01, hole,
                                  None if texture01 is None else texture01.to(self.device),
                                  training=texture01 is not None)
        raw = from_network(out["image"].float(), self.card.input).clamp(0, 1)
        rows = []
        for i in range(image01.shape[0]):
            masked = image01[i] * (1 - hole[i]) + hole[i]
            comp = raw[i] * hole[i] + image01[i] * (1 - hole[i])
            rows.append(torch.cat([masked, raw[i], comp, image01[i]], dim=2))
        grid = (torch.cat(rows, dim=1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        path = self.out_dir / "samples" / f"{self.iteration:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(path)
        return path

    # ------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "model": self.card.name,
            "generator": self.generator.state_dict(),
            "discriminator": None if self.discriminator is None else self.discriminator.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "d_opt": None if self.d_opt is None else self.d_opt.state_dict(),
            "g_sched": self.g_sched.state_dict(),
            "d_sched": None if self.d_sched is None else self.d_sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "config": json.dumps(asdict(self.cfg), default=_json_default),
        }

    def save_checkpoint(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the checkpoint (rank 0 writes; every rank's RNG state is gathered into it)."""
        rng = [_rng_state()]
        if self.world_size > 1:
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        path = Path(path) if path is not None else self.out_dir / "checkpoints" / "last.pt"
        if self.rank == 0:
            state = self.state_dict()
            state["rng"] = rng
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, path)
        if self.world_size > 1:
            dist.barrier()
        return path

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore everything :meth:`save_checkpoint` wrote; training then continues exactly."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state["model"] != self.card.name:
            raise ValueError(f"{path} is a checkpoint of {state['model']}, not {self.card.name}")
        self.generator.load_state_dict(state["generator"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.d_opt.load_state_dict(state["d_opt"])
            self.d_sched.load_state_dict(state["d_sched"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.g_sched.load_state_dict(state["g_sched"])
        self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        rng = state["rng"]
        _set_rng_state(rng[self.rank] if self.rank < len(rng) else rng[0])

    def export(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save the generator as safetensors with the model card and config in the metadata."""
        path = Path(path) if path is not None else self.out_dir / f"{self.card.name}.safetensors"
        if self.rank == 0:
            weights.save_safetensors(
                self.generator.state_dict(), path,
                metadata={
                    "model": self.card.name,
                    "family": self.card.family,
                    "card": card_json(self.card),
                    "config": json.dumps(asdict(self.net_cfg), default=_json_default),
                    "iteration": str(self.iteration),
                    "trained_with": "inpaintstudio.training",
                },
            )
        return path

