"""`HistogramRequest`: the body of ``POST histograms`` and what the ``CutEditor`` asks.

::

    {"classes": {"signal": ["sig_*.root"], "background": "bkg.root"},
     "branch": "MET_pt",          # or "expression": "sqrt(MET_px**2 + MET_py**2)"
     "cuts": ["nJet >= 2"], "tree": "Events",
     "bins": 50, "range": [0, 200], "max_events": 100000}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Self

from pydantic import (
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ._base import SpecModel, field_error
from ._types import STRINGS, Count, Names, Number, Text, names

__all__ = ["DEFAULT_MAX_EVENTS", "HistogramRequest"]

#: events read per class when neither the request nor the server says how many
DEFAULT_MAX_EVENTS = 1_000_000
MAX_BINS = 10_000


def _pair(value: Any) -> Any:
    if value is not None and not (isinstance(value, list | tuple) and len(value) == 2):
        raise PydanticCustomError(
            "range_type", "expected [low, high], got {given}", {"given": repr(value)}
        )
    return value


#: the files of one class (a mapping value may be a list: it is read, not kept)
Patterns = Annotated[Sequence[Text], BeforeValidator(names), WithJsonSchema(STRINGS)]


def _schema_extra(schema: dict[str, Any]) -> None:
    properties = schema["properties"]
    properties["branch"] = {**properties["expression"], "description": "a branch name"}
    schema["oneOf"] = [{"required": ["branch"]}, {"required": ["expression"]}]
    schema["required"] = ["classes"]
    properties["classes"]["minProperties"] = 1  # _checks: at least one class


class HistogramRequest(SpecModel):
    """Per-class histograms of a ``branch`` (or ``expression``) before and after ``cuts``."""

    model_config = ConfigDict(json_schema_extra=_schema_extra)

    classes: Mapping[str, Patterns] = Field(description="class name -> files, folders or globs")
    expression: Text = Field(
        validation_alias=AliasChoices("expression", "branch"),
        description="the expression to histogram (or give branch)",
    )
    tree: Text | None = None
    cuts: Names = ()
    bins: Annotated[Count, Field(le=MAX_BINS)] = 50
    range: Annotated[tuple[Number, Number] | None, BeforeValidator(_pair)] = Field(
        default=None, description="[low, high] (default: from the values)"
    )
    max_events: Count | None = Field(
        default=None, description="events read per class at most (capped by the server)"
    )

    @model_validator(mode="before")
    @classmethod
    def _branch_or_expression(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and ("branch" in data) == ("expression" in data):
            raise field_error("branch", "give exactly one of branch or expression")
        return data

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if not self.classes:
            raise field_error("classes", "give at least one class: name -> list of files")
        if self.range is not None:
            low, high = self.range
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise field_error("range", f"need finite low < high, got [{low}, {high}]")
        return self

    @property
    def events_per_class(self) -> int:
        """The events read per class at most."""
        return DEFAULT_MAX_EVENTS if self.max_events is None else self.max_events

    @classmethod
    def from_dict(cls, data: Any, cap: int | None = None) -> HistogramRequest:
        """Check a JSON body; ``max_events`` is capped at ``cap`` (and is ``cap`` when
        not given). SpecError names the field."""
        request = cls.parse(data)
        if cap is None:
            return request
        wanted = request.max_events if request.max_events is not None else cap
        return request.model_copy(update={"max_events": min(cap, wanted)})
