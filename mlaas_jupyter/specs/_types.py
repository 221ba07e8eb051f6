"""Field types of the spec models: what a YAML or JSON user writes, checked strictly.

YAML turns ``yes`` into a bool and ``1e-3`` into a string, so lax coercion would hide
mistakes: integers, numbers and flags are strict (a bool is never an integer, ``"ten"``
never a number), and the one YAML surprise that is certainly meant as a number, an
exponent without a dot (``1e-3``), is read as one. Strings are stripped and must not be
empty. Relative paths are resolved against the ``base_dir`` of the validation context.

Mappings that the code reads as ordered pairs (``new_branches``, ``jagged``) are
:class:`Pairs`: the JSON Schema and the serialised form are the user's mapping, the
attribute is a tuple of ``(key, value)`` pairs (a tuple of pairs is accepted from Python).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    Strict,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "STRINGS",
    "Count",
    "Flag",
    "Location",
    "Names",
    "NonNegative",
    "Number",
    "Pairs",
    "Paths",
    "StepSize",
    "Text",
    "choice",
    "names",
    "resolve",
]

_EXPONENT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _text(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError(
            "text_type", "expected a non-empty string, got {given}", {"given": repr(value)}
        )
    return value.strip()


def names(value: Any) -> Any:
    """One string as a 1-tuple, a list as a tuple; anything else is an error."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple):
        raise PydanticCustomError(
            "names_type",
            "expected a string or a list of strings, got {given}",
            {"given": repr(value)},
        )
    return tuple(value)


def _number(value: Any) -> Any:
    # YAML 1.1 reads 1e-3 (no dot) as a string; it can only have meant the number
    if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)
    return value


def resolve(path: str, info: ValidationInfo) -> str:
    """``path`` taken from the context's ``base_dir`` when it is relative and local."""
    base = (info.context or {}).get("base_dir")
    if base is None or "://" in path or Path(path).is_absolute():
        return path
    return str(Path(base) / path)


def _resolve_all(paths: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    return tuple(resolve(path, info) for path in paths)


#: the JSON Schema of :data:`Names`: a string or a list of strings
STRINGS: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}},
    ]
}

#: a non-empty string, stripped
Text = Annotated[str, BeforeValidator(_text), Field(min_length=1)]
#: one string or a list of them (as a tuple)
Names = Annotated[
    tuple[Text, ...],
    BeforeValidator(names),
    WithJsonSchema(STRINGS),
]
#: file paths, folders or globs; relative ones from the context's ``base_dir``
Paths = Annotated[Names, AfterValidator(_resolve_all)]
#: one path; relative from the context's ``base_dir``
Location = Annotated[Text, AfterValidator(resolve)]
#: an integer >= 1 (never a bool or a float)
Count = Annotated[int, Strict(), Field(ge=1)]
#: an integer >= 0
NonNegative = Annotated[int, Strict(), Field(ge=0)]
#: a number (int or float, never a bool or a word)
Number = Annotated[float, BeforeValidator(_number), Strict()]
#: true or false only
Flag = Annotated[bool, Strict()]


def _step_size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticCustomError("step_size", "must be >= 1, got {given}", {"given": value})
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise PydanticCustomError(
        "step_size",
        "expected a number of entries or a size such as '32 MB', got {given}",
        {"given": repr(value)},
    )


#: entries (an integer) or bytes (``"32 MB"``) read per step
StepSize = Annotated[
    int | str,
    BeforeValidator(_step_size),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1}],
            "description": "entries (an integer) or bytes ('32 MB') per step",
        }
    ),
]


def choice(literal: Any, aliases: Mapping[str, str] | None = None) -> BeforeValidator:
    """Case-insensitive choice among the values of the Literal type ``literal`` (plus
    ``aliases``); anything else goes on unchanged, so the error shows what was given."""
    allowed = set(get_args(literal))
    table = {**{name: name for name in allowed}, **(aliases or {})}

    def pick(value: Any) -> Any:
        if isinstance(value, str):
            return table.get(value.strip().lower(), value)
        return value

    return BeforeValidator(pick)


class Pairs:
    """Marker of a ``tuple[tuple[str, V], ...]`` field written as a mapping ``str -> V``.

    The mapping is validated as ``dict[str, value_type]`` (errors name the key), kept
    as ordered pairs, and serialised back into a mapping. From Python a tuple of pairs
    is accepted too; a key given twice there is an error.
    """

    def __init__(self, value_type: Any) -> None:
        self.value_type = value_type

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        mapping = handler.generate_schema(dict[str, self.value_type])  # type: ignore[name-defined]

        def validate(value: Any, inner: Callable[[Any], dict[str, Any]]) -> Any:
            if isinstance(value, tuple):  # the Python form; YAML and JSON give lists
                if not all(isinstance(pair, tuple) and len(pair) == 2 for pair in value):
                    raise PydanticCustomError("pairs_type", "expected (name, value) pairs")
                if len({name for name, _ in value}) != len(value):
                    raise PydanticCustomError("duplicate", "a name is defined twice")
                value = dict(value)
            return tuple(inner(value).items())

        def serialise(value: Any, inner: Callable[[Any], Any]) -> Any:
            return inner(dict(value))

        return core_schema.no_info_wrap_validator_function(
            validate,
            mapping,
            serialization=core_schema.wrap_serializer_function_ser_schema(
                serialise, schema=mapping
            ),
        )
