"""Forward multiply-accumulates per image, counted from the layers a real forward pass runs.

Convolutions and linear layers only (the convention behind the published figures); BN, activations,
pooling and the shake mixing are a rounding error next to them.
"""

from __future__ import annotations

import torch
import torch.nn as nn


@torch.no_grad()
def forward_macs(model: nn.Module, image_shape: tuple[int, int, int] = (3, 32, 32)) -> int:
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output):
        nonlocal total
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        total += output[0].numel() * per_output

    def linear_hook(module: nn.Linear, inputs, output):
        nonlocal total
        total += output[0].numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        model(torch.zeros((1, *image_shape), device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total
