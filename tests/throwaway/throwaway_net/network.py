"""A two-convolution network that satisfies the model contract and nothing more."""

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Config:
    width: int = 4


class Net(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.head = nn.Conv2d(4, cfg.width, 3, padding=1)
        self.tail = nn.Conv2d(cfg.width, 3, 3, padding=1)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return torch.sigmoid(self.tail(torch.relu(self.head(torch.cat([image, mask], 1)))))


def build(cfg: Config | None = None) -> Net:
    return Net(cfg or Config())


def predict(net: nn.Module, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    return {"image": net(image, mask)}


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The "official" file keeps its tensors under ``generator.``."""
    return {key.removeprefix("generator."): value for key, value in sd.items()}, {"dropped": [], "renamed": {}}


def config_from_fixture(fixture: dict[str, Any]) -> Config:
    return Config(**fixture.get("config", {}))


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    return {"output": net(inputs["image"], inputs["mask"])}
