"""torchvision's ImageNet architectures of Table 2 (SPEC §4), registered like the CIFAR models.

The builders make randomly initialised networks; pretrained weights are loaded by
`swa_bench.models.pretrained` from `model.weights`, so a run records which weights it started from.
"""

import torch.nn as nn

from swa_bench.models.registry import register_model

# name, torchvision's weights enum, description
_MODELS = [
    ("resnet50", "ResNet50_Weights", "torchvision ResNet-50 (25.6M params)"),
    ("resnet152", "ResNet152_Weights", "torchvision ResNet-152 (60.2M params)"),
    ("densenet161", "DenseNet161_Weights", "torchvision DenseNet-161 (28.7M params)"),
    ("resnet18", "ResNet18_Weights", "torchvision ResNet-18 (11.7M params; small stand-in for tests)"),
]


def _builder(name: str):
    def build(num_classes: int) -> nn.Module:
        import torchvision.models  # imported when needed: it takes a second, and most runs are CIFAR

        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)

    build.__name__ = name
    return build


for _name, _weights, _description in _MODELS:
    register_model(_name, _description, weights=_weights)(_builder(_name))
