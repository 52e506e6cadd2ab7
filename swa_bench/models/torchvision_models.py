"""torchvision's ImageNet architectures of Table 2, built by name (see the catalog in registry.py).

The builder makes a randomly initialised network; pretrained weights are loaded by
`swa_bench.models.pretrained` from `model.weights`, so a run records which weights it started from.
"""

import torch.nn as nn


def torchvision_model(arch: str, num_classes: int) -> nn.Module:
    import torchvision.models  # imported when needed: it takes a second, and most runs are CIFAR

    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
