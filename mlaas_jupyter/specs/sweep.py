"""`SweepRequest`: a hyperparameter sweep, a group of training jobs searched by Optuna.

A sweep takes a training spec and a set of parameters, each a dotted path into the
spec with the values it may take, written in one of these forms (the ``--param
PATH=FORM`` of ``mlaas sweep`` and ``%mlaas sweep``)::

    model.params.dropout=0,0.1,0.3           choices (numbers parsed, strings kept)
    training.learning_rate=loguniform:1e-4:1e-2
    training.batch_size=int:128:1024         also uniform:a:b, logint:a:b

``model.<key>``, where ``<key>`` is not a field of the model section, is the model's
parameter ``model.params.<key>``: ``model.hidden=64,128,256`` varies the width of the
built-in MLP's hidden layers. A list (``[64, 128]`` in a REST body or from Python) is a
list of choices. Each trial
trains the spec with the parameters set at their paths. Everything is checked here,
before a trial runs: the forms, the sampler against them, the metric against the
task, and each path and bound against :class:`TrainSpec` (a wrong path is a
:class:`SpecError` naming ``params.<path>``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictStr, field_validator, model_validator

from ..errors import SpecError
from ._base import SpecModel, field_error, nearest
from .training import ModelSpec, TrainSpec

__all__ = [
    "DEFAULT_TRIALS",
    "Param",
    "SweepRequest",
    "apply_params",
    "check_sweep",
    "default_direction",
    "parse_param",
]

#: trials of a sweep that gives no count and has a continuous parameter
DEFAULT_TRIALS = 10
MAX_TRIALS = 10_000
#: the metrics of the epoch events that a sweep may optimise, per kind of task
CLASSIFICATION_METRICS = ("val_auc", "val_accuracy", "val_loss", "loss")
REGRESSION_METRICS = ("val_loss", "val_mae", "val_r2", "loss")
_RANGES = ("uniform", "loguniform", "int", "logint")
Choice = bool | int | float | str | None


@dataclass(frozen=True)
class Param:
    """One swept parameter: ``choices``, or a ``kind`` of range from ``low`` to ``high``."""

    path: str
    kind: Literal["choice", "uniform", "loguniform", "int", "logint"]
    choices: tuple[Choice, ...] = ()
    low: float = 0.0
    high: float = 0.0

    @property
    def log(self) -> bool:
        return self.kind in ("loguniform", "logint")

    def examples(self) -> list[Choice]:
        """The values to check the path with: every choice, or both bounds."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind in ("int", "logint"):
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


def _number(text: str) -> Choice:
    """``"64"`` -> 64, ``"1e-3"`` -> 0.001, ``"true"`` -> True, else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_param(path: str, form: Any) -> Param:
    """The :class:`Param` of ``PATH=FORM`` (or of a list of choices);
    :class:`SpecError` naming ``params.<path>`` when the form is wrong."""
    where = f"params.{path}"
    parts = path.split(".")
    if not path or any(not part for part in parts):
        raise SpecError(where, "a parameter path is dotted keys of the spec, e.g. training.epochs")
    if isinstance(form, list | tuple):
        choices = tuple(form)
        bad = [c for c in choices if not isinstance(c, bool | int | float | str | type(None))]
        if bad:
            raise SpecError(where, f"choices must be numbers, strings or booleans, got {bad[0]!r}")
    elif isinstance(form, str):
        head, _, rest = form.partition(":")
        if head in _RANGES:
            return _range(path, head, rest)
        choices = tuple(_number(item) for item in form.split(","))
    else:
        raise SpecError(where, f"expected a list of choices or a string form, got {form!r}")
    if not choices or any(c == "" for c in choices):
        raise SpecError(where, f"empty choice in {form!r}; give comma-separated values")
    if len(set(map(repr, choices))) != len(choices):
        raise SpecError(where, f"repeated choice in {form!r}")
    return Param(path, "choice", choices=choices)


def _range(path: str, kind: str, bounds: str) -> Param:
    where = f"params.{path}"
    pieces = bounds.split(":")
    if len(pieces) != 2:
        raise SpecError(where, f"expected {kind}:LOW:HIGH, got {kind}:{bounds}")
    try:
        low, high = (float(p) for p in pieces)
    except ValueError:
        raise SpecError(where, f"{kind} bounds must be numbers, got {bounds!r}") from None
    if kind in ("int", "logint") and not (low.is_integer() and high.is_integer()):
        raise SpecError(where, f"{kind} bounds must be integers, got {bounds!r}")
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise SpecError(where, f"expected LOW < HIGH, got {bounds!r}")
    if kind.startswith("log") and low <= 0:
        raise SpecError(where, f"{kind} bounds must be > 0, got {bounds!r}")
    return Param(path, kind, low=low, high=high)  # type: ignore[arg-type]


def canonical_path(path: str) -> str:
    """``model.<key>`` for a key that is not a field of the model section means the
    model's parameter ``model.params.<key>`` (``model.hidden=64,128,256``)."""
    head, _, rest = path.partition(".")
    if head == "model" and rest and rest.split(".")[0] not in ModelSpec.model_fields:
        return f"model.params.{rest}"
    return path


def default_direction(metric: str) -> Literal["minimize", "maximize"]:
    """Losses and errors are minimised, the rest (AUC, accuracy, R²) maximised."""
    return "minimize" if metric.endswith(("loss", "mae")) else "maximize"


def apply_params(spec: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the spec mapping with each value set at its dotted path (missing
    mappings on the way are made); SpecError when the path runs through a value."""
    result = copy.deepcopy(dict(spec))
    for path, value in values.items():
        node = result
        keys = path.split(".")
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                above = ".".join(keys[: depth + 1])
                raise SpecError(f"params.{path}", f"{above} is {child!r}, not a mapping")
            node = child
        node[keys[-1]] = value
    return result


class SweepRequest(SpecModel):
    """``POST sweeps``: a training spec, the parameters to search, and how.

    ``spec`` or ``spec_path`` as in ``POST jobs``. ``trials`` defaults to the size of
    the grid when every parameter is a list of choices (the grid sampler needs that),
    else to 10. ``metric`` defaults to ``val_auc`` (``val_loss`` for regression), the
    ``direction`` to minimise losses and maximise the rest. With ``prune`` a trial whose
    epoch metric falls below the median of the earlier trials at the same epoch is
    cancelled (Optuna's MedianPruner, after a warm-up). With ``register`` the best
    trial's bundle becomes the next version of the model named after the sweep.
    """

    spec: dict[str, Any] | None = Field(default=None, description="a training spec mapping")
    spec_path: StrictStr | None = Field(default=None, description="a YAML/JSON spec file")
    params: dict[str, StrictStr | list[Any]] = Field(
        description="dotted spec path -> choices ('64,128' or a list), 'uniform:a:b', "
        "'loguniform:a:b', 'int:a:b' or 'logint:a:b'",
    )
    trials: int | None = Field(
        default=None, ge=1, le=MAX_TRIALS, description="default: the grid size, else 10"
    )
    parallel: int = Field(default=1, ge=1, le=64, description="trials running at once")
    sampler: Literal["grid", "random", "tpe"] = Field(default="tpe", description="the sampler")
    metric: StrictStr | None = Field(
        default=None, description="epoch metric to optimise (val_auc; val_loss for regression)"
    )
    direction: Literal["minimize", "maximize"] | None = Field(
        default=None, description="default: minimize losses, maximize the rest"
    )
    prune: StrictBool = Field(default=True, description="stop trials below the median early")
    seed: int | None = Field(default=None, description="seed of the sampler")
    executor: StrictStr | None = Field(default=None, description="where the trials run")
    kernel_name: StrictStr | None = Field(default=None, description="kernel spec of kernel jobs")
    name: StrictStr | None = Field(
        default=None, min_length=1, max_length=200, description="the sweep's (and model's) name"
    )
    # "register" is the field's name in requests; as an attribute it would shadow
    # BaseModel.register (an ABC method)
    register_model: StrictBool = Field(
        default=True, alias="register", description="register the best trial's bundle"
    )

    @field_validator("params", mode="before")
    @classmethod
    def _model_params(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        paths = {str(path): canonical_path(str(path)) for path in value}
        if len(set(paths.values())) != len(paths):
            raise ValueError("a parameter is given twice (model.X is model.params.X)")
        return {paths[str(path)]: form for path, form in value.items()}

    @field_validator("params")
    @classmethod
    def _forms(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("give at least one parameter to sweep, e.g. training.epochs")
        for path, form in value.items():
            try:
                parse_param(path, form)
            except SpecError as err:
                raise field_error(path, err.message) from None
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        known = sorted({*CLASSIFICATION_METRICS, *REGRESSION_METRICS})
        if value is not None and value not in known:
            raise ValueError(f"got {value!r}; allowed values are {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SweepRequest:
        if (self.spec is None) == (self.spec_path is None):
            raise field_error("spec", "give exactly one of spec (a mapping) or spec_path (a file)")
        grid = self.grid_size
        if self.sampler == "grid" and grid is None:
            raise field_error("sampler", "the grid sampler needs choices for every parameter")
        if self.sampler == "grid" and grid is not None and self.trials and self.trials > grid:
            raise field_error("trials", f"the grid has {grid} points; got {self.trials} trials")
        return self

    @property
    def parsed_params(self) -> list[Param]:
        return [parse_param(path, form) for path, form in self.params.items()]

    @property
    def grid_size(self) -> int | None:
        """The number of combinations when every parameter is a list of choices."""
        params = self.parsed_params
        if any(p.kind != "choice" for p in params):
            return None
        return math.prod(len(p.choices) for p in params)

    @property
    def trials_total(self) -> int:
        return self.trials or self.grid_size or DEFAULT_TRIALS


def check_sweep(
    request: SweepRequest,
    spec: TrainSpec,
    model_params: Callable[[str], tuple[str, ...] | None] | None = None,
) -> tuple[str, Literal["minimize", "maximize"]]:
    """Check every parameter's path and values against the base ``spec`` (each value
    applied in turn, the others at their first) and, for a built-in model named in
    ``model_params(name)``, its ``model.params`` keys; returns the (metric, direction)."""
    task = spec.dataset.task
    allowed = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    metric = request.metric or ("val_loss" if task == "regression" else "val_auc")
    if metric not in allowed:
        raise SpecError("metric", f"got {metric!r}; a {task} job reports {', '.join(allowed)}")
    base = spec.to_dict()
    params = request.parsed_params
    tuned = [p for p in params if p.path.startswith("model.params.")]
    allowed_params = None
    if model_params is not None and spec.model.file is None and spec.model.name and tuned:
        allowed_params = model_params(spec.model.name)
    for param in tuned:
        key = param.path.split(".")[2]
        if allowed_params is not None and key not in allowed_params:
            guess = nearest(key, allowed_params)
            raise SpecError(
                f"params.{param.path}",
                f"the {spec.model.name} model has no parameter {key!r}; "
                + (f"did you mean {guess}? " if guess is not None else "")
                + f"allowed: {', '.join(allowed_params)}",
            )
    first = {p.path: p.examples()[0] for p in params}
    for param in params:
        for value in param.examples():
            trial = apply_params(base, {**first, param.path: value})
            try:
                TrainSpec.parse(trial, context={"base_dir": None})
            except SpecError as err:
                raise SpecError(f"params.{param.path}", _reason(err, param.path, value)) from None
    return metric, request.direction or default_direction(metric)


def _reason(err: SpecError, path: str, value: Any) -> str:
    if err.field == path or err.field.startswith(path + "."):
        return f"{err.message} (value {value!r})"
    if path.startswith(err.field + "."):  # the path goes below a field: not in the spec
        return f"not a field of the training spec ({err.field}: {err.message})"
    return f"with value {value!r}: {err}"
