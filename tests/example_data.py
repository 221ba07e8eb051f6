"""The example dataset as a spec mapping with absolute paths, for job tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from mlaas_jupyter.examples import write_example_dataset

__all__ = ["example_dataset_spec"]


def example_dataset_spec(
    tmp_path_factory: pytest.TempPathFactory, events_per_file: int
) -> Iterator[dict[str, Any]]:
    """Write the example dataset (one file per class) and yield its dataset spec with
    absolute paths, while ``MLAAS_CACHE_DIR`` points at a fresh folder (the job's
    processes and kernels inherit it)."""
    folder = tmp_path_factory.mktemp("data")
    path = write_example_dataset(folder, events_per_file=events_per_file, files_per_class=1)
    spec = yaml.safe_load(path.read_text())
    spec["classes"] = {k: [str(folder / g) for g in v] for k, v in spec["classes"].items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLAAS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield spec
