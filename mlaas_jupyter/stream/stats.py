"""The statistics pass: one streaming read giving everything the batches need to know.

Per feature: count, mean, standard deviation, min and max of the values after cuts
(all objects of a jagged branch), and for jagged branches the distribution of list
lengths plus a digest of the lengths (branches with equal digests belong to one
collection and share a mask). Per class and split: events and summed weights.
For regression, the moments of the target over the training split (:attr:`DatasetStats.
target`): the backends train on the standardised target and restore it in their scores.

Files are independent, so the pass runs per file — serially, on threads, or on a
dask cluster — and the per-file results merge exactly (Chan's parallel moments).
Results are cached on disk under a key that hashes the files' identity and every
spec field that changes them (see :func:`stats_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._progress import progress_bar
from .._version import __version__
from ..errors import DataError, SourceError
from ..specs.cluster import ClusterSpec
from ..specs.dataset import DatasetSpec
from ._skipped import entries_of, skipped_files, skipped_notes
from ._uproot_source import DAMAGED
from .cache import StatsCache, file_identity
from .plan import SPLITS, DatasetPlan, FileEntry
from .sources import open_tree, resolve_files

__all__ = [
    "DatasetStats",
    "FeatureStats",
    "compute_stats",
    "skipped_files",
    "skipped_notes",
    "stats_key",
]

#: the layout of a cached entry, part of :func:`stats_key` (2: with the target's moments)
STATS_FORMAT = 2


@dataclass
class FeatureStats:
    """Moments of one feature's values, and list lengths for jagged features."""

    kind: str
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    lengths: list[int] = field(default_factory=list)
    digest: str = ""

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0

    def add(self, values: np.ndarray[Any, Any]) -> None:
        if values.size == 0:
            return
        values = values.astype(np.float64, copy=False).ravel()
        n, mean = values.size, float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        self.merge(FeatureStats(self.kind, n, mean, m2, float(values.min()), float(values.max())))

    def add_lengths(self, counts: np.ndarray[Any, Any]) -> None:
        hist = np.bincount(counts).tolist() if len(counts) else []
        if len(hist) > len(self.lengths):
            self.lengths += [0] * (len(hist) - len(self.lengths))
        for i, k in enumerate(hist):
            self.lengths[i] += k
        self.digest = hashlib.blake2b(
            self.digest.encode() + counts.astype(np.int64).tobytes(), digest_size=16
        ).hexdigest()

    def merge(self, other: FeatureStats) -> None:
        """Add ``other``'s values (Chan et al.'s pairwise update of mean and M2)."""
        if other.count:
            n = self.count + other.count
            delta = other.mean - self.mean
            self.mean += delta * other.count / n
            self.m2 += other.m2 + delta**2 * self.count * other.count / n
            self.count = n
            self.min = min(self.min, other.min)
            self.max = max(self.max, other.max)

    def length_quantile(self, q: float) -> int:
        """Smallest list length that covers a fraction ``q`` of the events."""
        hist = np.asarray(self.lengths, dtype=np.int64)
        if hist.sum() == 0:
            return 1
        covered = np.cumsum(hist) / hist.sum()
        return max(1, int(np.searchsorted(covered, q - 1e-12)))

    @property
    def max_length(self) -> int:
        nonzero = np.flatnonzero(self.lengths)
        return max(1, int(nonzero[-1])) if len(nonzero) else 1


@dataclass
class DatasetStats:
    """Merged statistics of a dataset (all files, after cuts)."""

    key: str
    features: dict[str, FeatureStats]
    events: list[list[int]]  # [class][split] events after cuts
    weights: list[list[float]]  # [class][split] summed event weights
    entries_total: int = 0
    dropped_nonfinite: int = 0
    entries_read: int = 0  # events read to compute these stats (0 when cached)
    files: list[dict[str, Any]] = field(default_factory=list)
    negative: list[list[int]] = field(default_factory=list)  # [class][split] raw w < 0
    samples: list[dict[str, Any]] = field(default_factory=list)  # SampleYield.to_dict()
    notes: list[str] = field(default_factory=list)  # the plan's (friend trees left out)
    #: regression: the target's moments over the training split, unweighted (None else)
    target: FeatureStats | None = None

    @property
    def events_selected(self) -> int:
        return int(sum(map(sum, self.events)))

    def split_events(self, split: str) -> list[int]:
        """Events per class in ``split``."""
        i = SPLITS.index(split)
        return [row[i] for row in self.events]

    def split_weights(self, split: str) -> list[float]:
        i = SPLITS.index(split)
        return [row[i] for row in self.weights]

    def target_scale(self) -> tuple[float, float] | None:
        """``(mean, std)`` of a regression target over the training split, unweighted
        (weights may be negative; any scale restores exactly); None if absent or constant."""
        target = self.target
        if target is None or not (target.std > 0 and np.isfinite(target.mean + target.std)):
            return None
        return float(target.mean), target.std

    def merge(self, other: DatasetStats) -> None:
        if other.target is not None:
            if self.target is None:
                self.target = FeatureStats("flat")
            self.target.merge(other.target)
        for name, feature in other.features.items():
            mine = self.features[name]
            mine.merge(feature)
            if feature.lengths:
                mine.lengths = [a + b for a, b in _zip_pad(mine.lengths, feature.lengths)]
                mine.digest = hashlib.blake2b(
                    (mine.digest + feature.digest).encode(), digest_size=16
                ).hexdigest()
        for c, row in enumerate(other.events):
            for s, k in enumerate(row):
                self.events[c][s] += k
                self.weights[c][s] += other.weights[c][s]
                self.negative[c][s] += other.negative[c][s]
        self.entries_total += other.entries_total
        self.dropped_nonfinite += other.dropped_nonfinite
        self.entries_read += other.entries_read
        self.files += other.files

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetStats:
        data = dict(data)
        data["features"] = {k: FeatureStats(**v) for k, v in data["features"].items()}
        if data.get("target") is not None:
            data["target"] = FeatureStats(**data["target"])
        return cls(**data)


def _zip_pad(a: list[int], b: list[int]) -> Iterable[tuple[int, int]]:
    n = max(len(a), len(b))
    return zip(a + [0] * (n - len(a)), b + [0] * (n - len(b)), strict=True)


def _empty(plan: DatasetPlan, key: str = "") -> DatasetStats:
    n_classes = len(plan.spec.labels) if plan.spec.task != "regression" else 1
    return DatasetStats(
        key,
        {name: FeatureStats(kind) for name, kind in plan.feature_kinds.items()},
        [[0, 0, 0] for _ in range(n_classes)],
        [[0.0, 0.0, 0.0] for _ in range(n_classes)],
        negative=[[0, 0, 0] for _ in range(n_classes)],
        target=FeatureStats("flat") if plan.spec.task == "regression" else None,
    )


_PLANS: OrderedDict[Any, DatasetPlan] = OrderedDict()
_PLANS_LOCK = threading.Lock()


def plan_for(spec: DatasetSpec) -> DatasetPlan:
    """The :class:`DatasetPlan` of ``spec``, shared while its file list is unchanged.

    Globs and folders are expanded again on every call, so a file added to a
    folder is seen by the next statistics pass or stream.
    """
    key = (spec, tuple(tuple(resolve_files(group.files)) for group in spec.classes))
    with _PLANS_LOCK:
        plan = _PLANS.get(key)
        if plan is not None:
            _PLANS.move_to_end(key)
            return plan
    plan = DatasetPlan(spec)
    with _PLANS_LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > 8:
            _PLANS.popitem(last=False)
    return plan


def file_stats(spec: DatasetSpec, file: FileEntry) -> DatasetStats:
    """Statistics of one file; a top-level function so that dask can ship it.

    With the spec's ``on_error: skip`` a file that cannot be opened or read is left out
    whole (its ``files`` row says why and how many events are lost; the batch stream
    leaves it out too); with ``stop`` (the default) its error stops the pass.
    """
    try:
        return _file_stats(spec, file)
    except SourceError as err:
        if spec.on_error != "skip":
            raise
        stats = _empty(plan_for(spec))
        stats.files.append(
            {
                "path": file.path,
                "entries": 0,
                "selected": 0,
                "skipped": err.message.removesuffix(DAMAGED),
                "events_lost": entries_of(file.path, plan_for(spec).tree),
            }
        )
        return stats


def _file_stats(spec: DatasetSpec, file: FileEntry) -> DatasetStats:
    plan = plan_for(spec)
    stats = _empty(plan)
    source = open_tree(file.path, plan.tree)
    selected = 0
    try:
        missing = [c for c in plan.read_columns if c not in source.branches]
        if missing:
            raise DataError(f"{file.path}: tree {plan.tree!r} has no branch {', '.join(missing)}")
        for chunk in source.iterate(plan.read_columns, spec.step_size):
            block = plan.select(chunk, file)
            selected += len(block.rows)
            for name, feature in stats.features.items():
                if name in block.jagged:
                    parts = block.jagged[name]
                    feature.add(parts.take_content(block.rows))
                    feature.add_lengths(parts.counts[block.rows])
                else:
                    feature.add(block.flat[name][block.rows])
            classes = (
                block.labels if spec.task != "regression" else np.zeros(len(block.rows), np.int64)
            )
            if stats.target is not None:  # the training split's targets
                stats.target.add(block.labels[block.split == 0])
            for c in range(len(stats.events)):
                for s in range(3):
                    chosen = (classes == c) & (block.split == s)
                    stats.events[c][s] += int(chosen.sum())
                    stats.weights[c][s] += float(block.weights[chosen].sum(dtype=np.float64))
                    if block.negative is not None:
                        stats.negative[c][s] += int(block.negative[chosen].sum())
            stats.entries_total += block.entries_read
            stats.entries_read += block.entries_read
            stats.dropped_nonfinite += block.dropped_nonfinite
    finally:
        source.close()
    stats.files.append({"path": file.path, "entries": stats.entries_total, "selected": selected})
    return stats


def stats_key(spec: DatasetSpec, files: Sequence[FileEntry]) -> str:
    """Cache key: file identities plus every spec field that changes the statistics."""
    relevant = {
        "version": __version__,
        "format": STATS_FORMAT,
        "files": [[file_identity(f.path), f.class_index, f.class_weight, f.sample] for f in files],
        # the normalisation as the spec states it: the sums of weights it implies are
        # a function of the files, so the key need not read them
        "luminosity": spec.luminosity,
        "xsec": [[s.name, s.xsec] for g in spec.classes for s in g.sample_list],
        "weights": spec.weights.model_dump() if spec.weights is not None else None,
        "tree": spec.tree,
        "branches": spec.branches,
        "exclude": spec.exclude,
        "new_branches": spec.new_branches,
        "cuts": spec.cuts,
        "weight": spec.weight_branch,
        "label": spec.label_branch,
        "target": spec.target,
        "class_names": spec.class_names,
        "nonfinite": spec.nonfinite,
        "on_error": spec.on_error,
        "split": spec.split.model_dump(),
        "fold": spec.fold.model_dump() if spec.fold is not None else None,
        "seed": spec.seed,
        "sort_keys": sorted({s for _, j in spec.jagged if (s := j.sort_by)}),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=list).encode()).hexdigest()


def compute_stats(
    spec: DatasetSpec,
    *,
    cache: StatsCache | str | bool | None = True,
    workers: int = 1,
    scheduler: ClusterSpec | str | None = None,
    progress: bool | None = None,
) -> DatasetStats:
    """Run (or read from cache) the statistics pass of ``spec``.

    Parameters
    ----------
    cache
        ``True`` for the default cache folder, a folder path, a :class:`StatsCache`,
        or ``False``/``None`` to always read the events.
    workers
        Files read in parallel on threads (ignored when ``scheduler`` is given).
    scheduler
        The cluster of the pass: a :class:`~mlaas_jupyter.specs.cluster.ClusterSpec`
        (local, scheduler, dask-gateway, dask-jobqueue), a scheduler address, or
        ``"local"`` for a LocalCluster.
    progress
        A bar of the files read (``tqdm``): True, False, or None for "where someone
        watches" (a notebook, or stderr on a terminal). A cache hit reads nothing.
    """
    plan = plan_for(spec)
    store = StatsCache.resolve(cache)
    key = stats_key(spec, plan.raw_files)
    hit = store.get(key) if store is not None else None
    if (
        hit is not None
        and set(hit.get("features", ())) == set(plan.feature_kinds)
        and (spec.task != "regression" or hit.get("target") is not None)
    ):
        stats = DatasetStats.from_dict(hit)
        stats.entries_read = 0
        stats.notes = list(plan.notes) + skipped_notes(stats)  # today's friend files
        return stats
    stats = _empty(plan, key)
    stats.samples = [sample.to_dict() for sample in plan.samples]
    stats.notes = list(plan.notes)
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(
            progress_bar(total=len(plan.files), desc="statistics pass", unit="file", show=progress)
        )
        parts: Iterable[DatasetStats]
        if scheduler is not None:
            from .distributed import map_files

            parts = map_files(file_stats, spec, plan.files, scheduler)
        elif workers > 1 and len(plan.files) > 1:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers))
            parts = pool.map(lambda f: file_stats(spec, f), plan.files)
        else:
            parts = (file_stats(spec, f) for f in plan.files)
        for part in parts:  # in file order, as each file's pass ends
            stats.merge(part)
            bar.update(1)
    stats.notes += skipped_notes(stats)
    if stats.events_selected == 0:
        raise DataError(
            f"no events left: {stats.entries_total} events read, none passes the cuts "
            f"{list(spec.cuts) or '(none)'}"
            + (
                f" ({stats.dropped_nonfinite} dropped for NaN/inf)"
                if stats.dropped_nonfinite
                else ""
            )
        )
    if store is not None:
        store.put(key, stats.to_dict())
    return stats
