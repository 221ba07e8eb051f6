"""The epoch cache: later epochs hold the same events, read nothing, stay deterministic."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.specs.training import TrainConfig
from mlaas_jupyter.stream import Batch, BatchStream, DatasetSpec, _epoch_cache, compute_stats
from mlaas_jupyter.stream.stats import DatasetStats


@pytest.fixture
def toy(tmp_path: Path) -> tuple[DatasetSpec, DatasetStats]:
    spec = DatasetSpec.from_file(write_example_dataset(tmp_path / "data", 3000, 2))
    spec = spec.with_changes(shuffle_buffer=1000, step_size=500)
    return spec, compute_stats(spec, cache=False)


def _events(batches: list[Batch]) -> np.ndarray:
    """Every event as one row (features, label, weight), rows sorted: order-free."""
    rows = np.concatenate([np.column_stack([b.x, b.y.astype(np.float32), b.w]) for b in batches])
    return rows[np.lexsort(rows.T[::-1])]


def test_cached_epochs_hold_the_same_events_and_read_nothing(
    toy: tuple[DatasetSpec, DatasetStats],
) -> None:
    spec, stats = toy
    stream = BatchStream(spec, "train", 256, stats=stats, epoch_cache_mb=64)
    first = list(stream)
    assert stream.report.entries_read == 12_000
    second = list(stream)
    assert stream.report.entries_read == 0
    assert stream.report.events == sum(stats.split_events("train"))
    np.testing.assert_array_equal(_events(first), _events(second))
    # reshuffled: another order than the read epoch, and another than the next one
    third = list(stream)
    assert not np.array_equal(second[0].y, third[0].y) or not np.array_equal(
        second[0].x, third[0].x
    )
    assert all(len(b.y) == 256 for b in second[:-1])


def test_cached_epochs_are_deterministic_and_the_same_in_a_loader_process(
    toy: tuple[DatasetSpec, DatasetStats],
) -> None:
    spec, stats = toy
    threads = BatchStream(spec, "train", 500, stats=stats, epoch_cache_mb=64)
    child = BatchStream(spec, "train", 500, stats=stats, epoch_cache_mb=64, loader="process")
    try:
        for epoch in range(3):
            ours, theirs = list(child), list(threads)
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_array_equal(a.x, b.x)
                np.testing.assert_array_equal(a.y, b.y)
            expected = 12_000 if epoch == 0 else 0
            assert child.report.entries_read == threads.report.entries_read == expected
    finally:
        child.close()


@pytest.mark.parametrize(
    ("balance", "cache_mb"),
    [
        ("none", 0.01),  # 10 kB: the split does not fit
        ("sample", 64),  # each epoch samples anew: nothing to keep
    ],
)
def test_splits_that_cannot_be_kept_are_read_every_epoch(
    toy: tuple[DatasetSpec, DatasetStats], balance: str, cache_mb: float
) -> None:
    spec, stats = toy
    spec = spec.with_changes(balance=balance)
    stream = BatchStream(spec, "train", 256, stats=stats, epoch_cache_mb=cache_mb)
    for _ in range(3):
        list(stream)
        assert stream.report.entries_read == 12_000


def test_an_epoch_left_early_does_not_fill_the_cache(
    toy: tuple[DatasetSpec, DatasetStats],
) -> None:
    spec, stats = toy
    stream = BatchStream(spec, "train", 256, stats=stats, epoch_cache_mb=64)
    batches = iter(stream)
    next(batches)
    batches.close()  # type: ignore[attr-defined]
    list(stream)
    assert stream.report.entries_read == 12_000  # read in full: the cache was empty
    list(stream)
    assert stream.report.entries_read == 0


def test_drop_last_holds_in_cached_epochs(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    stream = BatchStream(spec, "train", 256, stats=stats, epoch_cache_mb=64, drop_last=True)
    read, cached = list(stream), list(stream)
    assert {len(b.y) for b in read} == {len(b.y) for b in cached} == {256}
    assert len(read) == len(cached) == sum(stats.split_events("train")) // 256


def test_the_training_config_checks_the_cache_size() -> None:
    assert TrainConfig().epoch_cache_mb == 1024
    assert TrainConfig.from_dict({"epoch_cache_mb": 0}).epoch_cache_mb == 0
    with pytest.raises(SpecError, match=r"training\.epoch_cache_mb: must be >= 0, got -1"):
        TrainConfig.from_dict({"epoch_cache_mb": -1})


@pytest.mark.parametrize("loader", ["thread", "process"])
def test_a_warmed_cache_gives_the_epochs_of_an_uninterrupted_stream(
    toy: tuple[DatasetSpec, DatasetStats], loader: str
) -> None:
    spec, stats = toy
    straight = BatchStream(spec, "train", 500, stats=stats, epoch_cache_mb=64)
    for _ in range(2):
        list(straight)
    resumed = BatchStream(spec, "train", 500, stats=stats, epoch_cache_mb=64, loader=loader)
    try:
        resumed.warm_cache()
        assert resumed.epoch == 0  # warming is not an epoch of training
        resumed.epoch = 2
        ours, theirs = list(resumed), list(straight)
        assert resumed.report.entries_read == 0
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a.x, b.x)
            np.testing.assert_array_equal(a.y, b.y)
    finally:
        resumed.close()


def test_the_cache_takes_at_most_an_eighth_of_the_memory_limit(
    toy: tuple[DatasetSpec, DatasetStats], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, stats = toy
    monkeypatch.setattr(_epoch_cache, "memory_limit", lambda: 8 * 10_000)  # a 10 kB share
    stream = BatchStream(spec, "train", 256, stats=stats, epoch_cache_mb=64)
    assert stream._cache.budget == 10_000
    for _ in range(2):
        list(stream)
        assert stream.report.entries_read == 12_000
    monkeypatch.undo()
    assert (
        0 < _epoch_cache.memory_limit() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    )
