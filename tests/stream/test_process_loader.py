"""The process loader gives the same batches as the thread loader, and fails cleanly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from mlaas_jupyter.errors import DataError, SourceError, SpecError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.stream import BatchStream, DatasetSpec, compute_stats
from mlaas_jupyter.stream.stats import DatasetStats


@pytest.fixture
def toy(tmp_path: Path) -> tuple[DatasetSpec, DatasetStats]:
    spec = DatasetSpec.from_file(write_example_dataset(tmp_path / "data", 3000, 2))
    return spec, compute_stats(spec, cache=False)


def test_same_batches_as_threads_for_two_epochs(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    child = BatchStream(spec, "train", 500, stats=stats, loader="process")
    threads = BatchStream(spec, "train", 500, stats=stats)
    try:
        for _ in range(2):
            ours, theirs = list(child), list(threads)
            assert len(ours) == len(theirs) == len(threads)
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_array_equal(a.x, b.x)
                np.testing.assert_array_equal(a.y, b.y)
                np.testing.assert_array_equal(a.w, b.w)
            assert child.report.entries_read == threads.report.entries_read == 12_000
    finally:
        child.close()


def test_an_epoch_out_of_order_is_made_afresh(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    """The child makes the next epoch's first pools ahead; asked for another, it drops them."""
    spec, stats = toy
    child = BatchStream(spec, "train", 500, stats=stats, loader="process")
    threads = BatchStream(spec, "train", 500, stats=stats)
    try:
        list(child)  # epoch 0; the child then prepares epoch 1
        child.epoch = threads.epoch = 5
        for a, b in zip(child, threads, strict=True):
            np.testing.assert_array_equal(a.x, b.x)
            np.testing.assert_array_equal(a.y, b.y)
        assert child.report.entries_read == threads.report.entries_read == 12_000
        child.epoch = threads.epoch = 1
        assert [len(b.y) for b in child] == [len(b.y) for b in threads]
    finally:
        child.close()


def test_early_stop_then_full_epoch(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    stream = BatchStream(spec, "train", 100, stats=stats, loader="process")
    try:
        batches = iter(stream)
        next(batches)
        batches.close()  # type: ignore[attr-defined]
        assert sum(len(b.y) for b in stream) == sum(stats.split_events("train"))
        assert [
            len(b.y)
            for b in BatchStream(spec, "train", 100, stats=stats, loader="process", limit=250)
        ] == [100, 100, 50]
    finally:
        stream.close()


def test_child_errors_keep_their_class_and_message(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    victim = Path(spec.classes[1].files[0]).parent / "signal_1.root"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    stream = BatchStream(spec, "train", 100, stats=stats, loader="process")
    try:
        with pytest.raises(SourceError, match=r"signal_1\.root"):
            list(stream)
    finally:
        stream.close()


def test_a_killed_loader_is_a_clear_error(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    # small pools: the child cannot have sent the whole epoch before it is killed
    spec = spec.with_changes(shuffle_buffer=200, step_size=300)
    stream = BatchStream(spec, "train", 100, stats=stats, loader="process")
    batches = iter(stream)
    next(batches)
    assert stream._process is not None
    os.kill(stream._process._process.pid, signal.SIGKILL)
    with pytest.raises(DataError, match="loader process stopped"):
        list(batches)
    stream.close()


def test_unknown_loader_is_refused(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    with pytest.raises(SpecError, match="loader: got 'gpu'; allowed values are process, thread"):
        BatchStream(spec, "train", 100, stats=stats, loader="gpu")
