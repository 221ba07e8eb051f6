"""BatchStream on the toy dataset: shapes, epochs, shuffling, balance, limits, prefetch."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.stream import Batch, BatchStream, DatasetSpec, DatasetStats, compute_stats


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetSpec, DatasetStats]:
    path = write_example_dataset(
        tmp_path_factory.mktemp("toy") / "data", events_per_file=3000, files_per_class=2
    )
    spec = DatasetSpec.from_file(path)
    return spec, compute_stats(spec, cache=False)


def epoch(stream: BatchStream) -> list[Batch]:
    return list(stream)


def stacked(batches: list[Batch]) -> np.ndarray[Any, Any]:
    """All rows of an epoch with y and w appended, as one array."""
    return np.concatenate([np.column_stack([b.x, b.y, b.w]) for b in batches])


def sorted_rows(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return rows[np.lexsort(rows.T[::-1])]


def prefetch_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "mlaas-prefetch" and t.is_alive()}


@pytest.fixture
def new_threads() -> Callable[[], set[threading.Thread]]:
    """The prefetch threads started since the test began (other tests' are ignored)."""
    before = prefetch_threads()
    return lambda: prefetch_threads() - before


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_shapes_and_counts(toy: tuple[DatasetSpec, DatasetStats], split: str) -> None:
    spec, stats = toy
    stream = BatchStream(spec, split, 256, stats=stats)
    batches = epoch(stream)
    expected = sum(stats.split_events(split))
    assert stream.events == expected
    assert len(stream) == math.ceil(expected / 256) == len(batches)
    assert sum(len(b.y) for b in batches) == expected
    assert stream.width == stream.layout.width == 34
    for b in batches:
        assert b.x.dtype == np.float32
        assert b.x.flags.c_contiguous
        assert b.x.shape == (len(b.y), 34)
        assert b.y.dtype == np.int64
        assert b.w.dtype == np.float32
        assert b.w.shape == b.y.shape
        assert np.isfinite(b.x).all()
    assert [len(b.y) for b in batches[:-1]] == [256] * (len(batches) - 1)
    report = stream.report
    assert report.events == expected
    assert report.batches == len(batches)
    assert report.class_events == dict(enumerate(stats.split_events(split)))
    assert report.entries_read == 12_000


def test_column_names(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    layout = BatchStream(spec, "train", 256, stats=stats).layout
    jets = [f"Jet_{v}[{i}]" for v in ("pt", "eta", "mass", "btag") for i in range(6)]
    masks = [f"Jet.mask[{i}]" for i in range(6)]
    assert layout.column_names == ["MET_pt", "MET_phi", "nJet", *jets, "HT", *masks]
    assert layout.feature("Jet.mask").mask_of == ("Jet_pt", "Jet_eta", "Jet_mass", "Jet_btag")
    assert layout.feature("Jet_eta").sort_by == "Jet_pt"


def test_every_event_once_per_epoch(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    plain = stacked(epoch(BatchStream(spec, "train", 300, stats=stats, shuffle=False)))
    mixed = stacked(epoch(BatchStream(spec, "train", 300, stats=stats, shuffle=True)))
    assert plain.shape == mixed.shape == (sum(stats.split_events("train")), 36)
    assert not np.array_equal(plain, mixed)
    assert np.array_equal(sorted_rows(plain), sorted_rows(mixed))
    assert len(np.unique(plain, axis=0)) == len(plain)  # no event twice


def test_same_epoch_same_batches_other_epoch_other_order(
    toy: tuple[DatasetSpec, DatasetStats],
) -> None:
    spec, stats = toy
    first = BatchStream(spec, "train", 512, stats=stats)
    second = BatchStream(spec, "train", 512, stats=stats)
    epoch0 = epoch(first)
    again = epoch(second)
    assert len(epoch0) == len(again)
    for a, b in zip(epoch0, again, strict=True):
        assert np.array_equal(a.x, b.x)
        assert np.array_equal(a.y, b.y)
        assert np.array_equal(a.w, b.w)
    epoch1 = epoch(first)
    assert first.epoch == 2
    assert not np.array_equal(epoch0[0].x, epoch1[0].x)
    assert np.array_equal(sorted_rows(stacked(epoch0)), sorted_rows(stacked(epoch1)))
    other_seed = BatchStream(spec.with_changes(seed=2), "train", 512, cache=False)
    assert not np.array_equal(epoch(other_seed)[0].x, epoch0[0].x)


@pytest.mark.parametrize("split", ["train", "validation"])
def test_first_batches_mix_classes(toy: tuple[DatasetSpec, DatasetStats], split: str) -> None:
    spec, stats = toy
    stream = BatchStream(spec, split, 64, stats=stats, shuffle=True)
    batches = iter(stream)
    for _ in range(3):
        batch = next(batches)
        assert set(batch.y.tolist()) == {0, 1}
    batches.close()  # type: ignore[attr-defined]


def test_prefetch_depths_agree(
    toy: tuple[DatasetSpec, DatasetStats], new_threads: Callable[[], set[threading.Thread]]
) -> None:
    spec, stats = toy
    runs = [epoch(BatchStream(spec, "train", 200, stats=stats, prefetch=depth)) for depth in (0, 2)]
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs, strict=True):
        assert np.array_equal(a.x, b.x)
        assert np.array_equal(a.y, b.y)
        assert np.array_equal(a.w, b.w)
    assert not new_threads()


def test_balance_weights(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, _ = toy
    spec = spec.with_changes(balance="weights")
    stream = BatchStream(spec, "train", 1000, cache=False)
    rows = stacked(epoch(stream))
    y, w = rows[:, -2], rows[:, -1]
    sums = [float(w[y == c].sum(dtype=np.float64)) for c in (0, 1)]
    assert sums[0] == pytest.approx(sums[1], rel=1e-4)
    assert sum(sums) == pytest.approx(sum(stream.stats.split_weights("train")), rel=1e-4)
    raw = stream.stats.split_weights("train")
    assert raw[0] != pytest.approx(raw[1], rel=1e-2)  # not equal to begin with
    counts = np.bincount(y.astype(int)).tolist()
    assert counts == stream.stats.split_events("train")


def test_balance_sample(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, _ = toy
    spec = spec.with_changes(balance="sample")
    stream = BatchStream(spec, "train", 500, cache=False)
    counts = stream.stats.split_events("train")
    assert counts[0] != counts[1]
    y = np.concatenate([b.y for b in epoch(stream)])
    got = np.bincount(y).tolist()
    small = min(counts)
    assert got[int(np.argmin(counts))] == small  # the smaller class is kept whole
    p = small / max(counts)
    big = max(counts)
    assert abs(got[int(np.argmax(counts))] - small) <= 3 * math.sqrt(big * p * (1 - p))
    assert stream.events == 2 * small
    test = BatchStream(spec, "test", 500, stats=stream.stats)
    assert np.bincount(np.concatenate([b.y for b in epoch(test)])).tolist() == (
        stream.stats.split_events("test")
    )


@pytest.mark.parametrize("prefetch", [0, 2])
def test_limit(toy: tuple[DatasetSpec, DatasetStats], prefetch: int) -> None:
    spec, stats = toy
    stream = BatchStream(spec, "train", 256, stats=stats, limit=1000, prefetch=prefetch)
    batches = epoch(stream)
    assert stream.events == 1000
    assert len(stream) == 4
    assert [len(b.y) for b in batches] == [256, 256, 256, 232]
    big = BatchStream(spec, "train", 256, stats=stats, limit=10**9)
    assert big.events == sum(stats.split_events("train"))


def test_limit_mixes_classes(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    stream = BatchStream(spec, "train", 100, stats=stats, limit=2000)
    y = np.concatenate([b.y for b in stream])
    assert len(y) == 2000
    assert set(y.tolist()) == {0, 1}


def test_drop_last(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    total = sum(stats.split_events("validation"))
    stream = BatchStream(spec, "validation", 500, stats=stats, drop_last=True)
    batches = epoch(stream)
    assert total % 500 != 0
    assert len(stream) == total // 500 == len(batches)
    assert all(len(b.y) == 500 for b in batches)
    shuffled = BatchStream(spec, "train", 700, stats=stats, drop_last=True)
    sizes = [len(b.y) for b in epoch(shuffled)]
    assert sizes == [700] * (sum(stats.split_events("train")) // 700)


def test_sort_by_leading_jet_first_raw_units(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, _ = toy
    spec = spec.with_changes(normalisation="none")
    stream = BatchStream(spec, "train", 1000, cache=False)
    layout = stream.layout
    pt, mask = layout.feature("Jet_pt"), layout.feature("Jet.mask")
    rows = np.concatenate([b.x for b in epoch(stream)])
    jets = rows[:, pt.offset : pt.offset + 6]
    real = rows[:, mask.offset : mask.offset + 6].astype(bool)
    assert (jets[:, 0] >= 20.0).all()  # raw GeV: every event passes nJet >= 2
    assert (real[:, :2]).all()
    both = real[:, 1:] & real[:, :-1]
    assert (jets[:, :-1][both] >= jets[:, 1:][both]).all()
    assert (jets[~real] == 0.0).all()
    n_jet = rows[:, layout.feature("nJet").offset]
    assert np.array_equal(real.sum(axis=1), np.minimum(n_jet, 6))
    ht = rows[:, layout.feature("HT").offset]
    assert (ht >= jets.sum(axis=1) * (1 - 1e-5)).all()


def test_standard_normalisation(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    raw = BatchStream(
        spec.with_changes(normalisation="none"), "test", 4096, shuffle=False, cache=False
    )
    norm = BatchStream(spec, "test", 4096, stats=stats, shuffle=False)
    a, b = stacked(epoch(raw)), stacked(epoch(norm))
    met = stats.features["MET_pt"]
    np.testing.assert_allclose(b[:, 0], (a[:, 0] - met.mean) / met.std, rtol=1e-4, atol=1e-5)
    eta = norm.layout.feature("Jet_eta")
    cols = slice(eta.offset, eta.offset + 6)
    real = a[:, norm.layout.feature("Jet.mask").offset + np.arange(6)].astype(bool)
    f = stats.features["Jet_eta"]
    np.testing.assert_allclose(
        b[:, cols][real], (a[:, cols][real] - f.mean) / f.std, rtol=1e-4, atol=1e-5
    )
    assert (b[:, cols][~real] == 0.0).all()  # pad value as given, not normalised


def test_breaking_out_early_leaves_no_thread(
    toy: tuple[DatasetSpec, DatasetStats], new_threads: Callable[[], set[threading.Thread]]
) -> None:
    spec, stats = toy
    stream = BatchStream(spec, "train", 64, stats=stats, prefetch=2)
    for batch in stream:
        assert len(batch.y) == 64
        break
    assert not new_threads()
    it = iter(stream)
    next(it)
    it.close()  # type: ignore[attr-defined]
    assert not new_threads()
    assert len(epoch(stream)) == len(stream)  # the stream still works afterwards


def test_bad_arguments(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    from mlaas_jupyter.errors import SpecError

    spec, stats = toy
    with pytest.raises(SpecError, match=r"^split: got 'training'; allowed values are train"):
        BatchStream(spec, "training", stats=stats)
    with pytest.raises(SpecError, match=r"^batch_size: must be >= 1, got 0"):
        BatchStream(spec, "train", 0, stats=stats)


def test_spec_path_and_cache_folder(toy: tuple[DatasetSpec, DatasetStats], tmp_path: Path) -> None:
    spec, stats = toy
    path = tmp_path / "spec.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    stream = BatchStream(path, "validation", 1024, cache=tmp_path / "cache")
    assert stream.stats.entries_read == 12_000
    assert BatchStream(path, "validation", cache=tmp_path / "cache").stats.entries_read == 0
    assert stream.stats.events == stats.events
