"""How the maths is executed: device, numeric precision, memory format and compilation.

None of these change the training recipe: weights and optimizer state stay fp32 (bf16 is autocast
only), batch size and data are untouched. They are runtime choices, measured in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn

# Graphs one compiled code object may have before torch falls back to eager (see Execution.compiled).
RECOMPILE_LIMIT = 16


@dataclass(frozen=True)
class Execution:
    device: torch.device
    precision: str = "fp32"  # fp32 | tf32 | bf16
    channels_last: bool = False
    compile: str = "none"  # none | default | reduce-overhead | max-autotune

    def configure_backends(self) -> None:
        """Process-wide switches: cuDNN autotuning, and TF32 only when asked (PyTorch lets cuDNN
        convolutions use TF32 by default; fp32 here means fp32)."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as the reference
            tf32 = self.precision == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def place(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def compiled(self, model: nn.Module):
        """A callable running `model` (sharing its parameters), compiled if asked."""
        if self.compile == "none":
            return model
        # A run compiles one code object (the model's forward) into a graph per variant: train, eval
        # and the BN pass, each at the full and at a smaller last batch; the averaged model shares
        # them (averaging.WeightAverage). Six, against torch's default limit of 8 per code object,
        # past which it silently runs eager: headroom for the odd last batch of a DDP shard or subset.
        import torch._dynamo

        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        return torch.compile(model, mode=None if self.compile == "default" else self.compile)

    def batches(self, loader):
        """(inputs, targets) of `loader` on the device, in the chosen memory format."""
        for inputs, targets in loader:
            inputs = inputs.to(self.device, non_blocking=True)
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            yield inputs, targets.to(self.device, non_blocking=True)

    @classmethod
    def from_config(cls, run_cfg, device: torch.device) -> "Execution":
        return cls(device, run_cfg.precision, run_cfg.channels_last, run_cfg.compile)
