"""Sample normalisation: every event weighted to its expected yield.

A sample's events weigh ``xsec * luminosity * w / sum_w`` (times the class weight):
``w`` is the event's generator weight (the spec's ``weights.branch``, 1 without one)
and ``sum_w`` the signed sum of ``w`` over every event of the sample before any cut,
or the sum of the per-file sums the files store (``weights.sum``, NanoAOD's
``Runs/genEventSumw``). Several files of one sample share one ``sum_w``, so a sample
split into many files is normalised as one. These sums are read once per plan, in
parallel over files, before any event is streamed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import DataError, MlaasError
from ..specs.dataset import DatasetSpec
from .expressions import Expression, to_numpy_column
from .sources import open_tree

__all__ = ["SampleYield", "sample_yields"]


class FileEntry(Protocol):
    """What is read here of :class:`~.plan.FileEntry` (the plan imports this module)."""

    @property
    def path(self) -> str: ...
    @property
    def class_index(self) -> int: ...
    @property
    def sample(self) -> str: ...


class DatasetPlan(Protocol):
    """What is read here of :class:`~.plan.DatasetPlan`: the weights and what they need."""

    spec: DatasetSpec
    tree: str
    weight: Expression | None
    weight_names: set[str]
    weight_columns: list[str]
    new_branches: list[tuple[str, Expression]]


@dataclass(frozen=True)
class SampleYield:
    """One sample's normalisation: its ``sum_w`` and the factor its weights get."""

    name: str
    class_name: str
    files: int
    xsec: float
    sum_w: float
    factor: float  # xsec * luminosity / sum_w

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _where(sample: str, group: str, path: str) -> str:
    return f"sample {sample!r} (class {group!r}), file {path}"


def _stored_sum(plan: DatasetPlan, path: str) -> float:
    """The sum of the per-file sums of weights stored in ``path`` (``weights.sum``)."""
    assert plan.spec.weights is not None
    assert plan.spec.weights.sum is not None
    where = plan.spec.weights.sum
    source = open_tree(path, where.tree)
    try:
        info = source.branches.get(where.branch)
        if info is None or info.kind != "flat":
            what = "no branch" if info is None else f"a {info.kind} branch, not a flat one:"
            listed = ", ".join(sorted(source.branches)[:10])
            raise DataError(
                f"weights.sum: tree {where.tree!r} has {what} {where.branch!r} "
                f"(its branches: {listed})"
            )
        total = 0.0
        for chunk in source.iterate([where.branch], "64 MB"):
            total += float(np.sum(chunk.columns[where.branch], dtype=np.float64))
        return total
    finally:
        source.close()


def _summed_weights(plan: DatasetPlan, path: str) -> float:
    """The signed sum of the event weights of ``path`` before cuts."""
    source = open_tree(path, plan.tree)
    try:
        if plan.weight is None:
            return float(source.entries)
        columns = plan.weight_columns
        total = 0.0
        for chunk in source.iterate(columns, plan.spec.step_size):
            values = dict(chunk.columns)
            for name, expr in plan.new_branches:
                if name in plan.weight_names:
                    values[name] = expr.evaluate(values)
            raw = to_numpy_column(plan.weight.evaluate(values), plan.weight)
            total += float(np.sum(np.asarray(raw, dtype=np.float64)))
        return total
    finally:
        source.close()


def _file_sum(plan: DatasetPlan, file: FileEntry, group: str) -> float:
    try:
        if plan.spec.weights is not None and plan.spec.weights.sum is not None:
            return _stored_sum(plan, file.path)
        return _summed_weights(plan, file.path)
    except MlaasError as err:
        text = str(err)
        detail = text.split(": ", 1)[1] if text.startswith(file.path) else text
        raise DataError(f"{_where(file.sample, group, file.path)}: {detail}") from err


def sample_yields(plan: DatasetPlan, files: Sequence[FileEntry]) -> list[SampleYield]:
    """The normalisation of every sample of ``plan.spec`` (in class, then sample order).

    Raises
    ------
    DataError
        Naming the sample and file: a missing sums tree or branch, a ``sum_w`` that
        is zero, negative or not finite.
    """
    spec = plan.spec
    assert spec.luminosity is not None
    groups = {g.label: g.name for g in spec.classes}
    with ThreadPoolExecutor(max_workers=min(4, max(1, len(files)))) as pool:
        sums = list(pool.map(lambda f: _file_sum(plan, f, groups[f.class_index]), files))
    yields = []
    for group in spec.classes:
        for sample in group.sample_list:
            members = [
                (f, s)
                for f, s in zip(files, sums, strict=True)
                if f.class_index == group.label and f.sample == sample.name
            ]
            sum_w = math.fsum(s for _, s in members)
            if not (math.isfinite(sum_w) and sum_w > 0):
                source = (
                    f"weights.sum {spec.weights.sum.tree}/{spec.weights.sum.branch}"
                    if spec.weights is not None and spec.weights.sum is not None
                    else f"weights {spec.weights.branch!r}"
                    if spec.weights is not None
                    else "the events"
                )
                paths = ", ".join(f.path for f, _ in members)
                raise DataError(
                    f"sample {sample.name!r} (class {group.name!r}): the sum of weights "
                    f"({source}) is {sum_w:g} over its files {paths}; it must be > 0 to "
                    "normalise by the cross-section"
                )
            assert sample.xsec is not None  # the spec checks that every sample has one
            yields.append(
                SampleYield(
                    sample.name,
                    group.name,
                    len(members),
                    sample.xsec,
                    sum_w,
                    sample.xsec * spec.luminosity / sum_w,
                )
            )
    return yields
