"""VGG-16 without BatchNorm, as in the SWA reference code (docs/PROTOCOL.md §3)."""

import torch
import torch.nn as nn

from swa_bench.models.init import he_normal_fan_out_

# "M" is a 2x2 max-pool; numbers are conv3x3 output channels.
VGG16_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, layout, num_classes: int, dropout: float = 0.5):
        super().__init__()
        layers, in_ch = [], 3
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )
        he_normal_fan_out_(self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def vgg16(num_classes: int, dropout: float = 0.5) -> VGG:
    return VGG(VGG16_LAYOUT, num_classes, dropout)
