"""Frozen ImageNet backbones used by the losses and metrics, without torchvision.

Each class reproduces the module layout of its torchvision counterpart so that the published files load
with ``strict=True`` under their own key names:

* :class:`VGGFeatures` — ``torchvision.models.vgg16/vgg19().features`` (keys ``features.0.weight`` …);
  files ``vgg16-397923af.pth`` (LPIPS, CSFC losses) and ``vgg19-dcbb9e9d.pth`` (perceptual/style losses).
* :class:`FIDInceptionV3` — pytorch-fid's ``FIDInceptionA/C/E`` variant of torchvision's ``Inception3``
  (``Conv2d_1a_3x3.conv.weight`` …, ``fc`` with 1008 classes); file ``pt_inception-2015-12-05-6726825d.pth``.

Nothing is downloaded. :func:`find_backbone` looks, in order, at an explicit path, ``$INPAINTSTUDIO_BACKBONES``,
``$TORCH_HOME/hub/checkpoints`` and ``~/.cache/torch/hub/checkpoints``; when the file is nowhere it raises
:class:`BackboneMissingError`, whose message names the file and the folders searched.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.errors import WeightsUnavailableError

__all__ = [
    "VGG16_FILE",
    "VGG19_FILE",
    "INCEPTION_FILE",
    "BackboneMissingError",
    "backbone_dirs",
    "find_backbone",
    "load_backbone_state",
    "VGGFeatures",
    "vgg_from_file",
    "FIDInceptionV3",
    "inception_from_file",
]

VGG16_FILE = "vgg16-397923af.pth"
VGG19_FILE = "vgg19-dcbb9e9d.pth"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"

_VGG_LAYOUT = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class BackboneMissingError(WeightsUnavailableError, FileNotFoundError):
    """A frozen backbone file (VGG, Inception) is not on this machine; nothing is downloaded."""


def backbone_dirs() -> list[Path]:
    """Folders searched for backbone files, in order."""
    dirs: list[Path] = []
    env = os.environ.get("INPAINTSTUDIO_BACKBONES")
    if env:
        dirs.append(Path(env).expanduser())
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        dirs.append(Path(torch_home).expanduser() / "hub" / "checkpoints")
    dirs.append(Path("~/.cache/torch/hub/checkpoints").expanduser())
    return list(dict.fromkeys(dirs))


def find_backbone(filename: str, explicit: str | os.PathLike[str] | None = None) -> Path:
    """Path of a backbone file, or :class:`BackboneMissingError` naming the file and the folders searched."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        raise BackboneMissingError(f"backbone file not found: {path} (expected {filename})")
    for folder in backbone_dirs():
        if (folder / filename).is_file():
            return folder / filename
    searched = "\n  ".join(str(d) for d in backbone_dirs())
    raise BackboneMissingError(
        f"backbone weights {filename} are not on this machine (nothing is downloaded).\n"
        f"Put {filename} in one of these folders:\n  {searched}\n"
        "(torchvision/pytorch-fid keep it in $TORCH_HOME/hub/checkpoints; $INPAINTSTUDIO_BACKBONES adds a folder)"
    )


def load_backbone_state(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a backbone file (``.pth`` with ``weights_only=True``, or ``.safetensors``) to a CPU state_dict."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return dict(state)


# ------------------------------------------------------------------------------------------------ VGG
class VGGFeatures(nn.Module):
    """``torchvision.models.vgg{16,19}().features`` (convs 3×3 pad 1 + ReLU, max-pool 2×2), frozen.

    ``forward(x, taps)`` runs up to the deepest requested index and returns ``{index: activation}`` where
    ``index`` is the position in ``features`` whose *output* is wanted (e.g. VGG-19 relu1_1 = 1,
    relu5_2 = 31; VGG-16 pool1 = 4). The input is used as given: no ImageNet mean/std normalisation, which is
    what the inpainting losses of this project's papers do ([0, 1] images straight in).
    """

    def __init__(self, depth: int = 19) -> None:
        super().__init__()
        if depth not in _VGG_LAYOUT:
            raise ValueError(f"VGG depth must be 16 or 19, got {depth}")
        self.depth = depth
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG_LAYOUT[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:  # frozen: always eval
        return super().train(False)

    def forward(self, x: Tensor, taps: tuple[int, ...] | list[int]) -> dict[int, Tensor]:
        wanted = set(taps)
        last = max(wanted)
        out: dict[int, Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                out[index] = x
            if index == last:
                break
        return out


def vgg_from_file(depth: int, path: str | os.PathLike[str] | None = None) -> VGGFeatures:
    """A frozen VGG-``depth`` loaded strictly from torchvision's file (``classifier.*`` keys are dropped)."""
    filename = VGG19_FILE if depth == 19 else VGG16_FILE
    file = find_backbone(filename, path)
    state = {k: v for k, v in load_backbone_state(file).items() if k.startswith("features.")}
    net = VGGFeatures(depth)
    net.load_state_dict(state, strict=True)
    return net


# ---------------------------------------------------------------------------------------- Inception-V3
class _BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kwargs: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class _InceptionA(nn.Module):  # pytorch-fid FIDInceptionA: average pool without the padded zeros
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = _BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = _BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = _BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = _BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = _BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class _InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = _BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = _BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class _InceptionC(nn.Module):  # pytorch-fid FIDInceptionC
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = _BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = _BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = _BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = _BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = _BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = _BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class _InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = _BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = _BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = _BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class _InceptionE(nn.Module):
    """pytorch-fid FIDInceptionE_1 (``pool="avg"``, no padded zeros) and FIDInceptionE_2 (``pool="max"``)."""

    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = _BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = _BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = _BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = _BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = _BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = _BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = _BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "avg":
            pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        else:
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """Inception-V3 as pytorch-fid uses it for FID: ``forward`` returns the 2048-d pool3 features.

    Input: B×3×H×W RGB in [0, 1]. As in pytorch-fid it is resized to 299×299 (bilinear,
    ``align_corners=False``) and mapped to [−1, 1] by ``2x − 1``. ``fc`` (1008 classes) is kept only so that
    ``pt_inception-2015-12-05-6726825d.pth`` loads strictly; it is never run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = _BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = _BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = _BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = _BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = _InceptionA(192, pool_features=32)
        self.Mixed_5c = _InceptionA(256, pool_features=64)
        self.Mixed_5d = _InceptionA(288, pool_features=64)
        self.Mixed_6a = _InceptionB(288)
        self.Mixed_6b = _InceptionC(768, c7=128)
        self.Mixed_6c = _InceptionC(768, c7=160)
        self.Mixed_6d = _InceptionC(768, c7=160)
        self.Mixed_6e = _InceptionC(768, c7=192)
        self.Mixed_7a = _InceptionD(768)
        self.Mixed_7b = _InceptionE(1280, pool="avg")
        self.Mixed_7c = _InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FIDInceptionV3:  # frozen: always eval
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def inception_from_file(path: str | os.PathLike[str] | None = None) -> FIDInceptionV3:
    """pytorch-fid's Inception loaded strictly from ``pt_inception-2015-12-05-6726825d.pth``."""
    file = find_backbone(INCEPTION_FILE, path)
    state = load_backbone_state(file)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    net = FIDInceptionV3()
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"{file} does not fit FIDInceptionV3: missing {missing[:10]}, unexpected {unexpected[:10]}")
    return net
