"""`SpecModel`: the pydantic base of every spec, and its errors as :class:`SpecError`.

Every spec (dataset, training, prediction, REST request) is a frozen pydantic model
that refuses unknown fields. Whatever door a spec comes through (a YAML file, a
notebook cell, CLI flags, a REST body), it is parsed here, and a mistake becomes one
:class:`~mlaas_jupyter.errors.SpecError` naming the dotted field and, where there is a
fixed set, the allowed values. A spec is always valid: building one in Python raises
the same :class:`SpecError`, and ``model_copy(update=...)`` validates the copy again.
An unknown field or value is answered with the nearest allowed one (:func:`nearest`):
``dataset.branchs: unknown field; did you mean branches? allowed fields are ...``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self, get_args

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ErrorType

from ..errors import SpecError

__all__ = ["SpecModel", "field_error", "load_mapping", "nearest", "spec_error", "unknown_field"]


class SpecModel(BaseModel):
    """Base of the spec models: frozen, unknown fields refused with the allowed ones."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: dotted name of this spec in messages when it is parsed on its own
    #: (``"training"`` for :class:`TrainConfig`), empty for a whole document
    spec_root: ClassVar[str] = ""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise spec_error(err, self.spec_root) from None

    # as RootModel does: validation (of nested specs too) must not go through this
    # __init__, or a nested error would surface as a SpecError inside a ValidationError
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    # "wrap", not "before": a wrap validator runs before every "before" validator of
    # the model (its subclasses' run first otherwise), so a misspelt "datset" is named
    # as such rather than reported as "dataset: missing"
    @model_validator(mode="wrap")
    @classmethod
    def _known_fields(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if isinstance(data, Mapping):
            allowed = set(cls.model_fields) | _aliases(cls)
            for key in data:
                if key not in allowed:
                    listed = allowed - {n for n, f in cls.model_fields.items() if f.exclude}
                    raise PydanticCustomError(
                        "unknown_field",
                        "{message}",
                        {"field": str(key), "message": unknown_field(str(key), listed)},
                    )
        return handler(data)

    @classmethod
    def parse(
        cls, data: Any, where: str | None = None, *, context: Mapping[str, Any] | None = None
    ) -> Self:
        """The model of ``data`` (a mapping, or an instance already);
        :class:`SpecError` naming the field (below ``where``, by default
        :attr:`spec_root`) when it is wrong. ``context`` reaches the validators
        (``base_dir``: the folder relative paths are taken from)."""
        if isinstance(data, cls):
            return data
        try:
            return cls.model_validate(data, context=dict(context or {}))
        except ValidationError as err:
            raise spec_error(err, cls.spec_root if where is None else where) from None

    @classmethod
    def parse_json(cls, text: bytes | str, where: str | None = None) -> Self:
        """The model of a JSON document (a request body); malformed JSON or text that
        is not UTF-8 is a :class:`SpecError` too."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as err:
            raise spec_error(err, cls.spec_root if where is None else where) from None

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with ``update`` the changed spec is validated again (SpecError)."""
        if not update:
            return super().model_copy(deep=deep)
        changed = type(self).parse(self._copy_data(update))
        return BaseModel.model_copy(changed, deep=True) if deep else changed

    def _copy_data(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """The field values that :meth:`model_copy` validates (hook for derived fields)."""
        return {**{name: getattr(self, name) for name in type(self).model_fields}, **update}


def _aliases(cls: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for info in cls.model_fields.values():
        if info.alias:
            names.add(info.alias)
        if isinstance(info.validation_alias, str):
            names.add(info.validation_alias)
        elif isinstance(info.validation_alias, AliasChoices):
            names |= {c for c in info.validation_alias.choices if isinstance(c, str)}
    return names


def nearest(given: str, allowed: Iterable[str]) -> str | None:
    """The allowed name that ``given`` most likely misspells (case aside), or None when
    none is close (:func:`difflib.get_close_matches`)."""
    names = {name.lower(): name for name in sorted(allowed, reverse=True)}
    close = difflib.get_close_matches(given.strip().lower(), list(names), n=1, cutoff=0.7)
    return names[close[0]] if close else None


def unknown_field(given: str, allowed: Iterable[str], kind: str = "field") -> str:
    """``unknown field; did you mean branches? allowed fields are ...``: the message of a
    ``given`` name outside ``allowed`` (every spec model's, and the few hand-checked)."""
    names = sorted(set(allowed))
    guess = nearest(given, names)
    hint = f"did you mean {guess}? " if guess is not None else ""
    return f"unknown {kind}; {hint}allowed {kind}s are {', '.join(names)}"


def field_error(field: str, message: str) -> PydanticCustomError:
    """An error to raise inside a validator that names ``field`` (below the model
    being validated), for checks that span several fields."""
    return PydanticCustomError("field_error", message, {"field": field})


def spec_error(err: ValidationError, where: str = "") -> SpecError:
    """The first problem of a pydantic validation error as a :class:`SpecError`."""
    errors = err.errors(include_url=False)
    first = errors[0]
    head = tuple(first.get("loc", ()))[:1]
    # of the alternatives of a union, the one that got furthest says most
    same_field = [e for e in errors if tuple(e.get("loc", ()))[:1] == head]
    first = max(same_field, key=lambda e: len(e.get("loc", ())))
    loc: list[Any] = [where, *first.get("loc", ())]
    ctx = first.get("ctx") or {}
    kind = first.get("type", "")
    if kind in ("unknown_field", "field_error") and ctx.get("field"):
        loc.append(str(ctx["field"]))
    return SpecError(_dotted(loc) or "body", _message(kind, first, ctx))


#: the names pydantic gives the members of a union in an error's location (``path.str``)
_UNION_TAGS = re.compile(
    r"^(str|int|float|bool|list|dict|tuple|set|none|bytes|any|"
    r"function-(after|before|wrap|plain)|lax-or-strict|json-or-python|constrained-\w+|"
    r"literal|nullable|tagged-union|union|chain)(\[.*\])?$"
)


def _dotted(loc: Sequence[Any]) -> str:
    """``("jagged", "Jet_*", "length")`` -> ``jagged.Jet_*.length``; positions in
    lists as ``branches[1]``; the union members pydantic names are left out."""
    out = ""
    for part in loc:
        if isinstance(part, str) and _UNION_TAGS.match(part):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "":
            out = f"{out}.{part}" if out else str(part)
    return out


_BUILTIN = set(get_args(ErrorType))
_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
}
_MAPPINGS = {"dict_type", "model_type", "model_attributes_type"}
_BOUNDS = {
    "greater_than": "gt",
    "greater_than_equal": "ge",
    "less_than": "lt",
    "less_than_equal": "le",
}
_SIGNS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _message(kind: str, error: Any, ctx: Mapping[str, Any]) -> str:
    given = error.get("input")
    if kind == "missing":
        return "missing"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        values = sorted(expected.split(", "))
        guess = nearest(given, values) if isinstance(given, str) else None
        hint = f"did you mean {guess}? " if guess is not None else ""
        return f"got {given!r}; {hint}allowed values are {', '.join(values)}"
    if kind == "json_invalid":
        return f"not valid JSON: {ctx.get('error', error.get('msg'))}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {given!r}"
    if kind in _MAPPINGS:
        return f"expected a mapping, got {type(given).__name__} {given!r}"
    if kind in _BOUNDS:
        bound = _BOUNDS[kind]
        return f"must be {_SIGNS[bound]} {ctx.get(bound)}, got {given!r}"
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind not in _BUILTIN or kind in ("value_error", "assertion_error") or given is None:
        return message  # our own messages say what was given where it helps
    return f"{message[0].lower()}{message[1:]}, got {given!r}"


def load_mapping(path: str | Path) -> Mapping[str, Any]:
    """A YAML (or ``.json``) file's top-level mapping; errors name the file and cause."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(str(path), f"cannot read the spec file ({err.strerror})") from err
    except UnicodeDecodeError as err:  # a ROOT file given as the spec, say
        raise SpecError(
            str(path), f"not a YAML/JSON text file: byte {err.start} is not UTF-8"
        ) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise SpecError(str(path), f"not valid YAML/JSON: {err}") from err
    if not isinstance(data, Mapping):
        raise SpecError(str(path), f"expected a mapping, got {type(data).__name__} {data!r}")
    return data
