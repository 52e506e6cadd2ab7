"""Loading a config: the YAML file, then dotted-key overrides (CLI flags and --set), into the typed
sections of schema.py, every key and type checked (one ConfigError line naming the file and the key);
then the checks across keys (checks.py)."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from swa_bench.config.checks import check_semantics
from swa_bench.config.schema import Config, ModelConfig
from swa_bench.errors import ConfigError
from swa_bench.yaml_input import YAMLInputError, load_yaml, shown


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML config, apply dotted-key overrides (from CLI flags and --set), validate."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read config file ({e.__class__.__name__})") from None
    try:
        raw = load_yaml(text)
    except YAMLInputError as e:
        raise ConfigError(f"{where}: {e}") from None
    if raw is None:
        raise ConfigError(f"{where}: config file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: top level must be a mapping of sections, got {type(raw).__name__}")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value, where)
    return config_from_dict(raw, where)


def config_from_dict(raw: dict, where: str) -> Config:
    from swa_bench.config.schema import BUILTIN_SECTIONS
    from swa_bench.methods import sections

    extra = {name: m.section_type for name, m in sections().items() if name not in BUILTIN_SECTIONS}
    cfg = _build(Config, raw, where, prefix="", extra=extra)
    cfg = dataclasses.replace(cfg, model=_typed_model_options(cfg.model, where))
    _check_weights(cfg.model, where)
    check_semantics(cfg, where)
    return cfg


def _typed_model_options(model: ModelConfig, where: str) -> ModelConfig:
    """Check `model.options` against the registered builder's keyword arguments and their types."""
    from swa_bench.models import get_model_entry, model_names

    try:
        entry = get_model_entry(model.name)
    except KeyError:
        raise ConfigError(
            f"{where}: model.name: unknown model {shown(model.name)} (known: {', '.join(model_names())})"
        ) from None
    if not model.options:
        return model
    allowed = entry.options()  # kept in the catalog: the builder (and torch) need not be imported
    options = {}
    for opt, value in model.options.items():
        key = f"model.options.{opt}"
        if opt not in allowed:
            raise ConfigError(
                f"{where}: {key}: not an option of {model.name} (options: {', '.join(allowed) or 'none'})"
            )
        options[opt] = value if allowed[opt] is Any else _coerce(allowed[opt], value, where, key)
    return dataclasses.replace(model, options=options)


def _check_weights(model: ModelConfig, where: str) -> None:
    if model.weights is None:
        if model.weights_path is not None:
            raise ConfigError(f"{where}: model.weights_path: given without model.weights (which weights it holds)")
        return
    from swa_bench.models import get_model_entry

    names = get_model_entry(model.name).weight_names
    if not names:
        raise ConfigError(f"{where}: model.weights: {model.name} has no pretrained weights")
    if model.weights not in names:
        raise ConfigError(
            f"{where}: model.weights: {model.name} has no weights {shown(model.weights)} (known: {', '.join(names)})"
        )


def parse_set_option(item: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value), the value parsed as a YAML scalar (so 0.1, 5, null, true)."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected dotted.key=value")
    key, _, text = item.partition("=")
    key = key.strip()
    try:
        value = load_yaml(text) if text.strip() else None
    except YAMLInputError as e:
        if "not valid YAML" not in str(e):  # too deep, too large: refused
            raise ConfigError(f"--set {shown(key)}: {e}") from None
        value = text  # not YAML: taken as the text it is
    return key, value


def _set_dotted(raw: dict, key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{where}: {key}: cannot set inside {shown(part)}, which is not a section")
        node = nxt
    node[parts[-1]] = value


# --------------------------------------------------------------------------------------------------
# Generic typed construction from the dataclass annotations.

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT_LIMIT = 2**31  # beyond any sensible epoch count, batch size or seed
_SCALARS = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: (f"an integer below {_INT_LIMIT}", lambda v: type(v) is int and abs(v) < _INT_LIMIT),
    float: ("a finite number", lambda v: isinstance(v, float) and math.isfinite(v)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _build(cls, raw: Any, where: str, prefix: str, extra: dict | None = None):
    """`cls` from the mapping `raw`, every key checked; at the top level, `extra` maps the sections of
    methods registered beyond the built-in ones to their dataclasses (built into Config.extra)."""
    if not isinstance(raw, dict):
        label = prefix.rstrip(".") or "top level"
        raise ConfigError(f"{where}: {label}: expected a mapping, got {_type_name(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"} | dict.fromkeys(extra or {})
    unknown = sorted(set(raw) - set(fields), key=str)
    if unknown:
        key = f"{prefix}{unknown[0]}".encode("unicode_escape").decode()  # keep the error on one line
        raise ConfigError(f"{where}: {key}: unknown key (known here: {', '.join(fields)})")
    values = {}
    if extra is not None:
        values["extra"] = {name: _build(t, raw.get(name, {}), where, f"{name}.") for name, t in extra.items()}
        fields = {name: f for name, f in fields.items() if name not in extra}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: {key}: missing value")
            continue
        values[name] = _coerce(hints[name], raw[name], where, key)
    return cls(**values)


def _coerce(tp, value: Any, where: str, key: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, where, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {key}: must be one of {', '.join(map(str, args))}, got {shown(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key}: expected a list, got {_type_name(value)}")
        return tuple(_coerce(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a mapping, got {_type_name(value)}")
        return dict(value)
    if tp is float:
        # PyYAML reads `5e-4` (no dot) as a string; accept number-like text rather than surprise users.
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            value = float(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
    if tp in _SCALARS:
        expected, valid = _SCALARS[tp]
        if not valid(value):
            raise ConfigError(f"{where}: {key}: expected {expected}, got {shown(value)}")
        if tp is str and _CONTROL.search(value):  # names and paths: a NUL or newline is never meant
            raise ConfigError(f"{where}: {key}: contains a control character, got {shown(value)}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # a schema bug, not user input


def _type_name(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
