"""The streaming layer: ROOT (and Parquet/CSV) files to fixed-size training batches.

Nothing here imports Jupyter, PyTorch or Keras at import time.
"""

from __future__ import annotations

from ..specs.dataset import ClassGroup, DatasetSpec, JaggedSpec, Split
from .batches import Batch, BatchStream, EpochReport
from .cache import StatsCache
from .layout import Feature, FeatureLayout
from .plan import DatasetPlan
from .schema import BranchInfo, TreeInfo
from .sources import inspect_file, list_trees, open_tree, resolve_files
from .stats import DatasetStats, compute_stats

__all__ = [
    "Batch",
    "BatchStream",
    "BranchInfo",
    "ClassGroup",
    "DatasetPlan",
    "DatasetSpec",
    "DatasetStats",
    "EpochReport",
    "Feature",
    "FeatureLayout",
    "JaggedSpec",
    "Split",
    "StatsCache",
    "TreeInfo",
    "compute_stats",
    "inspect_file",
    "list_trees",
    "open_tree",
    "resolve_files",
]
