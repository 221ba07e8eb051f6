"""`DatasetSpec`: everything that says which events become which training vectors.

A spec is built in Python or loaded from YAML/JSON with :meth:`DatasetSpec.from_dict`
/ :meth:`DatasetSpec.from_file`. Validation happens once, at construction, and every
error is a :class:`~mlaas_jupyter.errors.SpecError` naming the dotted field and, where
there is a fixed set, the allowed values.

YAML form (what :meth:`DatasetSpec.model_json_schema` describes)::

    tree: events
    luminosity: 138000             # pb^-1: weight each sample to its expected yield
    classes:                       # one label per group, in this order
      background:
        samples:                   # several samples, one class
          ttbar: {files: [tt_*.root], xsec: 833.9}     # pb
          ttW: {files: [ttw.root], xsec: 0.6}
      signal: {files: [sig.root], xsec: 0.5071}
    branches: ["Muon_*", "MET_*"]  # include patterns (fnmatch)
    exclude: ["*_Charge"]
    new_branches: {mu_pt: "sqrt(Muon_Px**2 + Muon_Py**2)"}
    cuts: ["NMuon >= 1"]
    jagged:
      "*": {length: max}
      "Muon_*": {length: 4, sort_by: mu_pt, pad_value: 0, mask: true}
    normalisation: standard        # none | minmax | standard (also: normalization)
    split: {train: 0.8, validation: 0.1, test: 0.1}
    weights:                       # per-event weights; with xsec: generator weights
      branch: genWeight
      sum: {tree: Runs, branch: genEventSumw}   # default: sum of branch, before cuts
      negative: keep               # keep | abs | zero
    balance: weights               # none | weights (equal yields) | sample
    on_error: stop                 # stop | skip: a truncated or damaged file
    seed: 42

In Python the mappings are ordered tuples: ``classes`` a tuple of :class:`ClassGroup`
(label = position), ``new_branches`` ``(name, expression)`` pairs and ``jagged``
``(pattern, JaggedSpec)`` pairs; ``files`` (with ``label_branch`` or ``target``) is
one class ``"all"``. Each event of a sample with ``xsec`` weighs
``xsec * luminosity * w / sum_w`` (times the class ``weight``), see
:mod:`mlaas_jupyter.specs._samples`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AliasChoices,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from ..errors import SpecError
from ._base import SpecModel, field_error, load_mapping
from ._dataset_parts import Classes, ClassFiles, ClassGroup, FoldSpec, JaggedSpec, Split
from ._samples import Sample, SumOfWeights, Weights, positive
from ._types import Names, NonNegative, Number, Pairs, Paths, StepSize, Text, choice

__all__ = [
    "ClassFiles",
    "ClassGroup",
    "DatasetSpec",
    "FoldSpec",
    "JaggedSpec",
    "Sample",
    "Split",
    "SumOfWeights",
    "Weights",
]

NormalisationName = Literal["minmax", "none", "standard"]
BalanceName = Literal["none", "sample", "weights"]
NonFiniteName = Literal["drop", "error"]
OnErrorName = Literal["skip", "stop"]
Task = Literal["binary", "multiclass", "regression"]


def _schema_extra(schema: dict[str, Any]) -> None:
    properties = schema["properties"]
    properties["classes"].pop("default", None)  # classes or files: one of them is given
    # the defaults in the user's form (mappings), not as the pairs kept in Python
    properties["new_branches"]["default"] = {}
    properties["jagged"]["default"] = {"*": JaggedSpec().model_dump(exclude_none=True)}
    properties["normalisation"]["description"] = "case-insensitive; min-max is minmax"
    properties["normalization"] = {
        **properties["normalisation"],
        "description": "the same as normalisation",
    }
    schema["oneOf"] = [{"required": ["classes"]}, {"required": ["files"]}]


class DatasetSpec(SpecModel):
    """Validated description of a dataset: files, classes, features, cuts, layout.

    Exactly one of these labels the events: ``classes`` with more than one group
    (label = group index), ``label_branch`` (integer label read per event), or
    ``target`` (a regression target expression).
    """

    model_config = ConfigDict(json_schema_extra=_schema_extra)
    #: its fields are named as in a training spec (``dataset.branches``), whether the
    #: dataset came alone (a dataset file, ``POST stats``) or inside a training spec
    spec_root = "dataset"

    classes: Classes = Field(default=(), description="class name -> files (or {files, weight})")
    files: Paths | None = Field(default=None, description="files of a label_branch or target")
    tree: Text | None = None
    label_branch: Text | None = Field(default=None, description="integer label per event")
    class_names: Names = Field(default=(), description="names of the label_branch values")
    target: Text | None = Field(default=None, description="regression target expression")
    branches: Names = Field(default=("*",), description="fnmatch patterns of the features")
    exclude: Names = ()
    new_branches: Annotated[tuple[tuple[str, str], ...], Pairs(Text)] = Field(
        default=(), description="name -> expression"
    )
    cuts: Names = ()
    jagged: Annotated[tuple[tuple[str, JaggedSpec], ...], Pairs(JaggedSpec)] = Field(
        default=(("*", JaggedSpec()),), description="branch pattern -> settings (last match)"
    )
    normalisation: Annotated[
        NormalisationName, choice(NormalisationName, {"min-max": "minmax"})
    ] = Field(default="standard", validation_alias=AliasChoices("normalisation", "normalization"))
    split: Split = Field(default_factory=Split)
    seed: NonNegative = 42
    luminosity: Annotated[Number, AfterValidator(positive)] | None = Field(
        default=None, description="integrated luminosity in pb^-1 (with each sample's xsec)"
    )
    weights: Weights | None = None
    balance: Annotated[BalanceName, choice(BalanceName)] = "none"
    nonfinite: Annotated[NonFiniteName, choice(NonFiniteName)] = Field(
        default="error", description="events with NaN/inf features: error or drop"
    )
    on_error: Annotated[OnErrorName, choice(OnErrorName)] = Field(
        default="stop",
        description=(
            "a file that cannot be opened or read (truncated, damaged): stop the job, or "
            "skip it with a note counting the events lost"
        ),
    )
    step_size: StepSize = "32 MB"
    shuffle_buffer: NonNegative = 100_000
    #: set by the k-fold runner on the copy each fold trains on (training.folds)
    fold: SkipJsonSchema[FoldSpec | None] = None

    # derived once, at validation (read in loops)
    _labels: tuple[str, ...] = PrivateAttr(default=())
    _task: Task = PrivateAttr(default="binary")

    @model_validator(mode="before")
    @classmethod
    def _labelling(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        has_classes, has_files = data.get("classes") is not None, data.get("files") is not None
        if has_classes and has_files:
            raise field_error(
                "files", "give either classes (one label per group) or files, not both"
            )
        if not has_classes and not has_files:
            raise field_error(
                "classes", "missing: give classes (name -> files) or files + label_branch"
            )
        if has_files and data.get("label_branch") is None and data.get("target") is None:
            raise field_error(
                "label_branch", "with a plain files list, name the label_branch or target"
            )
        return data

    @model_validator(mode="after")
    def _groups_and_labels(self) -> Self:
        if self.files is not None:
            if not self.files:
                raise field_error("files", "give at least one file, folder or glob")
            # ``files`` is one class; the model is frozen, so set the derived field here
            group = ClassGroup.model_construct(name="all", files=self.files, label=0, weight=1.0)
            self.__dict__["classes"] = (group,)
        if not self.classes:
            raise field_error("classes", "at least one group of files is required")
        for group in self.classes:
            if not group.files:
                raise field_error(f"classes.{group.name}", "the group has no files")
        self._check_normalisation()
        if self.label_branch is None and self.target is None and len(self.classes) < 2:
            raise field_error(
                "classes",
                "a classifier needs two or more classes (or set label_branch, or target "
                "for regression)",
            )
        if self.label_branch is not None:
            self._labels = self.class_names or ("0", "1")
        else:
            self._labels = tuple(group.name for group in self.classes)
        if self.target is not None:
            self._task = "regression"
        else:
            self._task = "binary" if len(self._labels) == 2 else "multiclass"
        return self

    def _check_normalisation(self) -> None:
        given = [(g, s) for g in self.classes for s in g.sample_list if s.xsec is not None]
        if self.luminosity is None:
            if given:
                group, sample = given[0]
                raise field_error(
                    "luminosity",
                    f"missing: sample {sample.name!r} of class {group.name!r} has an xsec (pb);"
                    " give the luminosity (pb^-1) that turns cross-sections into yields",
                )
            if self.weights is not None and self.weights.sum is not None:
                raise field_error("weights.sum", "needs each sample's xsec and the luminosity")
            return
        if self.files is not None:
            raise field_error(
                "luminosity", "normalisation needs classes with xsec (name -> {files, xsec})"
            )
        for group in self.classes:
            for sample in group.sample_list:
                if sample.xsec is None:
                    where = f"classes.{group.name}"
                    if group.samples:
                        where += f".samples.{sample.name}"
                    raise field_error(
                        f"{where}.xsec",
                        "missing: with a luminosity every sample needs its cross-section (pb)",
                    )

    @property
    def normalised(self) -> bool:
        """Whether events are weighted to their expected yield (xsec and luminosity)."""
        return self.luminosity is not None

    @model_serializer(mode="wrap")
    def _user_form(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        data.pop("classes" if self.files is not None else "files", None)
        return data

    # -- derived views -------------------------------------------------------
    @property
    def task(self) -> Task:
        """``regression`` with a target, else ``binary`` or ``multiclass``."""
        return self._task

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names in label order."""
        return self._labels

    @property
    def weight_branch(self) -> str | None:
        """The branch or expression of the per-event weights, if any."""
        return self.weights.branch if self.weights is not None else None

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
        """A validated copy with ``changes`` (Python forms: tuples, :class:`Split`...)."""
        return self.model_copy(update=changes)

    def _copy_data(self, update: Mapping[str, Any]) -> dict[str, Any]:
        data = super()._copy_data(update)
        if "classes" in update:
            data["files"] = update.get("files")
        elif data.get("files") is not None:
            del data["classes"]  # derived from files
        return data

    # -- loading -------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> DatasetSpec:
        """Load a YAML or JSON spec (or the ``dataset:`` of a training spec); relative
        file paths are taken from its folder."""
        path = Path(path)
        data = load_mapping(path)
        if "dataset" in data:  # a combined training spec
            data = data["dataset"]
            if not isinstance(data, Mapping):
                raise SpecError("dataset", _not_mapping(data))
        return cls.from_dict(data, base_dir=path.parent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path | None = None) -> DatasetSpec:
        """The spec of a YAML/JSON mapping; relative paths are taken from ``base_dir``."""
        if not isinstance(data, Mapping):
            raise SpecError("spec", _not_mapping(data))
        return cls.parse(data, context={"base_dir": base_dir})

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form (plain data) that :meth:`from_dict` turns back into an
        equal spec."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return data


def _not_mapping(data: Any) -> str:
    return f"expected a mapping, got {type(data).__name__} {data!r}"
