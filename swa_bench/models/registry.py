"""Models by name. The catalog below holds what is known of each model without building it (where
its builder lives, a description, its options and their types, parameters and multiply-accumulates,
pretrained weights); the builder's module, and with it torch, is imported only when a model is
built. So listing models and reading configs cost no torch import; tests check every kept figure
against the builder.

`register_model` adds a builder at run time (tests, your own models); `create_model` builds one.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal


@dataclass(frozen=True)
class ModelEntry:
    name: str
    # The builder: a callable, or "module:function" under swa_bench.models, imported when needed.
    target: Callable[..., Any] | str
    description: str
    weights: str | None = None  # torchvision's weights enum of the architecture, e.g. "ResNet50_Weights"
    weight_names: tuple[str, ...] = ()  # the members of that enum
    # Keyword options a config may set under `model:` -> their types (None: read from the builder).
    option_types: dict[str, Any] | None = None
    # Measured once and kept here, so that listing models builds none (tests check them against the
    # builder): parameters with 10 classes, and forward multiply-accumulates per image of input_shape
    # (None: not counted).
    params: int | None = None
    macs: int | None = None
    input_shape: tuple[int, int, int] = (3, 32, 32)  # (channels, height, width) the model takes
    fixed: dict = field(default_factory=dict)  # keyword arguments the builder always gets
    label: str = ""  # how tables and figures name it; "" -> the name
    any_input_size: bool = False  # True: adaptive pooling takes any image size (torchvision's models)

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def builder(self) -> Callable[..., Any]:
        if callable(self.target):
            return self.target
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(f"swa_bench.models.{module}"), function)

    def options(self) -> dict[str, Any]:
        """Keyword options a config may set under `model:` -> their types."""
        if self.option_types is not None:
            return self.option_types
        return builder_options(self.builder, self.fixed)


def builder_options(builder: Callable[..., Any], fixed: dict) -> dict[str, Any]:
    """A builder's keyword options (all but num_classes and the fixed ones) -> their annotated types."""
    hints = typing.get_type_hints(builder)
    return {
        k: hints.get(k, Any) for k in inspect.signature(builder).parameters if k != "num_classes" and k not in fixed
    }


_IMAGENET = (3, 224, 224)
_DIGITS = (1, 8, 8)
_V1, _V1_V2 = ("IMAGENET1K_V1",), ("IMAGENET1K_V1", "IMAGENET1K_V2")

_REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        ModelEntry(
            "vgg16",
            "vgg:vgg16",
            "VGG-16, no BatchNorm, dropout classifier (15.2M params)",
            params=15_245_130,
            macs=313_725_952,
            label="VGG-16",
            option_types={"dropout": float},
        ),
        ModelEntry(
            "preresnet164",
            "preresnet:preresnet164",
            "PreResNet-164, bottleneck, 18 blocks per stage (1.70M params)",
            params=1_703_258,
            macs=247_646_720,
            label="PreResNet-164",
            option_types={},
        ),
        ModelEntry(
            "preresnet110",
            "preresnet:preresnet110",
            "PreResNet-110 of the reference README, bottleneck, 12 blocks per stage",
            params=1_146_842,
            macs=167_430_656,
            label="PreResNet-110",
            option_types={},
        ),
        ModelEntry(
            "preresnet20",
            "preresnet:preresnet20",
            "PreResNet-20, basic blocks, 3 per stage (0.27M params)",
            params=272_282,
            macs=40_813_184,
            label="PreResNet-20",
            option_types={},
        ),
        ModelEntry(
            "preresnet32",
            "preresnet:preresnet32",
            "PreResNet-32, basic blocks, 5 per stage (0.46M params)",
            params=466_714,
            macs=69_124_736,
            label="PreResNet-32",
            option_types={},
        ),
        ModelEntry(
            "wrn28x10",
            "wide_resnet:wrn28x10",
            "WideResNet-28-10, reference variant (36.5M params)",
            params=36_489_290,
            macs=5_951_117_568,
            label="WRN-28-10",
            option_types={"dropout": float, "final_bn_momentum": float, "bn_weight_init": Literal["uniform", "ones"]},
        ),
        ModelEntry(
            "pyramidnet272",
            "pyramidnet:pyramidnet272",
            "PyramidNet-272, alpha 200, bottleneck, ShakeDrop off (26.2M params)",
            params=26_210_842,
            macs=4_488_778_176,
            label="PyramidNet-272",
            option_types={"depth": int, "alpha": float, "shakedrop": bool, "shakedrop_last_keep": float},
        ),
        ModelEntry(
            "shakeshake26_2x64d",
            "shake_shake:shakeshake26_2x64d",
            "Shake-Shake-26 2x64d, Shake-Shake-Image (11.65M params)",
            params=11_653_978,
            macs=1_685_506_560,
            label="Shake-Shake-2x64d",
            option_types={"depth": int, "width": int},
        ),
        *(
            ModelEntry(
                arch,
                "torchvision_models:torchvision_model",
                f"torchvision {label} ({size}{extra})",
                weights=f"{weights}_Weights",
                weight_names=names,
                params=params,
                macs=macs,
                input_shape=_IMAGENET,
                fixed={"arch": arch},
                label=label,
                option_types={},
                any_input_size=True,
            )
            for arch, label, size, extra, weights, names, params, macs in [
                ("resnet50", "ResNet-50", "25.6M params", "", "ResNet50", _V1_V2, 23_528_522, 4_087_156_736),
                ("resnet152", "ResNet-152", "60.2M params", "", "ResNet152", _V1_V2, 58_164_298, 11_511_599_104),
                ("densenet161", "DenseNet-161", "28.7M params", "", "DenseNet161", _V1, 26_494_090, 7_725_721_152),
                (
                    "resnet18",
                    "ResNet-18",
                    "11.7M params",
                    "; small stand-in for tests",
                    "ResNet18",
                    _V1,
                    11_181_642,
                    1_813_566_464,
                ),
            ]
        ),
        ModelEntry(
            "digits_cnn",
            "digits_cnn:digits_cnn",
            "small BN convnet for 1x8x8 digits (demo)",
            params=30_762,
            input_shape=_DIGITS,
            label="digits CNN",
            option_types={"width": int},
        ),
        ModelEntry(
            "digits_mlp",
            "digits_cnn:digits_mlp",
            "small BN multilayer perceptron for 1x8x8 digits (demo's second row)",
            params=26_378,
            input_shape=_DIGITS,
            label="digits MLP",
            option_types={"width": int},
        ),
    ]
}


def register_model(
    name: str,
    description: str,
    weights: str | None = None,
    params: int | None = None,
    macs: int | None = None,
    input_shape: tuple[int, int, int] = (3, 32, 32),
):
    """Decorator: add `builder` (num_classes, **options) -> nn.Module under `name`."""

    def wrap(builder):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        names = () if weights is None else _enum_names(weights)
        _REGISTRY[name] = ModelEntry(
            name, builder, description, weights, names, params=params, macs=macs, input_shape=input_shape
        )
        return builder

    return wrap


def _enum_names(weights: str) -> tuple[str, ...]:
    import torchvision.models

    return tuple(w.name for w in getattr(torchvision.models, weights))


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def get_model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(model_names())}") from None


def check_input_size(name: str, split: str, size: tuple[int, int]) -> None:
    """ValueError, in words, if `split` images of (height, width) `size` cannot go through the model."""
    entry = get_model_entry(name)
    if not entry.any_input_size and tuple(size) != tuple(entry.input_shape[1:]):
        h, w = entry.input_shape[1:]
        raise ValueError(
            f"{split} images reach the model at {size[0]}x{size[1]}, but {name} takes {h}x{w} "
            f"(its classifier is sized for that); use images of that size"
        )


def create_model(name: str, num_classes: int, **options):
    entry = get_model_entry(name)
    return entry.builder(num_classes=num_classes, **entry.fixed, **options)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
