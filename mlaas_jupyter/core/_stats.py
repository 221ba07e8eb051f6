"""The statistics pass of a dataset spec, for ``mlaas.data.stats`` (blocking)."""

from __future__ import annotations

from typing import Any

from ..errors import SourceError, SpecError
from ..specs.dataset import DatasetSpec
from ..stream.sources import resolve_files
from ..stream.stats import compute_stats
from ..stream.summary import stats_summary
from .paths import DataRoots

__all__ = ["dataset_stats"]


def dataset_stats(roots: DataRoots, spec: DatasetSpec) -> dict[str, Any]:
    """Every path inside the roots (PathRefused), every class's files found (SpecError
    naming the class), then the cached statistics pass and its summary. Relative paths
    are taken from the first data root, as a job's are."""
    spec = DatasetSpec.from_dict(spec.to_dict(), base_dir=roots.primary)
    roots.check_spec(spec)
    for group in spec.classes:
        try:
            resolve_files(list(group.files))
        except SourceError as err:
            raise SpecError(f"dataset.classes.{group.name}", str(err)) from None
    return stats_summary(spec, compute_stats(spec))
