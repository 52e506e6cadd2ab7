"""Stochastic weight averaging and BatchNorm recomputation (docs/PROTOCOL.md §1, §2).

Written here rather than taken from torch.optim.swa_utils for two reasons:
- AveragedModel keeps its count as a device tensor and branches on it, which syncs the device on
  every update; the count here is a host int and the update is one fused foreach op.
- update_bn (momentum=None) weights every batch equally, where the reference weights each batch by
  its size (momentum b / (n + b)), an exact per-sample average; and it syncs the device once per BN
  layer per batch. `recompute_bn` gives the reference's statistics with no syncs at all.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


class WeightAverage:
    """A running average of a model's parameters: equal-weight (SWA), w <- w + (w_new - w) / (n + 1),
    or with `decay` exponential (EMA), w <- decay * w + (1 - decay) * w_new, which is what
    swa_utils.get_ema_multi_avg_fn computes (a test checks both against AveragedModel). Either way
    the first update copies the weights.

    Only parameters are averaged (BN affine weights included); BN running statistics of `module`
    are stale until `recompute_bn` runs on it.
    """

    def __init__(self, model: nn.Module, decay: float | None = None):
        self.module = copy.deepcopy(model)
        # Its parameters keep requires_grad as the model's: it is only ever run under no_grad (evaluation,
        # BN recomputation), and a compiled model and its average then share the same graphs (a
        # different requires_grad would be a guard failure, hence a recompile, for each of them).
        self._averaged = list(self.module.parameters())  # fixed tensors: gathered once
        self.decay = decay
        self.count = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        current = list(model.parameters())
        if self.count == 0:
            # The first collection copies: the starting point is not part of the average.
            for a, c in zip(self._averaged, current):
                a.copy_(c)
        else:
            weight = 1.0 / (self.count + 1) if self.decay is None else 1.0 - self.decay
            torch._foreach_lerp_(self._averaged, current, weight)
        self.count += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.count = int(state["count"])


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in model.modules())


@torch.no_grad()
def recompute_bn(model: nn.Module, loader, device: torch.device, progress=None, forward=None, world=None) -> int:
    """Reset BN running statistics and recompute them in one train-mode pass over `loader`.

    The result is the reference's bn_update: running_mean is the exact per-sample mean over all
    samples seen, running_var the batch-size-weighted mean of the per-batch (unbiased) variances.
    It is computed without device syncs and without touching module attributes per batch (which
    would make a compiled model recompile): with momentum 1.0 each forward leaves exactly the batch
    statistics in the running buffers, which are summed weighted by the (host-side) batch size and
    divided by the sample count at the end. `forward` runs the model (e.g. its compiled form;
    default `model` itself). Returns the number of samples seen (0 without BN).

    Under torchrun (`world`: swa_bench.distributed.World), each process passes over its share of the
    data and the sums and counts are added across processes before the division: the result is the
    single-process pass over the same batches, whichever process saw each batch.
    """
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    was_training = model.training
    for m in layers:
        m.reset_running_stats()
        m.momentum = 1.0
    running = [buf for m in layers for buf in (m.running_mean, m.running_var)]
    sums = [torch.zeros_like(buf) for buf in running]
    model.train()
    forward = forward if forward is not None else model  # not `or`: a compiled module's truth value asks len()
    seen = batches = 0
    for inputs, _ in loader:
        forward(inputs.to(device, non_blocking=True))
        batch = inputs.size(0)
        torch._foreach_add_(sums, running, alpha=batch)
        seen += batch
        batches += 1
        if progress is not None:
            progress.update(1)
    if world is not None and world.distributed:
        world.all_reduce_sum_(sums)
        seen, batches = world.sum_ints(seen, batches)
        for m in layers:
            m.num_batches_tracked.fill_(batches)  # what one process passing over every batch counts
    torch._foreach_div_(sums, float(max(seen, 1)))
    for buf, mean in zip(running, sums):
        buf.copy_(mean)
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.train(was_training)
    return seen
