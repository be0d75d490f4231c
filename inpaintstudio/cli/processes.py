"""Several processes on one job: ``torchrun --nproc_per_node N -m inpaintstudio eval|inpaint …``.

torchrun starts N copies of the command with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. Each copy takes every
N-th file (its :meth:`ProcessGroup.share`), runs on its own device (``cuda:LOCAL_RANK`` when the device is ``auto``
and CUDA is there), and process 0 gathers what the others found through ``torch.distributed`` (gloo on the CPU, NCCL
on GPUs) and writes the one report. Without torchrun the group is one process and nothing is initialised.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["ProcessGroup", "process_group"]

T = TypeVar("T")


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the job (rank ``rank`` of ``world``)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def leader(self) -> bool:
        """Process 0: the one that gathers, prints the summary and writes the report."""
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's items: every ``world``-th one from ``rank`` (the others take the rest)."""
        return list(items[self.rank::self.world])

    def indices(self, count: int) -> list[int]:
        return list(range(self.rank, count, self.world))

    def device(self, requested: str | None) -> str | None:
        """``cuda:LOCAL_RANK`` for an ``auto`` device in a multi-process job with CUDA; else what was asked."""
        if self.distributed and requested in (None, "", "auto"):
            import torch

            if torch.cuda.is_available():
                return f"cuda:{self.local_rank}"
        return requested

    def announce(self, count: int, what: str) -> None:
        if self.distributed:
            print(f"process {self.rank + 1} of {self.world}: {count} {what}", flush=True)

    def gather(self, value: Any) -> list[Any] | None:
        """Every process's ``value`` in rank order on process 0 (``None`` elsewhere); ``[value]`` alone."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        found: list[Any] | None = [None] * self.world if self.leader else None
        dist.gather_object(value, found, dst=0)
        return found

    def share_all(self, value: Any) -> list[Any]:
        """Every process's ``value`` in rank order, on every process."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        found: list[Any] = [None] * self.world
        dist.all_gather_object(found, value)
        return found

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def process_group() -> ProcessGroup:
    """The group torchrun describes in the environment, with ``torch.distributed`` initialised when it has more
    than one process (gloo: objects are gathered on the CPU whatever the devices)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    group = ProcessGroup(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if group.distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
    return group
