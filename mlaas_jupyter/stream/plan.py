"""`DatasetPlan`: a spec resolved against real files, and the per-chunk event selection.

The plan knows which files belong to which class, which branches are read, which
columns are features (and of what kind), and holds the compiled expressions. Its
:meth:`DatasetPlan.select` turns one chunk into an :class:`EventBlock`: the events
that pass the cuts, with their labels, weights and train/validation/test split.
Both the statistics pass and the batch stream use it, so they always agree.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import warnings
from dataclasses import dataclass, replace
from typing import Any

import awkward as ak
import numpy as np

from ..errors import DataError, SourceError, SpecError
from ..specs.dataset import DatasetSpec, FoldSpec
from ._folds import check_fold_branch, fold_split
from ._friends import dataset_files
from ._normalise import SampleYield, sample_yields
from .expressions import Expression, compile_expression, cut_mask, to_numpy_column
from .jagged import JaggedParts, jagged_parts
from .schema import Chunk, Kind
from .sources import open_tree

__all__ = ["DatasetPlan", "EventBlock", "FileEntry", "split_codes"]

SPLITS = ("train", "validation", "test")
_PROBE_ENTRIES = 64


@dataclass(frozen=True)
class FileEntry:
    """One input file: its class, sample, the factor its events' weights get (class
    weight times the sample's normalisation) and the key that fixes their split."""

    path: str
    class_index: int
    class_weight: float
    key: int
    sample: str = ""


@dataclass
class EventBlock:
    """The events of one chunk that pass the cuts (``rows`` index into the chunk)."""

    file: FileEntry
    entries_read: int
    rows: np.ndarray[Any, np.dtype[np.int64]]
    split: np.ndarray[Any, np.dtype[np.uint8]]
    labels: np.ndarray[Any, Any]
    weights: np.ndarray[Any, np.dtype[np.float32]]
    flat: dict[str, np.ndarray[Any, Any]]
    jagged: dict[str, JaggedParts]
    dropped_nonfinite: int = 0
    #: per kept event, whether its raw weight was negative (None without weights)
    negative: np.ndarray[Any, np.dtype[np.bool_]] | None = None


def _stable_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def split_codes(
    entries: np.ndarray[Any, Any],
    file_key: int,
    seed: int,
    split: Any,
    fold: FoldSpec | None = None,
    values: np.ndarray[Any, Any] | None = None,
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Per-event split (0 train, 1 validation, 2 test) from a hash of (file, entry, seed).

    A splitmix64 hash makes the split a pure function of the event, so it is the
    same however the files are chunked, read in parallel or re-read next epoch. With a
    ``fold`` of k-fold training, test is the events of that fold (``values`` % k, the
    fold_by branch, or the entry numbers when None) and the hash splits the others.
    """
    with np.errstate(over="ignore"):
        z = entries.astype(np.uint64) + np.uint64(
            (file_key ^ (seed * 0x9E3779B97F4A7C15)) & (2**64 - 1)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
    if fold is not None:
        return fold_split(u, entries if values is None else values, split, fold)
    codes = np.full(len(entries), 2, dtype=np.uint8)
    codes[u < split.train + split.validation] = 1
    codes[u < split.train] = 0
    return codes


class DatasetPlan:
    """A :class:`DatasetSpec` checked against the files it names."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        #: what the user should know about the files (friend trees of scores left out)
        self.notes: list[str] = []
        self.raw_files: list[FileEntry] = []
        for group in spec.classes:
            for sample in group.sample_list:
                paths, notes = dataset_files(sample.files, f"class {group.name!r}")
                self.notes += notes
                self.raw_files += [
                    FileEntry(path, group.label, group.weight, _stable_key(path), sample.name)
                    for path in paths
                ]
        probe = self._probe()
        try:
            self.tree = spec.tree or probe.name
            self.branches = dict(probe.branches)
            chunk = next(
                iter(probe.iterate(self._probe_columns(), _PROBE_ENTRIES, 0, _PROBE_ENTRIES)), None
            )
        finally:
            probe.close()
        self._compile()
        self.feature_kinds = self._feature_kinds(chunk)

    @functools.cached_property
    def samples(self) -> list[SampleYield]:
        """Each sample's ``sum_w`` and normalisation (empty without a luminosity); the
        weights of every file are read once, on first use."""
        return sample_yields(self, self.raw_files) if self.spec.normalised else []

    @functools.cached_property
    def files(self) -> list[FileEntry]:
        """The input files, their weights normalised to the samples' expected yields."""
        if not self.samples:
            return self.raw_files
        factors = {(s.class_name, s.name): s.factor for s in self.samples}
        names = [group.name for group in self.spec.classes]
        return [
            replace(f, class_weight=f.class_weight * factors[names[f.class_index], f.sample])
            for f in self.raw_files
        ]

    # -- resolution ------------------------------------------------------------
    def _probe(self) -> Any:
        """The first file's tree, whose branches every file must have; with ``on_error:
        skip`` the first that opens (the statistics pass reports the others)."""
        for entry in self.raw_files:
            try:
                return open_tree(entry.path, self.spec.tree)
            except SourceError:
                if self.spec.on_error != "skip" or entry is self.raw_files[-1]:
                    raise
        raise SourceError("", "no files")  # raw_files is never empty: a spec has files

    def _probe_columns(self) -> list[str]:
        return [b for b, info in self.branches.items() if info.kind != "unsupported"]

    def _compile(self) -> None:
        spec = self.spec
        known = [b for b, info in self.branches.items() if info.kind != "unsupported"]
        self.new_branches: list[tuple[str, Expression]] = []
        for name, text in spec.new_branches:
            if name in self.branches:
                raise SpecError(
                    f"dataset.new_branches.{name}",
                    "a branch of that name already exists in the tree",
                )
            self.new_branches.append((name, compile_expression(text, known)))
            known.append(name)
        self.cuts = [compile_expression(text, known) for text in spec.cuts]
        self.weight = compile_expression(spec.weight_branch, known) if spec.weight_branch else None
        self.target = compile_expression(spec.target, known) if spec.target else None
        if spec.label_branch is not None and spec.label_branch not in known:
            compile_expression(spec.label_branch, known)  # raises with the closest names
        special = {spec.label_branch, spec.weight_branch, spec.target}

        def wanted(name: str) -> bool:
            return any(fnmatch.fnmatchcase(name, p) for p in spec.branches) and not any(
                fnmatch.fnmatchcase(name, p) for p in spec.exclude
            )

        chosen = [b for b in self.branches if wanted(b) and b not in special]
        # an RNTuple record (Jet) whose fields (Jet.pt) are branches of their own
        parents = {b.rsplit(".", 1)[0] for b in self.branches if "." in b}
        chosen = [
            b for b in chosen if not (b in parents and self.branches[b].kind == "unsupported")
        ]
        unsupported = [b for b in chosen if self.branches[b].kind == "unsupported"]
        if unsupported:
            warnings.warn(
                f"excluding {len(unsupported)} unsupported branches (strings or objects): "
                + ", ".join(unsupported),
                UserWarning,
                stacklevel=3,
            )
        self.features = [b for b in chosen if b not in unsupported]
        # new branches are features unless excluded: the user defined them for a reason
        self.features += [
            name
            for name, _ in self.new_branches
            if name not in special and not any(fnmatch.fnmatchcase(name, p) for p in spec.exclude)
        ]
        if not self.features:
            raise SpecError(
                "dataset.branches", f"no branch matches {list(spec.branches)} (minus exclude)"
            )
        needed = set(self.features) | set().union(
            *(e.names for _, e in self.new_branches), *(c.names for c in self.cuts)
        )
        for expr in (self.weight, self.target):
            if expr is not None:
                needed |= expr.names
        if spec.label_branch is not None:
            needed.add(spec.label_branch)
        if spec.fold is not None and spec.fold.by is not None:  # read, even if no feature
            check_fold_branch(self.branches, self.tree, spec.fold.by)
            needed.add(spec.fold.by)
        for name in self.features:
            sort_by = spec.jagged_for(name).sort_by
            if sort_by is not None:
                if sort_by not in known:
                    compile_expression(sort_by, known)  # raises with the closest names
                needed.add(sort_by)
        new_names = {name for name, _ in self.new_branches}
        self.read_columns = sorted(n for n in needed if n not in new_names)
        # what the weights alone need: the sums of weights read nothing else
        self.weight_names: set[str] = set(self.weight.names) if self.weight else set()
        for name, expr in reversed(self.new_branches):
            if name in self.weight_names:
                self.weight_names |= expr.names
        self.weight_columns = sorted(self.weight_names - new_names)

    def _feature_kinds(self, chunk: Chunk | None) -> dict[str, Kind]:
        kinds: dict[str, Kind] = {}
        for name in self.features:
            if name in self.branches:
                kinds[name] = self.branches[name].kind
        if self.new_branches:
            columns = dict(chunk.columns) if chunk is not None else {}
            for name, expr in self.new_branches:
                value = expr.evaluate(columns)
                columns[name] = value
                kinds[name] = "jagged" if isinstance(value, ak.Array) and value.ndim > 1 else "flat"
        return {name: kinds[name] for name in self.features}

    # -- per chunk ---------------------------------------------------------------
    def select(self, chunk: Chunk, file: FileEntry, nonfinite_error: bool = True) -> EventBlock:
        """Evaluate expressions and cuts on ``chunk``; keep the events that pass."""
        spec = self.spec
        columns: dict[str, Any] = dict(chunk.columns)
        for name, expr in self.new_branches:
            columns[name] = _as_column(expr.evaluate(columns), expr)
        keep = np.ones(chunk.entries, dtype=bool)
        for cut in self.cuts:
            keep &= cut_mask(cut.evaluate(columns), cut)
        flat: dict[str, np.ndarray[Any, Any]] = {}
        jagged: dict[str, JaggedParts] = {}
        for name in self._columns_for_layout():
            value = columns[name]
            if self.feature_kinds.get(name) == "jagged" or (
                isinstance(value, ak.Array) and value.ndim > 1
            ):
                jagged[name] = jagged_parts(value, name)
            else:
                flat[name] = np.asarray(value)
        labels, weights, negative = self._labels_weights(columns, chunk.entries, file)
        nonfinite = self._nonfinite(flat, jagged, labels, weights, keep)
        bad = np.zeros(chunk.entries, dtype=bool)
        for mask in nonfinite.values():
            bad |= mask
        dropped = int(bad.sum())
        if dropped and spec.nonfinite == "error" and nonfinite_error:
            first = chunk.entry_start + int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{file.path}: {dropped} events in entries {chunk.entry_start}-"
                f"{chunk.entry_stop} have NaN or infinite values in {', '.join(nonfinite)} "
                f"(first at entry {first}); add a cut such as isfinite(BRANCH) or set "
                "nonfinite: drop"
            )
        keep &= ~bad
        rows = np.flatnonzero(keep)
        labels = labels[rows]
        if spec.label_branch is not None:
            self._check_labels(labels, file)
        by = spec.fold.by if spec.fold is not None else None
        fold_values = np.asarray(columns[by])[rows] if by is not None else None
        return EventBlock(
            file,
            chunk.entries,
            rows,
            split_codes(
                chunk.entry_start + rows, file.key, spec.seed, spec.split, spec.fold, fold_values
            ),
            labels.astype(np.int64) if spec.task != "regression" else labels,
            weights[rows],
            flat,
            jagged,
            dropped,
            negative[rows] if negative is not None else None,
        )

    def _nonfinite(
        self,
        flat: dict[str, np.ndarray[Any, Any]],
        jagged: dict[str, JaggedParts],
        labels: np.ndarray[Any, Any],
        weights: np.ndarray[Any, Any],
        keep: np.ndarray[Any, Any],
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Per column with NaN/inf among the kept events: which events have them."""
        found: dict[str, np.ndarray[Any, Any]] = {}

        def note(name: str, mask: np.ndarray[Any, Any]) -> None:
            mask &= keep
            if mask.any():
                found[name] = mask

        for name, values in flat.items():
            if name in self.feature_kinds and values.dtype.kind == "f":
                finite = np.isfinite(values)
                note(name, ~(finite if finite.ndim == 1 else finite.all(axis=1)))
        for name, parts in jagged.items():
            content = parts.content
            feature = name in self.feature_kinds and content.dtype.kind == "f"
            if feature and not np.isfinite(content).all():
                values = parts.take_content(np.arange(len(parts)))
                owner = np.repeat(np.arange(len(parts)), parts.counts)
                mask = np.zeros(len(parts), dtype=bool)
                mask[owner[~np.isfinite(values)]] = True
                note(name, mask)
        if self.target is not None:
            note(f"target {self.target.text!r}", ~np.isfinite(labels))
        if self.weight is not None:
            note(f"weights {self.weight.text!r}", ~np.isfinite(weights))
        return found

    def _columns_for_layout(self) -> list[str]:
        names = list(self.features)
        for name in self.features:
            sort_by = self.spec.jagged_for(name).sort_by
            if sort_by is not None and sort_by not in names:
                names.append(sort_by)
        return names

    def _labels_weights(
        self, columns: dict[str, Any], entries: int, file: FileEntry
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
        """Labels (or regression targets), weights and which raw weights are negative,
        for every event of the chunk."""
        spec = self.spec
        labels: np.ndarray[Any, Any]
        if self.target is not None:
            labels = np.asarray(
                to_numpy_column(self.target.evaluate(columns), self.target), dtype=np.float32
            )
        elif spec.label_branch is not None:
            labels = np.asarray(columns[spec.label_branch])
        else:
            labels = np.full(entries, file.class_index, dtype=np.int64)
        weights = np.full(entries, file.class_weight, dtype=np.float32)
        negative = None
        if self.weight is not None and spec.weights is not None:
            raw = np.asarray(
                to_numpy_column(self.weight.evaluate(columns), self.weight), dtype=np.float32
            )
            negative = raw < 0
            if spec.weights.negative == "abs":
                raw = np.abs(raw)
            elif spec.weights.negative == "zero":
                raw = np.where(negative, np.float32(0), raw)
            weights *= raw
        return labels, weights, negative

    def _check_labels(self, raw: np.ndarray[Any, Any], file: FileEntry) -> None:
        n = len(self.spec.labels)
        labels = raw.astype(np.int64)
        if len(labels) and (
            labels.min() < 0 or labels.max() >= n or not np.array_equal(labels, raw)
        ):
            raise DataError(
                f"{file.path}: label branch {self.spec.label_branch!r} must hold integers "
                f"0..{n - 1} (classes {', '.join(self.spec.labels)}); found values "
                f"{sorted(set(np.unique(raw).tolist()))[:10]}"
            )


def _as_column(value: Any, expr: Expression) -> Any:
    """New branches: flat results become NumPy (missing -> 0), jagged stay awkward."""
    if isinstance(value, ak.Array) and value.ndim == 1:
        return np.asarray(to_numpy_column(value, expr))
    return value
