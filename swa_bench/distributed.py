"""One process or many (torchrun): who this process is, and the few collectives training needs.

Under `torchrun --nproc_per_node=N`, every process trains on its share of each pass (DDP), and the
quantities that are sums over the data (loss and accuracy tallies, BN statistics) are summed across
processes, so the numbers are those of one process seeing the whole pass. Without torchrun this is
a world of one and every collective is a no-op: the same code path runs single-process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The process that writes records and checkpoints and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def all_reduce_sum_(self, tensors: list[torch.Tensor]) -> None:
        """Sum `tensors` in place across processes (one flattened collective)."""
        if not self.distributed or not tensors:
            return
        flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors])
        dist.all_reduce(flat)
        offset = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t).to(t.dtype))
            offset += n

    def sum_floats(self, *values: float) -> list[float]:
        """The sums of a few host numbers over every process (one collective, one host sync)."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(t)
        return t.tolist()

    def sum_ints(self, *values: int) -> list[int]:
        return [int(v) for v in self.sum_floats(*values)]

    def average_buffers_(self, module: torch.nn.Module) -> None:
        """Make every process's floating-point buffers (BN running statistics) their mean over the
        processes. DDP runs with broadcast_buffers=False (broadcasting them at every forward is a
        collective per step and keeps compiled CUDA graphs from applying), so each process's running
        statistics follow its own shards; their mean is what one process over the global batches
        would hold (up to the spread between shards), identical everywhere for evaluation and
        checkpoints."""
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        if not self.distributed or not buffers:
            return
        self.all_reduce_sum_(buffers)
        torch._foreach_div_(buffers, float(self.size))

    def all_gather(self, obj) -> list:
        """`obj` of every process, by rank (picklable objects: RNG states, small dicts)."""
        if not self.distributed:
            return [obj]
        gathered = [None] * self.size
        dist.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def _collective_device() -> torch.device:
    """Where collective buffers live: NCCL needs CUDA tensors, gloo takes CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def init_world(device_name: str) -> World:
    """The world torchrun describes in the environment (or a world of one), its process group
    started: NCCL on CUDA, gloo on CPU."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=30))
    return World(rank, size, local_rank)


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
