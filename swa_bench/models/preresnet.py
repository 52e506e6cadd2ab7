"""Pre-activation ResNets of the SWA reference code (docs/PROTOCOL.md §3).

Depth >= 44 uses bottleneck blocks with depth = 9n + 2, as the reference does: PreResNet-164 has
18 blocks per stage and PreResNet-110 has 12. Shallower nets use basic blocks (depth = 6n + 2).
"""

import torch
import torch.nn as nn

from swa_bench.models.init import he_normal_fan_out_


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class PreActBlock(nn.Module):
    """BN-ReLU-conv units in sequence; the shortcut sees the raw block input."""

    def __init__(self, in_ch: int, planes: int, stride: int, bottleneck: bool):
        super().__init__()
        out_ch = planes * (4 if bottleneck else 1)
        if bottleneck:
            units = [(in_ch, planes, 1, 1), (planes, planes, 3, stride), (planes, out_ch, 1, 1)]
        else:
            units = [(in_ch, planes, 3, stride), (planes, out_ch, 3, 1)]
        layers = []
        for cin, cout, k, s in units:
            layers += _bn_relu(cin) + [nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=False)]
        self.residual = nn.Sequential(*layers)
        # Projection without BN on the raw input, where the shape changes (reference behaviour).
        self.shortcut = (
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False) if stride != 1 or in_ch != out_ch else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class PreResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int):
        super().__init__()
        bottleneck = depth >= 44
        per_block = 9 if bottleneck else 6
        if (depth - 2) % per_block:
            raise ValueError(f"PreResNet depth must be {per_block}n+2, got {depth}")
        n = (depth - 2) // per_block
        expansion = 4 if bottleneck else 1

        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        stages, in_ch = [], 16
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            blocks = []
            for i in range(n):
                blocks.append(PreActBlock(in_ch, planes, stride if i == 0 else 1, bottleneck))
                in_ch = planes * expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(*_bn_relu(in_ch), nn.AvgPool2d(8), nn.Flatten())
        self.fc = nn.Linear(in_ch, num_classes)
        he_normal_fan_out_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.stages(self.stem(x))))


def preresnet164(num_classes: int) -> PreResNet:
    return PreResNet(164, num_classes)


def preresnet110(num_classes: int) -> PreResNet:
    return PreResNet(110, num_classes)


# Small basic-block nets, for protocols shrunk to fit a CPU (configs/mini).
def preresnet20(num_classes: int) -> PreResNet:
    return PreResNet(20, num_classes)


def preresnet32(num_classes: int) -> PreResNet:
    return PreResNet(32, num_classes)
