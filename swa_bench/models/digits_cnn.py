"""A small BN convnet for the 8x8 digits demo: the same train/average/BN-recompute path as the
paper's nets, at a size that trains in seconds on a CPU."""

import torch.nn as nn

from swa_bench.models.init import he_normal_fan_out_


def digits_cnn(num_classes: int, width: int = 32) -> nn.Module:
    def conv_bn(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    net = nn.Sequential(
        *conv_bn(1, width),
        *conv_bn(width, width),
        nn.MaxPool2d(2),  # 4x4
        *conv_bn(width, 2 * width),
        nn.MaxPool2d(2),  # 2x2
        nn.Flatten(),
        nn.Linear(2 * width * 4, num_classes),
    )
    he_normal_fan_out_(net)
    return net


def digits_mlp(num_classes: int, width: int = 128) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, width, bias=False),
        nn.BatchNorm1d(width),
        nn.ReLU(inplace=True),
        nn.Linear(width, width, bias=False),
        nn.BatchNorm1d(width),
        nn.ReLU(inplace=True),
        nn.Linear(width, num_classes),
    )
