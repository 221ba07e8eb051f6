"""Small checkers that turn loosely typed YAML/JSON values into typed fields.

Each raises :class:`~mlaas_jupyter.errors.SpecError` naming the dotted field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import SpecError

T = TypeVar("T")


def check_keys(where: str, data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = sorted(allowed)
    for key in data:
        if key not in allowed:
            field = f"{where}.{key}" if where else str(key)
            raise SpecError(field, f"unknown field; allowed fields are {', '.join(allowed)}")


def as_mapping(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(field, f"expected a mapping, got {type(value).__name__} {value!r}")
    return value


def as_str(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(field, f"expected a non-empty string, got {value!r}")
    return value.strip()


def as_str_list(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (as_str(field, value),)
    if not isinstance(value, list | tuple):
        raise SpecError(field, f"expected a string or a list of strings, got {value!r}")
    return tuple(as_str(f"{field}[{i}]", item) for i, item in enumerate(value))


def as_int(field: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise SpecError(field, f"must be >= {minimum}, got {value}")
    return value


def as_float(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(field, f"expected a number, got {value!r}")
    return float(value)


def as_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field, f"expected true or false, got {value!r}")
    return value


def as_choice(field: str, value: Any, choices: Mapping[str, T]) -> T:
    """Map ``value`` through ``choices`` (aliases allowed), naming the allowed values."""
    if isinstance(value, str) and value.lower() in choices:
        return choices[value.lower()]
    allowed = ", ".join(sorted({str(v) for v in choices.values()}))
    raise SpecError(field, f"got {value!r}; allowed values are {allowed}")


def load_mapping(path: Path) -> Mapping[str, Any]:
    """A YAML (or ``.json``) file's top-level mapping; errors name the file and cause."""
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(str(path), f"cannot read the spec file ({err.strerror})") from err
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise SpecError(str(path), f"not valid YAML/JSON: {err}") from err
    return as_mapping(str(path), data)
