"""torchvision's ImageNet architectures of Table 2 (SPEC §4), registered like the CIFAR models.

The builders make randomly initialised networks; pretrained weights are loaded by
`swa_bench.models.pretrained` from `model.weights`, so a run records which weights it started from.
"""

import torch.nn as nn

from swa_bench.models.registry import register_model

# name, torchvision's weights enum, description, parameters (10 classes), forward MACs at 224x224
_MODELS = [
    ("resnet50", "ResNet50_Weights", "torchvision ResNet-50 (25.6M params)", 23_528_522, 4_087_156_736),
    ("resnet152", "ResNet152_Weights", "torchvision ResNet-152 (60.2M params)", 58_164_298, 11_511_599_104),
    ("densenet161", "DenseNet161_Weights", "torchvision DenseNet-161 (28.7M params)", 26_494_090, 7_725_721_152),
    ("resnet18", "ResNet18_Weights", "torchvision ResNet-18 (11.7M params; small stand-in for tests)", 11_181_642,
     1_813_566_464),
]


def _builder(name: str):
    def build(num_classes: int) -> nn.Module:
        import torchvision.models  # imported when needed: it takes a second, and most runs are CIFAR

        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)

    build.__name__ = name
    return build


for _name, _weights, _description, _params, _macs in _MODELS:
    register_model(_name, _description, weights=_weights, params=_params, macs=_macs)(_builder(_name))
