"""YAML read from users (config files, --set values) with the guards a hostile file needs: a
duplicated key is an error rather than a silent overwrite, a document whose aliases expand it
beyond a sane size is refused before anything walks it, and nesting too deep for the parser is one
line rather than a RecursionError. Error text shows values shortened, so no message can be huge.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_VALUES = 20_000  # scalars and containers a config may expand to (the shipped ones: under 200)


class YAMLInputError(ValueError):
    """One line saying what is wrong (without the file name, which the caller adds)."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first != key_node.start_mark.line + 1:
                raise YAMLInputError(
                    f"{shown(key)}: duplicated key (lines {first} and {key_node.start_mark.line + 1}); "
                    f"the second would silently replace the first"
                )
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse `text` with the safe loader and the guards above."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise YAMLInputError("nested too deeply to read") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise YAMLInputError(f"not valid YAML{at}: {getattr(e, 'problem', None) or 'invalid YAML'}") from None
    _check_size(value)
    return value


def _check_size(value: Any) -> None:
    """Count what `value` expands to, shared (aliased) parts once per use, stopping at the limit."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise YAMLInputError(f"expands to more than {MAX_VALUES} values (repeated aliases?); not read")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def shown(value: Any, limit: int = 60) -> str:
    """repr(value) for a message, shortened: a hostile value must not make a huge error line."""
    if isinstance(value, (dict, list, tuple)) and len(value) > 20:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value) if not isinstance(value, (dict, list, tuple)) else _shallow_repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _shallow_repr(value) -> str:
    # repr of a nested alias structure can be exponentially long: only the first level is spelled out
    if isinstance(value, dict):
        inner = ", ".join(f"{k!r}: {_brief(v)}" for k, v in list(value.items())[:5])
    else:
        inner = ", ".join(_brief(v) for v in list(value)[:5])
    opening, closing = (
        ("{", "}") if isinstance(value, dict) else (("[", "]") if isinstance(value, list) else ("(", ")"))
    )
    return opening + inner + (", ..." if len(value) > 5 else "") + closing


def _brief(value) -> str:
    if isinstance(value, (dict, list, tuple)):
        return f"<{type(value).__name__}>"
    text = repr(value)
    return text if len(text) <= 20 else text[:20] + "..."
