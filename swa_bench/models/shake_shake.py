"""Shake-Shake-26 2x64d, "Shake-Shake-Image" (Gastaldi, 2017), as the paper ran it (docs/PROTOCOL.md §3).

Every block has two residual branches (ReLU-conv-BN-ReLU-conv-BN). In training they are mixed by a
random coefficient per image going forward and an independent one going back; at evaluation by 0.5.
Where the shape changes the shortcut has two paths: a strided 1x1 conv of the input, and one of the
input shifted by a pixel, each giving half the channels, then BN.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from swa_bench.models.init import he_normal_fan_out_
from swa_bench.models.shake import per_image, shake


def _branch(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),  # the input is shared with the other branch and the shortcut
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
    )


class TwoPathShortcut(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        if out_ch % 2:
            raise ValueError(f"the two-path shortcut needs an even channel count, got {out_ch}")
        self.stride = stride
        self.straight = nn.Conv2d(in_ch, out_ch // 2, 1, bias=False)
        self.shifted = nn.Conv2d(in_ch, out_ch // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # the other pixel of each 2x2 cell
        paths = [conv(F.avg_pool2d(t, 1, self.stride)) for conv, t in ((self.straight, x), (self.shifted, shifted))]
        return self.bn(torch.cat(paths, dim=1))


class ShakeShakeBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.branches = nn.ModuleList([_branch(in_ch, out_ch, stride), _branch(in_ch, out_ch, stride)])
        self.shortcut = TwoPathShortcut(in_ch, out_ch, stride) if stride != 1 or in_ch != out_ch else nn.Identity()

    def coefficients(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, beta): forward and backward mixing weights of the first branch, per image."""
        return per_image(like), per_image(like)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.branches[0](x), self.branches[1](x)
        if self.training:
            alpha, beta = self.coefficients(a)
            mixed = shake(a, alpha, beta) + shake(b, 1 - alpha, 1 - beta)
        else:
            mixed = 0.5 * (a + b)
        return mixed + self.shortcut(x)


class ShakeShake(nn.Module):
    def __init__(self, depth: int, width: int, num_classes: int):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"Shake-Shake depth must be 6n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        stages, in_ch = [], 16
        for out_ch, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            blocks = []
            for i in range(n):
                blocks.append(ShakeShakeBlock(in_ch, out_ch, stride if i == 0 else 1))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(in_ch, num_classes)
        he_normal_fan_out_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.stages(self.stem(x))))


def shakeshake26_2x64d(num_classes: int, depth: int = 26, width: int = 64) -> ShakeShake:
    """`depth` and `width` exist for small test networks; the paper's row is 26 / 64."""
    return ShakeShake(depth, width, num_classes)
