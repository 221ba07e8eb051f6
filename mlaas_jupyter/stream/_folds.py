"""k-fold training's view of the events: which fold an event is in, and its split.

An event's fold is ``value % k``, where ``value`` is an integer branch (``fold_by``,
e.g. NanoAOD's ``event``) or, without one, the event's entry number in its file. For
fold ``i`` of ``k`` the test split is fold ``i``; the other events are split into
train and validation by the per-event hash of :func:`~.plan.split_codes`, in the ratio
``split.train : split.validation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import SpecError
from ..specs._base import nearest
from ..specs.dataset import DatasetSpec, FoldSpec
from .schema import BranchInfo

__all__ = ["check_fold_branch", "fold_dataset", "fold_of", "fold_split"]


def fold_of(values: Any, k: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Each event's fold, ``value % k`` (non-negative for negative values too)."""
    array = np.asarray(values)
    if array.dtype.kind == "u":
        return (array % np.uint64(k) if array.dtype.itemsize == 8 else array % k).astype(np.int64)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"fold values must be integers, got {array.dtype}")
    return np.mod(array.astype(np.int64), k)


def fold_split(
    u: np.ndarray[Any, Any], values: Any, split: Any, fold: FoldSpec
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Split codes (0 train, 1 validation, 2 test) of one fold: ``u`` is each event's
    uniform hash in [0, 1), ``values`` its fold value (branch or entry number)."""
    share = split.train / (split.train + split.validation)
    codes = np.where(u < share, 0, 1).astype(np.uint8)
    codes[fold_of(values, fold.k) == fold.index] = 2
    return codes


def check_fold_branch(branches: Mapping[str, BranchInfo], tree: str, by: str) -> None:
    """Refuse a ``training.fold_by`` that is not an integer branch of ``tree``.

    Raises
    ------
    SpecError
        For ``training.fold_by``, naming the branch and the tree (and the closest
        branch name when it looks misspelt).
    """
    info = branches.get(by)
    if info is None:
        guess = nearest(by, branches)
        hint = f"; did you mean {guess}?" if guess is not None else ""
        raise SpecError(
            "training.fold_by", f"tree {tree!r} has no branch {by!r}{hint} (an integer branch)"
        )
    if info.kind != "flat" or info.dtype is None or np.dtype(info.dtype).kind not in "iu":
        raise SpecError(
            "training.fold_by",
            f"branch {by!r} of tree {tree!r} is {info.type} ({info.kind}); the fold needs "
            "one integer per event, such as event",
        )


def fold_dataset(dataset: DatasetSpec, index: int, k: int, by: str | None) -> DatasetSpec:
    """The dataset that fold ``index`` of ``k`` trains on."""
    return dataset.with_changes(fold=FoldSpec(index=index, k=k, by=by))
