"""`DataService`: ``mlaas.data``, browsing the data under the roots.

Folders and their data files, the trees of a file, the branches of a tree, and
class histograms of a branch or expression before and after cuts: what the
widgets, the lab extension's file viewer and ``mlaas inspect`` show. Every path goes
through the data roots first; the reading runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..specs.dataset import DatasetSpec
from ..specs.histograms import HistogramRequest
from ..specs.requests import BranchesQuery, FileQuery, PathQuery
from ..stream.histograms import compute_histograms
from . import browse
from ._stats import dataset_stats
from .paths import DataRoots

__all__ = ["DataService"]


class DataService:
    """Files, trees, branches and histograms under the data roots."""

    def __init__(self, roots: DataRoots, histogram_max_events: int) -> None:
        self.roots, self.histogram_max_events = roots, histogram_max_events

    async def files(self, query: PathQuery) -> dict[str, Any]:
        """The sub-folders and data files (ROOT, Parquet, CSV) of a folder."""
        return await asyncio.to_thread(browse.list_folder, self.roots, query.path)

    async def trees(self, query: FileQuery) -> dict[str, Any]:
        """The trees of a data file."""
        return await asyncio.to_thread(browse.tree_names, self.roots, query.path)

    async def branches(self, query: BranchesQuery) -> dict[str, Any]:
        """Entries and branches (name, type, kind, dtype) of one tree of a data file."""
        return await asyncio.to_thread(browse.tree_info, self.roots, query.path, query.tree or None)

    async def histograms(self, request: HistogramRequest) -> dict[str, Any]:
        """Per-class histograms of a branch or expression before and after the cuts
        (at most ``histogram_max_events`` events read per class)."""
        cap = self.histogram_max_events
        capped = request.model_copy(update={"max_events": min(request.max_events or cap, cap)})
        return await asyncio.to_thread(compute_histograms, capped, self.roots.check_pattern)

    async def stats(self, spec: DatasetSpec) -> dict[str, Any]:
        """The statistics pass of a dataset spec (cached): per class events, expected
        yield and the fraction of negative weights (:func:`stats_summary`)."""
        return await asyncio.to_thread(dataset_stats, self.roots, spec)
