"""What a method is: everything about one way of training and reporting (SGD, SWA, EMA, FGE) that the
rest of swa-bench asks, in one place. Each method is one module of this package that subclasses
`Method` and registers it (`@register_method`); the CLI's choices, the config's sections, protocols,
the trainer's hooks, run folders, table columns and curves all read the registry.

Kept free of torch: records and tables read the registry too. The trainer's hooks (`Tracker`, in
tracking.py) are built only by `Method.tracker`, which imports them when a run starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from swa_bench.errors import UserError

if TYPE_CHECKING:  # imported for annotations only: the config imports this package
    from swa_bench.config import Config
    from swa_bench.protocol import Protocol


class UnknownMethodError(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


@dataclass(frozen=True)
class Series:
    """One curve a method's runs draw against epoch: `field` of the metrics rows, as `name`."""

    key: str  # its name in figures' data and in `plot curves --series`
    field: str  # the metrics row's key ("test_acc", "swa_test_acc", ...)
    name: str  # its legend
    color: str
    shades: tuple[str, ...] = ()  # for figures with several settings of one method (SWA variants)
    marked: bool = False  # sparse points (evaluations of an average): drawn with markers
    dashed: bool = False


# What a method's table columns report: the iterate (SGD), one set of averaged weights (SWA, EMA;
# their BN statistics recomputed), or an ensemble of collected models' predictions (FGE).
REPORTS = ("iterate", "weights", "ensemble")
_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")  # a folder, a column prefix (<method>_<point>), a metrics prefix


class Method:
    """A method. Subclasses set the class attributes and override what differs from SGD's behaviour."""

    name: str = ""
    label: str = ""  # how tables and figures name it: "SWA"
    order: int = 99  # its columns' place in tables after SGD (the paper's order: SGD | FGE | SWA)
    beyond_paper: str = ""  # what it is, for a method the paper has no numbers for ("" for the paper's)
    reports: str = "weights"
    section: str | None = None  # its config section (its keys belong to its runs alone)
    section_type: type | None = None  # the section's dataclass
    checkpoint_key: str | None = None  # where its state lies in a checkpoint ("average", "ensemble")
    variants: bool = False  # its settings may be several rows of one model (swa.variant)
    optional: bool = False  # only rows with its settings have it (`available`)
    cycle_key: str | None = None  # the config key of its cycle in steps, for messages
    series: tuple[Series, ...] = ()
    # The series whose colour its learning rate is drawn in (None: its rate is SGD's, not drawn).
    rate_series: str | None = None

    # -- the config ------------------------------------------------------------------------------

    def check_section(self, cfg: Config, c) -> None:
        """Ranges and agreements of its section, checked for every config (a row's settings)."""

    def check_run(self, cfg: Config, c) -> None:
        """Whether a run of this method can be made of the row (`c.fail(key, why)` if not)."""

    def available(self, cfg: Config) -> bool:
        """Whether the row has this method (FGE: only rows with fge settings)."""
        return True

    # -- the run ---------------------------------------------------------------------------------

    def protocol(self, cfg: Config) -> Protocol:
        raise NotImplementedError

    def continues_sgd(self, cfg: Config) -> bool:
        """Whether a run continues the row's SGD run of the same seed (it runs after it)."""
        return False

    def kept_sgd_state(self, cfg: Config) -> int | None:
        """The epoch count of the SGD run's state a run continues from, when that is before the SGD
        run's end (the SGD run keeps it apart); None otherwise."""
        return None

    def folder(self, cfg: Config) -> str:
        """Its runs' folder under <out>/<dataset>/<model>/."""
        return self.name

    def summary_fields(self, cfg: Config) -> dict:
        """The summary's note and variant (the settings a row is labelled with)."""
        return {"note": None, "variant": None}

    def tracker(self, ctx):
        """The trainer's hooks for a run of this method (tracking.py): what it keeps beside the iterate;
        `ctx` is what the run's steps share (swa_bench/training/setup.py)."""
        from swa_bench.methods.tracking import Tracker

        return Tracker(ctx)


# --------------------------------------------------------------------------------------------------
# The registry

_REGISTRY: dict[str, Method] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: add the method to the registry under its name (once)."""
    method = cls()
    problem = _registration_problem(method)
    if problem:
        raise ValueError(f"method {method.name!r} ({cls.__module__}.{cls.__name__}): {problem}")
    _REGISTRY[method.name] = method
    return cls


def unregister_method(name: str) -> None:
    """Remove a registered method (tests that register their own)."""
    _REGISTRY.pop(name, None)


def _registration_problem(method: Method) -> str | None:
    if not _NAME.match(method.name or ""):
        return "the name must be lowercase letters and digits, starting with a letter (up to 16)"
    if method.name in _REGISTRY:
        return "a method of that name is registered already"
    if method.reports not in REPORTS:
        return f"reports must be one of {', '.join(REPORTS)}"
    if (method.section is None) != (method.section_type is None):
        return "a section needs its dataclass, and a dataclass its section name"
    taken = {m.section for m in _REGISTRY.values() if m.section}
    if method.section in taken:
        return f"the config section {method.section!r} belongs to another method"
    if method.section in ("data", "model", "optim", "schedule", "run", "log"):
        return f"the config section {method.section!r} is the run's own"
    return None


def get_method(name: str) -> Method:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMethodError(f"unknown method {name!r} (known: {', '.join(method_names())})") from None


def find_method(name: str) -> Method | None:
    """The method of that name, or None (records of a method no longer registered)."""
    _load()
    return _REGISTRY.get(name)


def method_names() -> list[str]:
    """Every registered method, in table order (SGD first)."""
    return [m.name for m in methods()]


def methods() -> list[Method]:
    _load()
    return sorted(_REGISTRY.values(), key=lambda m: (m.order, m.name))


def checkpoint_keys() -> tuple[str, ...]:
    """The keys methods keep their state under in a checkpoint, those of every recorded checkpoint first."""
    return tuple(dict.fromkeys(["average", "ensemble", *(m.checkpoint_key for m in methods() if m.checkpoint_key)]))


def sections() -> dict[str, Method]:
    """Config section name -> the method it belongs to."""
    return {m.section: m for m in methods() if m.section}


def _load() -> None:
    """Import every module of this package once, so each registers its method."""
    if _LOADED:
        return
    _LOADED.append(True)
    import importlib
    import pkgutil

    import swa_bench.methods as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("base", "tracking"):
            importlib.import_module(f"swa_bench.methods.{module.name}")


_LOADED: list = []
