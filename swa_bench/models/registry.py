"""Models by name: `register_model` decorates a builder, `create_model` calls it."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch.nn as nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    weights: str | None = None  # torchvision's weights enum of the architecture, e.g. "ResNet50_Weights"
    # Measured once and kept here, so that listing models builds none (tests check them against the
    # builder): parameters with 10 classes, and forward multiply-accumulates per image at the
    # model's input size (32x32 for CIFAR, 224x224 for the ImageNet models; None: not counted).
    params: int | None = None
    macs: int | None = None

    def weight_names(self) -> list[str]:
        """Names of the pretrained weights torchvision has for this model ([] if none)."""
        if self.weights is None:
            return []
        import torchvision.models

        return [w.name for w in getattr(torchvision.models, self.weights)]

    def options(self) -> dict[str, inspect.Parameter]:
        """Keyword options a config may set under `model:` (everything but num_classes)."""
        params = inspect.signature(self.builder).parameters
        return {k: p for k, p in params.items() if k != "num_classes"}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, description: str, weights: str | None = None, params: int | None = None,
                   macs: int | None = None):
    def wrap(builder):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, description, weights, params, macs)
        return builder

    return wrap


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def get_model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(model_names())}") from None


def create_model(name: str, num_classes: int, **options) -> nn.Module:
    return get_model_entry(name).builder(num_classes=num_classes, **options)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
