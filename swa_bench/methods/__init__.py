"""The methods a run can train, one module each, registered by name (base.py says what a method is):

    sgd.py  the baseline: the reference's schedule, the iterate reported at the end of the budget
    swa.py  Stochastic Weight Averaging: the equal average of the iterates, BN recomputed
    ema.py  an exponential moving average of the SGD run's weights (beyond the paper)
    fge.py  Fast Geometric Ensembling: the mean prediction of models collected along cycles

Adding a method is one module here (every module of the package is imported when the registry is
first asked) or, from outside the package, one `@register_method` class imported before use."""

from swa_bench.methods.base import (
    Method,
    Series,
    UnknownMethodError,
    checkpoint_keys,
    find_method,
    get_method,
    method_names,
    methods,
    register_method,
    sections,
    unregister_method,
)

__all__ = [
    "Method",
    "Series",
    "UnknownMethodError",
    "checkpoint_keys",
    "find_method",
    "get_method",
    "method_names",
    "methods",
    "register_method",
    "sections",
    "unregister_method",
]
