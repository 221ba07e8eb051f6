"""`DatasetSpec`: everything that says which events become which training vectors.

A spec is built in Python or loaded from YAML/JSON with :meth:`DatasetSpec.from_dict`
/ :meth:`DatasetSpec.from_file`. Validation happens once, at construction, and every
error names the field and, where there is a fixed set, the allowed values.

YAML form::

    tree: events
    classes:                       # one label per group, in this order
      background: [bkg_*.root]
      signal: {files: [sig.root], weight: 2.0}
    branches: ["Muon_*", "MET_*"]  # include patterns (fnmatch)
    exclude: ["*_Charge"]
    new_branches: {mu_pt: "sqrt(Muon_Px**2 + Muon_Py**2)"}
    cuts: ["NMuon >= 1"]
    jagged:
      "*": {length: max}
      "Muon_*": {length: 4, sort_by: mu_pt, pad_value: 0, mask: true}
    normalisation: standard        # none | minmax | standard
    split: {train: 0.8, validation: 0.1, test: 0.1}
    weights: {branch: EventWeight}
    balance: weights               # none | weights | sample
    seed: 42
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import SpecError
from ._validate import (
    as_bool,
    as_choice,
    as_float,
    as_int,
    as_mapping,
    as_str,
    check_keys,
    load_mapping,
)

__all__ = ["ClassGroup", "DatasetSpec", "JaggedSpec", "Split"]

Normalisation = Literal["none", "minmax", "standard"]
Balance = Literal["none", "weights", "sample"]
NonFinite = Literal["error", "drop"]

_NORMALISATIONS: dict[str, Normalisation] = {
    "none": "none",
    "minmax": "minmax",
    "min-max": "minmax",
    "standard": "standard",
}
_BALANCES: dict[str, Balance] = {"none": "none", "weights": "weights", "sample": "sample"}
_NONFINITE: dict[str, NonFinite] = {"error": "error", "drop": "drop"}


@dataclass(frozen=True)
class ClassGroup:
    """Files whose events share one label (``label`` is the class index)."""

    name: str
    files: tuple[str, ...]
    label: int
    weight: float = 1.0


@dataclass(frozen=True)
class JaggedSpec:
    """How one variable-length branch becomes a fixed number of columns.

    ``length`` is an integer, ``"max"`` (the longest list after cuts) or
    ``"quantile"`` (the ``quantile`` of the list-length distribution).
    ``sort_by`` names a jagged branch of the same collection used to order the
    objects (descending unless ``descending`` is false) before clipping.
    """

    length: int | Literal["max", "quantile"] = "max"
    quantile: float = 0.95
    sort_by: str | None = None
    descending: bool = True
    pad_value: float = 0.0
    mask: bool = True

    @classmethod
    def from_dict(cls, where: str, data: Any) -> JaggedSpec:
        data = as_mapping(where, data)
        check_keys(
            where, data, ["length", "quantile", "sort_by", "descending", "pad_value", "mask"]
        )
        length: int | Literal["max", "quantile"] = "max"
        if "length" in data:
            raw = data["length"]
            if isinstance(raw, int) and not isinstance(raw, bool):
                length = as_int(f"{where}.length", raw, minimum=1)
            else:
                length = as_choice(f"{where}.length", raw, {"max": "max", "quantile": "quantile"})
        quantile = as_float(f"{where}.quantile", data.get("quantile", 0.95))
        if not 0.0 < quantile <= 1.0:
            raise SpecError(f"{where}.quantile", f"must be in (0, 1], got {quantile}")
        sort_by = data.get("sort_by")
        return cls(
            length=length,
            quantile=quantile,
            sort_by=None if sort_by is None else as_str(f"{where}.sort_by", sort_by),
            descending=as_bool(f"{where}.descending", data.get("descending", True)),
            pad_value=as_float(f"{where}.pad_value", data.get("pad_value", 0.0)),
            mask=as_bool(f"{where}.mask", data.get("mask", True)),
        )


@dataclass(frozen=True)
class Split:
    """Fractions of events (after cuts) for training, validation and test."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        for name in ("train", "validation", "test"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SpecError(f"split.{name}", f"must be between 0 and 1, got {value}")
        if self.train <= 0.0:
            raise SpecError("split.train", "must be > 0")
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise SpecError("split", f"train + validation + test must be 1, got {total:g}")


@dataclass(frozen=True)
class DatasetSpec:
    """Validated description of a dataset: files, classes, features, cuts, layout.

    Exactly one of these labels the events: ``classes`` with more than one group
    (label = group index), ``label_branch`` (integer label read per event), or
    ``target`` (a regression target expression).
    """

    classes: tuple[ClassGroup, ...]
    tree: str | None = None
    branches: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    new_branches: tuple[tuple[str, str], ...] = ()
    cuts: tuple[str, ...] = ()
    jagged: tuple[tuple[str, JaggedSpec], ...] = (("*", JaggedSpec()),)
    normalisation: Normalisation = "standard"
    split: Split = field(default_factory=Split)
    seed: int = 42
    weight_branch: str | None = None
    balance: Balance = "none"
    label_branch: str | None = None
    class_names: tuple[str, ...] = ()
    target: str | None = None
    nonfinite: NonFinite = "error"
    step_size: str | int = "32 MB"
    shuffle_buffer: int = 100_000

    def __post_init__(self) -> None:
        if not self.classes:
            raise SpecError("classes", "at least one group of files is required")
        for group in self.classes:
            if not group.files:
                raise SpecError(f"classes.{group.name}", "the group has no files")
        if self.label_branch is None and self.target is None and len(self.classes) < 2:
            raise SpecError(
                "classes",
                "a classifier needs two or more classes (or set label_branch, or target "
                "for regression)",
            )
        names = [name for name, _ in self.new_branches]
        if len(set(names)) != len(names):
            raise SpecError("new_branches", "a name is defined twice")
        if self.shuffle_buffer < 0:
            raise SpecError("shuffle_buffer", f"must be >= 0, got {self.shuffle_buffer}")

    # -- derived views -------------------------------------------------------
    @property
    def task(self) -> Literal["binary", "multiclass", "regression"]:
        if self.target is not None:
            return "regression"
        return "binary" if len(self.labels) == 2 else "multiclass"

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names in label order."""
        if self.label_branch is not None:
            return self.class_names or ("0", "1")
        return tuple(group.name for group in self.classes)

    @property
    def new_branch_map(self) -> dict[str, str]:
        return dict(self.new_branches)

    def jagged_for(self, branch: str) -> JaggedSpec:
        """The jagged settings for ``branch``: the last matching pattern wins."""
        chosen = JaggedSpec()
        for pattern, settings in self.jagged:
            if fnmatch.fnmatchcase(branch, pattern):
                chosen = settings
        return chosen

    def with_changes(self, **changes: Any) -> DatasetSpec:
        return replace(self, **changes)

    # -- loading -------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> DatasetSpec:
        """Load a YAML or JSON spec; relative file paths are taken from its folder."""
        path = Path(path)
        data = load_mapping(path)
        if "dataset" in data:  # a combined training spec
            data = as_mapping("dataset", data["dataset"])
        return cls.from_dict(data, base_dir=path.parent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path | None = None) -> DatasetSpec:
        from ._spec_parse import parse_spec

        return parse_spec(cls, data, base_dir)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that :meth:`from_dict` turns back into an equal spec."""
        from ._spec_parse import spec_to_dict

        return spec_to_dict(self)
