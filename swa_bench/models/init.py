"""Weight initialisation shared by the reference VGG and PreResNet."""

import math

import torch.nn as nn


def he_normal_fan_out_(module: nn.Module) -> None:
    """Conv weights ~ N(0, sqrt(2 / (k*k*out_channels))), conv bias 0, BN weight 1 and bias 0.

    This is the reference code's init (docs/PROTOCOL.md §3); kept as-is so runs start from the same distribution.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
