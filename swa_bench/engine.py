"""The passes a run is made of, reusable on their own (the trainer, `bench` and the figures' point
evaluator use them): the device, the per-epoch seeding, one training pass, one evaluation pass, and
the global RNG states a mid-epoch checkpoint keeps."""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

from swa_bench.distributed import World
from swa_bench.errors import UserError
from swa_bench.execution import Execution

# Independent random streams within an epoch.
STREAM_TRAIN, STREAM_BN = 0, 1


class DeviceError(UserError, RuntimeError):
    pass


def resolve_device(name: str, world: World = World()) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("run.device: cuda was asked for, but torch sees no CUDA device (use --device cpu or auto)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", world.local_rank)  # one device per process under torchrun


def seed_epoch(seed: int, epoch: int, stream: int, generator: torch.Generator, rank: int = 0) -> None:
    """Seed `generator` (data order and augmentation, the same in every process) and the global RNGs
    (dropout and the like, different in every process) from (seed, epoch, stream)."""
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2)
    value = int(state[0]) << 32 | int(state[1])
    generator.manual_seed(value)
    if rank:
        state = np.random.SeedSequence([seed, epoch, stream, rank]).generate_state(2)
        value = int(state[0]) << 32 | int(state[1])
    torch.manual_seed(value)  # also seeds every CUDA device
    random.seed(value)
    np.random.seed(int(state[0]))


# --------------------------------------------------------------------------------------------------
# One pass of training, one pass of evaluation


class Tally:
    """Loss and accuracy sums kept on the device and read once at the end (reading them every step
    would sync the device every step), summed over processes."""

    def __init__(self, device, sums: tuple[float, float, float] = (0.0, 0.0, 0.0)):
        self.loss, self.correct, self.seen = (torch.tensor(v, device=device, dtype=torch.float64) for v in sums)

    def add(self, loss_sum, logits, targets) -> None:
        self.loss += loss_sum
        self.correct += (logits.argmax(1) == targets).sum()
        self.seen += targets.size(0)

    def reduce(self, world: World) -> tuple[float, float, float]:
        """The sums over every process."""
        world.all_reduce_sum_([self.loss, self.correct, self.seen])
        return self.loss.item(), self.correct.item(), self.seen.item()

    def means(self, world: World) -> tuple[float, float]:
        loss, correct, seen = self.reduce(world)
        return loss / max(seen, 1.0), 100.0 * correct / max(seen, 1.0)


def train_one_epoch(
    model,
    loader,
    optimizer,
    execution: Execution,
    bar,
    lr_at_step,
    *,
    tally: Tally | None = None,
    first_step: int = 0,
    stop=lambda: False,
    after_step=lambda step: None,
) -> tuple[Tally, int]:
    """Steps over `loader`, numbered from `first_step` (a resumed epoch); `model` may be the compiled
    or DDP form of the module being trained. `lr_at_step(step)` gives each step's rate, so
    per-iteration schedules need nothing else. After each step `after_step(number of steps taken)`
    runs (the EMA's update), then `stop()` may end the pass early.
    Returns the tally and the number of the step after the last one taken."""
    model.train()
    tally = tally or Tally(execution.device)
    step = first_step
    for inputs, targets in execution.batches(loader):
        lr = lr_at_step(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with execution.autocast():
            logits = model(inputs)
            loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        tally.add(loss.detach() * targets.size(0), logits, targets)
        step += 1
        after_step(step)
        bar.update(1)
        if stop():
            break
    return tally, step


@torch.no_grad()
def evaluate(model, loader, execution: Execution, world: World = World()) -> dict:
    model.eval()
    tally = Tally(execution.device)
    for inputs, targets in execution.batches(loader):
        with execution.autocast():
            logits = model(inputs)
        tally.add(F.cross_entropy(logits.float(), targets, reduction="sum"), logits, targets)
    loss, acc = tally.means(world)
    return {"loss": loss, "acc": acc}


@torch.no_grad()
def predict(model, loader, execution: Execution) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax probabilities in fp32, targets) of every image of `loader`, in its order, on the device."""
    model.eval()
    probabilities, targets = [], []
    for inputs, batch_targets in execution.batches(loader):
        with execution.autocast():
            logits = model(inputs)
        probabilities.append(F.softmax(logits.float(), dim=1))
        targets.append(batch_targets)
    return torch.cat(probabilities), torch.cat(targets)


def rng_states() -> dict:
    """This process's global RNG states: what dropout and similar noise draw from."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(states: dict) -> None:
    """Restore what rng_states() returned. torch takes RNG states only as CPU byte tensors, so states
    that a checkpoint load moved elsewhere (a map_location on the GPU) come back to the host first.
    CUDA states are restored for the devices this process has (none when a run stopped on a GPU
    resumes on a CPU; its noise then differs, as it would anyway on another device type)."""
    torch.set_rng_state(states["cpu"].cpu())
    cuda = states["cuda"][: torch.cuda.device_count()] if torch.cuda.is_available() else []
    for index, state in enumerate(cuda):
        torch.cuda.set_rng_state(state.cpu(), index)
