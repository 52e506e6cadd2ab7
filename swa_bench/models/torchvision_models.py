"""torchvision's ImageNet architectures of Table 2 (SPEC §4), registered like the CIFAR models.

The builders make randomly initialised networks; pretrained weights are loaded by
`swa_bench.models.pretrained` from `model.weights`, so a run records which weights it started from.
"""

import torch.nn as nn

from swa_bench.models.registry import register_model


def _tv(name: str, num_classes: int) -> nn.Module:
    import torchvision.models  # imported when needed: it takes a second, and most runs are CIFAR

    return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)


@register_model("resnet50", "torchvision ResNet-50 (25.6M params)", weights="ResNet50_Weights")
def resnet50(num_classes: int) -> nn.Module:
    return _tv("resnet50", num_classes)


@register_model("resnet152", "torchvision ResNet-152 (60.2M params)", weights="ResNet152_Weights")
def resnet152(num_classes: int) -> nn.Module:
    return _tv("resnet152", num_classes)


@register_model("densenet161", "torchvision DenseNet-161 (28.7M params)", weights="DenseNet161_Weights")
def densenet161(num_classes: int) -> nn.Module:
    return _tv("densenet161", num_classes)


@register_model("resnet18", "torchvision ResNet-18 (11.7M params; small stand-in for tests)", weights="ResNet18_Weights")
def resnet18(num_classes: int) -> nn.Module:
    return _tv("resnet18", num_classes)
