"""Architectures of the paper, by name: the catalog and `create_model` (see registry.py). Importing
this package imports no architecture (and no torch); building a model imports its module."""

from swa_bench.models.registry import (  # noqa: F401
    count_parameters,
    create_model,
    get_model_entry,
    model_names,
    register_model,
)
