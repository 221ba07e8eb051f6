"""The simulated samples of a class and their normalisation: cross-section and weights.

A class is one or more samples; each sample's events are weighted to their expected
yield, ``xsec * luminosity * w / sum_w``, where ``w`` is the event's generator weight
(:class:`Weights`) and ``sum_w`` the sum of those weights over the whole sample before
any cut (or the per-file sums stored in the files, :class:`SumOfWeights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from ._base import SpecModel, field_error
from ._types import Number, Paths, Text, choice

__all__ = ["NegativeWeights", "Sample", "SampleFiles", "SumOfWeights", "Weights", "positive"]

NegativeWeights = Literal["abs", "keep", "zero"]


def positive(value: float) -> float:
    if not value > 0:
        raise PydanticCustomError("positive", "must be > 0, got {given}", {"given": value})
    return value


Positive = Annotated[Number, AfterValidator(positive)]


class SumOfWeights(SpecModel):
    """Where the per-file sums of generator weights are stored: a branch of another
    tree (NanoAOD: ``{tree: Runs, branch: genEventSumw}``), summed over its entries."""

    tree: Text
    branch: Text


class Weights(SpecModel):
    """Per-event weights: the branch (or expression) that holds them, how ``sum_w`` of a
    sample is found, and what happens to negative weights.

    ``negative``: ``keep`` them (the physics), take their ``abs`` or set them to
    ``zero`` (what some trainings need). ``sum_w`` is always the signed sum, as
    generators count it, so a sample's yield does not depend on that choice of training.
    """

    spec_root = "weights"

    branch: Text
    sum: SumOfWeights | None = Field(
        default=None, description="per-file sums of weights (default: sum of branch, no cuts)"
    )
    negative: Annotated[NegativeWeights, choice(NegativeWeights)] = "keep"


class SampleFiles(SpecModel):
    """One sample of the YAML form: its files and cross-section (pb)."""

    files: Paths
    xsec: Positive | None = Field(default=None, description="cross-section in pb")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, str | list | tuple):
            return {"files": data}
        if isinstance(data, Mapping) and "files" not in data:
            raise field_error("files", "missing: list the files of this sample")
        return data


class Sample(SpecModel):
    """A simulated sample: files that share one cross-section and one ``sum_w``."""

    name: str
    files: tuple[str, ...]
    xsec: float | None = None
