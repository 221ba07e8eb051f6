"""`SpecModel`: the pydantic base of every spec, and its errors as :class:`SpecError`.

Every spec (dataset, training, prediction, REST request) is a frozen pydantic model
that refuses unknown fields. Whatever door a spec comes through (a YAML file, a
notebook cell, CLI flags, a REST body), it is parsed here, and a mistake becomes one
:class:`~mlaas_jupyter.errors.SpecError` naming the dotted field and, where there is a
fixed set, the allowed values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from ..errors import SpecError

__all__ = ["SpecModel", "load_mapping", "spec_error"]


class SpecModel(BaseModel):
    """Base of the spec models: frozen, unknown fields refused with the allowed ones."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = set(cls.model_fields)
            allowed |= {f.alias for f in cls.model_fields.values() if f.alias}
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError(
                        "unknown_field",
                        "unknown field; allowed fields are {allowed}",
                        {"field": str(key), "allowed": ", ".join(sorted(allowed))},
                    )
        return data

    @classmethod
    def parse(cls, data: Any, where: str = "") -> Self:
        """The model of ``data`` (a mapping, or an instance already);
        :class:`SpecError` naming the field when it is wrong."""
        if isinstance(data, cls):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise spec_error(err, where) from None

    @classmethod
    def parse_json(cls, text: bytes | str, where: str = "") -> Self:
        """The model of a JSON document (a request body); malformed JSON or text that
        is not UTF-8 is a :class:`SpecError` too."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as err:
            raise spec_error(err, where) from None


def spec_error(err: ValidationError, where: str = "") -> SpecError:
    """The first problem of a pydantic validation error as a :class:`SpecError`."""
    first = err.errors(include_url=False)[0]
    loc = [str(part) for part in first.get("loc", ())]
    ctx = first.get("ctx") or {}
    kind = first.get("type", "")
    if kind == "unknown_field":
        loc.append(str(ctx["field"]))
    field = ".".join(part for part in [where, *loc] if part)
    return SpecError(field or "body", _message(kind, first, ctx))


def _message(kind: str, error: Any, ctx: Mapping[str, Any]) -> str:
    given = error.get("input")
    if kind == "missing":
        return "missing"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"got {given!r}; allowed values are {expected.replace(' or ', ', ')}"
    if kind == "json_invalid":
        return f"not valid JSON: {ctx.get('error', error.get('msg'))}"
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind in ("unknown_field", "value_error", "assertion_error") or given is None:
        return message
    return f"{message[0].lower()}{message[1:]}, got {given!r}"


def load_mapping(path: str | Path) -> Mapping[str, Any]:
    """A YAML (or ``.json``) file's top-level mapping; errors name the file and cause."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(str(path), f"cannot read the spec file ({err.strerror})") from err
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise SpecError(str(path), f"not valid YAML/JSON: {err}") from err
    if not isinstance(data, Mapping):
        raise SpecError(str(path), f"expected a mapping, got {type(data).__name__}")
    return data
