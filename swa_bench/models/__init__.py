"""Architectures of the paper, registered by name (see registry.py)."""

from swa_bench.models.registry import (  # noqa: F401
    count_parameters,
    create_model,
    get_model_entry,
    model_names,
    register_model,
)

# Importing a module registers its models.
from swa_bench.models import (  # noqa: F401,E402
    digits_cnn,
    preresnet,
    pyramidnet,
    shake_shake,
    torchvision_models,
    vgg,
    wide_resnet,
)
