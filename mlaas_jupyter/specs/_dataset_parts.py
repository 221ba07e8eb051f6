"""The parts of a :class:`~mlaas_jupyter.specs.dataset.DatasetSpec`: jagged settings,
the split, the event weights, and the classes (YAML form -> :class:`ClassGroup`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from ._base import SpecModel, field_error
from ._samples import Sample, SampleFiles, Weights, positive
from ._types import STRINGS, Flag, Number, Paths, Text

__all__ = [
    "ClassFiles",
    "ClassGroup",
    "Classes",
    "FoldSpec",
    "JaggedSpec",
    "Sample",
    "Split",
    "Weights",
]

_FRACTIONS = ("train", "validation", "test")


def _length(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticCustomError("length", "must be >= 1, got {given}", {"given": value})
        return value
    if isinstance(value, str) and value.strip().lower() in ("max", "quantile"):
        return value.strip().lower()
    raise PydanticCustomError(
        "length",
        "got {given}; allowed values are max, quantile or a number of objects >= 1",
        {"given": repr(value)},
    )


def _quantile(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise PydanticCustomError("quantile", "must be in (0, 1], got {given}", {"given": value})
    return value


def _fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise PydanticCustomError(
            "fraction", "must be between 0 and 1, got {given}", {"given": value}
        )
    return value


def _positive(weight: float) -> float:
    if weight <= 0:
        raise PydanticCustomError("weight", "must be > 0, got {given}", {"given": weight})
    return weight


JaggedLength = Annotated[
    int | Literal["max", "quantile"],
    BeforeValidator(_length),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "enum": ["max", "quantile"]},
            ],
            "description": "objects kept: N, the longest list (max) or a quantile of lengths",
        }
    ),
]
Quantile = Annotated[
    Number,
    AfterValidator(_quantile),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1}),
]
Fraction = Annotated[
    Number,
    AfterValidator(_fraction),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1}),
]


class JaggedSpec(SpecModel):
    """How one variable-length branch becomes a fixed number of columns.

    ``length`` is an integer, ``"max"`` (the longest list after cuts) or
    ``"quantile"`` (the ``quantile`` of the list-length distribution).
    ``sort_by`` names a jagged branch of the same collection used to order the
    objects (descending unless ``descending`` is false) before clipping.
    """

    spec_root = "jagged"

    length: JaggedLength = "max"
    quantile: Quantile = 0.95
    sort_by: Text | None = None
    descending: Flag = True
    pad_value: Number = 0.0
    mask: Flag = True


class Split(SpecModel):
    """Fractions of events (after cuts) for training, validation and test; when one
    is left out it is what the others leave (two left out keep their defaults)."""

    spec_root = "split"

    train: Fraction = 0.8
    validation: Fraction = 0.1
    test: Fraction = 0.1

    @model_validator(mode="before")
    @classmethod
    def _fill_missing(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        given: list[Any] = [data[k] for k in _FRACTIONS if data.get(k) is not None]
        missing = [k for k in _FRACTIONS if data.get(k) is None]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in given)
        if len(missing) == 1 and numbers:
            return {**data, missing[0]: max(0.0, 1.0 - sum(given))}
        return data

    @field_validator("train")
    @classmethod
    def _some_training(cls, value: float) -> float:
        if value <= 0.0:
            raise PydanticCustomError("train", "must be > 0")
        return value

    @model_validator(mode="after")
    def _sum_is_one(self) -> Self:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise PydanticCustomError(
                "split", "train + validation + test must be 1, got {total}", {"total": f"{total:g}"}
            )
        return self


class ClassGroup(SpecModel):
    """Files whose events share one label (``label`` is the class index). Built from
    the ``classes`` mapping; not itself part of the YAML form. A class is one sample
    (its ``files`` and ``xsec``) unless it lists ``samples``; then ``files`` are theirs."""

    spec_root = "classes"

    name: str
    files: tuple[str, ...]
    label: int
    weight: float = 1.0
    xsec: float | None = None
    samples: tuple[Sample, ...] = ()

    @property
    def sample_list(self) -> tuple[Sample, ...]:
        """The samples of this class: the listed ones, or the class itself as one."""
        if self.samples:
            return self.samples
        return (Sample.model_construct(name=self.name, files=self.files, xsec=self.xsec),)


class ClassFiles(SpecModel):
    """One class of the YAML form: its files (a string, a list, or ``{files, weight,
    xsec}``), or several samples ``{samples: {name: {files, xsec}}, weight}``."""

    files: Paths | None = None
    weight: Annotated[Number, AfterValidator(_positive)] = 1.0
    xsec: Annotated[Number, AfterValidator(positive)] | None = Field(
        default=None, description="cross-section in pb"
    )
    samples: dict[str, SampleFiles] | None = Field(
        default=None, description="sample name -> {files, xsec}: several samples, one class"
    )

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str | list | tuple):
            return {"files": data}
        if not isinstance(data, Mapping):
            raise PydanticCustomError(
                "class_type",
                "expected a string or a list of files, or a mapping {{files, weight, xsec}} "
                "or {{samples}}, got {given}",
                {"given": repr(data)},
            )
        if "samples" in data:
            for key in ("files", "xsec"):
                if key in data:
                    raise field_error(key, "give it per sample when the class lists samples")
        elif "files" not in data:
            raise field_error("files", "missing: list the files of this class (or its samples)")
        return data

    @model_validator(mode="after")
    def _some_samples(self) -> ClassFiles:
        if self.samples is not None and not self.samples:
            raise field_error("samples", "give at least one sample")
        return self

    def group(self, name: str, label: int) -> ClassGroup:
        """The :class:`ClassGroup` of this entry: class ``name`` with label ``label``."""
        if self.samples is None:
            return ClassGroup.model_construct(
                name=name, files=self.files, label=label, weight=self.weight, xsec=self.xsec
            )
        samples = tuple(
            Sample.model_construct(name=str(key), files=entry.files, xsec=entry.xsec)
            for key, entry in self.samples.items()
        )
        files = tuple(dict.fromkeys(f for sample in samples for f in sample.files))
        return ClassGroup.model_construct(
            name=name, files=files, label=label, weight=self.weight, samples=samples
        )

    @classmethod
    def of(cls, group: ClassGroup) -> ClassFiles:
        """The YAML form of ``group`` (the inverse of :meth:`group`)."""
        if not group.samples:
            return cls.model_construct(
                files=group.files, weight=group.weight, xsec=group.xsec, samples=None
            )
        entries = {
            s.name: SampleFiles.model_construct(files=s.files, xsec=s.xsec) for s in group.samples
        }
        return cls.model_construct(files=None, weight=group.weight, xsec=None, samples=entries)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        full = handler(schema)
        return {"anyOf": [*STRINGS["anyOf"], full]}


class _ClassesForm:
    """``classes`` written as a mapping name -> files (label = position), kept as a
    tuple of :class:`ClassGroup` (which Python code may also give directly)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        mapping = handler.generate_schema(dict[str, ClassFiles])

        def validate(value: Any, inner: Callable[[Any], dict[str, ClassFiles]]) -> Any:
            if isinstance(value, tuple):  # the Python form; YAML and JSON give mappings
                if not all(isinstance(group, ClassGroup) for group in value):
                    raise PydanticCustomError(
                        "groups_type", "expected a mapping name -> files, or ClassGroup objects"
                    )
                return value
            return tuple(
                entry.group(str(name), label)
                for label, (name, entry) in enumerate(inner(value).items())
            )

        def serialise(value: Any, inner: Callable[[Any], Any]) -> Any:
            return inner({g.name: ClassFiles.of(g) for g in value})

        return core_schema.no_info_wrap_validator_function(
            validate,
            mapping,
            serialization=core_schema.wrap_serializer_function_ser_schema(
                serialise, schema=mapping
            ),
        )


#: the ``classes`` field: a mapping in YAML, a tuple of ClassGroup in Python
Classes = Annotated[tuple[ClassGroup, ...], _ClassesForm()]


class FoldSpec(SpecModel):
    """One fold of a k-fold training (set by the runner on the dataset copy each fold
    trains on, not by users): its ``test`` split is the events whose fold, ``value %
    k``, is ``index``; ``by`` is the integer branch of ``value`` (None: the entry
    number of the event in its file)."""

    spec_root = "dataset.fold"

    index: Annotated[int, Strict(), Field(ge=0)]
    k: Annotated[int, Strict(), Field(ge=2, le=10)]
    by: Text | None = None

    @model_validator(mode="after")
    def _index_below_k(self) -> Self:
        if self.index >= self.k:
            raise field_error("index", f"fold {self.index} of {self.k}: must be below k")
        return self
