"""WRN-28-10 as in the SWA reference code, including its quirks: the stride sits on the block's
second conv, the final BN has momentum 0.9, and every layer keeps the framework's default init.

That default init is not today's for BatchNorm: the paper's runs used PyTorch 0.3/0.4, where
BatchNorm weights started from U(0, 1); since PyTorch 1.0 they start at 1 (pytorch/pytorch#12259,
changed in #12325). `bn_weight_init="uniform"` (the default) restores the paper's start.
Convolution and linear defaults did not change in effect: both draw weights and biases from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) then and now (tests/test_models.py checks today's)."""

from typing import Literal

import torch
import torch.nn as nn


class WideBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, dropout: float):
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=True),
            nn.Dropout(dropout),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, stride=stride, padding=1, bias=True),
        )
        self.shortcut = (
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=True) if stride != 1 or in_ch != out_ch else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class WideResNet(nn.Module):
    def __init__(
        self,
        depth: int,
        widen: int,
        num_classes: int,
        dropout: float,
        final_bn_momentum: float,
        bn_weight_init: str = "uniform",
    ):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=True)
        stages, in_ch = [], 16
        for width, stride in zip(widths, [1, 2, 2]):
            blocks = []
            for i in range(n):
                blocks.append(WideBlock(in_ch, width, stride if i == 0 else 1, dropout))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.BatchNorm2d(in_ch, momentum=final_bn_momentum),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(8),
            nn.Flatten(),
        )
        self.fc = nn.Linear(in_ch, num_classes)
        # Default PyTorch init: the reference defines an init function but never applies it.
        if bn_weight_init == "uniform":
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    nn.init.uniform_(m.weight, 0.0, 1.0)  # PyTorch <= 0.4's BatchNorm default
        elif bn_weight_init != "ones":
            raise ValueError(f"bn_weight_init must be uniform or ones, got {bn_weight_init!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.stages(self.stem(x))))


def wrn28x10(
    num_classes: int,
    dropout: float = 0.0,
    final_bn_momentum: float = 0.9,
    bn_weight_init: Literal["uniform", "ones"] = "uniform",
) -> WideResNet:
    """`final_bn_momentum=0.9` reproduces the reference (PyTorch weights the newest batch by it);
    set 0.1 for PyTorch's usual running-average behaviour. `bn_weight_init`: uniform, the
    BatchNorm weights the paper's runs started from (U(0, 1), PyTorch <= 0.4); ones, today's."""
    return WideResNet(28, 10, num_classes, dropout, final_bn_momentum, bn_weight_init)
