"""PyramidNet with bottleneck blocks (Han et al., 2017), the paper's PyramidNet-272 alpha 200 (docs/PROTOCOL.md §3).

Widths grow additively by alpha / (3n) per block over all 3n blocks, rounded per block; a block's
shortcut is the raw input, average-pooled where the block strides and zero-padded to the new channel
count, so the shortcuts hold no parameters. ShakeDrop (Yamada et al., 2018) is optional and off by
default: the paper's 83.41 baseline is judged to be without it.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from swa_bench.models.init import he_normal_fan_out_
from swa_bench.models.shake import per_image, shake

EXPANSION = 4


class ShakeDrop(nn.Module):
    """Keeps the branch with probability `keep`, otherwise scales it by alpha ~ U[-1, 1] going forward
    and beta ~ U[0, 1] going back, per image; the expected scale, `keep`, at evaluation."""

    def __init__(self, keep: float):
        super().__init__()
        self.keep = keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * self.keep
        gate = (per_image(x) < self.keep).to(x.dtype)
        alpha, beta = per_image(x, -1.0, 1.0), per_image(x)
        return shake(x, gate + (1 - gate) * alpha, gate + (1 - gate) * beta)

    def extra_repr(self) -> str:
        return f"keep={self.keep:.4f}"


class PyramidBottleneck(nn.Module):
    def __init__(self, in_ch: int, planes: int, stride: int, shakedrop_keep: float | None):
        super().__init__()
        out_ch = planes * EXPANSION
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.shakedrop = ShakeDrop(shakedrop_keep) if shakedrop_keep is not None else nn.Identity()
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if stride != 1 else nn.Identity()
        self.extra_channels = out_ch - in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.pool(x)
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.shakedrop(self.residual(x)) + shortcut


class PyramidNet(nn.Module):
    def __init__(self, depth: int, alpha: float, num_classes: int, shakedrop: bool, shakedrop_last_keep: float):
        super().__init__()
        if depth < 11 or (depth - 2) % 9:
            raise ValueError(f"PyramidNet bottleneck depth must be 9n+2 with n >= 1, got {depth}")
        if alpha < 0:
            raise ValueError(f"PyramidNet alpha must be non-negative, got {alpha}")
        if not 0 < shakedrop_last_keep <= 1:
            raise ValueError(f"shakedrop_last_keep must be in (0, 1], got {shakedrop_last_keep}")
        n = (depth - 2) // 9
        total = 3 * n
        step = alpha / total

        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        stages, in_ch, width, index = [], 16, 16.0, 0
        for stride in (1, 2, 2):
            blocks = []
            for i in range(n):
                width += step
                index += 1
                # ShakeDrop's linear decay rule: keep 1 - (l / L)(1 - p_L) for block l of L.
                keep = 1 - index / total * (1 - shakedrop_last_keep) if shakedrop else None
                blocks.append(PyramidBottleneck(in_ch, round(width), stride if i == 0 else 1, keep))
                in_ch = round(width) * EXPANSION
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(in_ch, num_classes)
        he_normal_fan_out_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.stages(self.stem(x))))


def pyramidnet272(
    num_classes: int,
    depth: int = 272,
    alpha: float = 200.0,
    shakedrop: bool = False,
    shakedrop_last_keep: float = 0.5,
) -> PyramidNet:
    """`depth` and `alpha` exist for small test networks; the paper's row is 272 / 200.
    `shakedrop: true` adds ShakeDrop with keep probability falling linearly to `shakedrop_last_keep`."""
    return PyramidNet(depth, alpha, num_classes, shakedrop, shakedrop_last_keep)
