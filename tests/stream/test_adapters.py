"""torch_batches / torch_dataset / keras_dataset over a BatchStream."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.stream import Batch, BatchStream, DatasetSpec, DatasetStats, compute_stats
from mlaas_jupyter.stream.adapters import keras_dataset, torch_batches, torch_dataset

if TYPE_CHECKING:
    from conftest import GeneratedFile

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetSpec, DatasetStats]:
    path = write_example_dataset(
        tmp_path_factory.mktemp("toy") / "data", events_per_file=3000, files_per_class=2
    )
    spec = DatasetSpec.from_file(path)
    return spec, compute_stats(spec, cache=False)


@pytest.fixture
def multiclass(make_root_file: Callable[..., GeneratedFile]) -> tuple[DatasetSpec, DatasetStats]:
    files = [make_root_file(f"m{i}.root", n=800, seed=i).path for i in range(2)]
    spec = DatasetSpec.from_dict(
        {"files": files, "label_branch": "label", "class_names": ["a", "b", "c"]}
    )
    return spec, compute_stats(spec, cache=False)


class Replay:
    """A stand-in stream that hands out known batches, to check memory sharing."""

    def __init__(self, stream: BatchStream) -> None:
        self.spec = stream.spec
        self.batches = list(stream)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.batches)


def test_torch_batches_equal_numpy_binary(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    numpy_batches = list(BatchStream(spec, "train", 512, stats=stats))
    tensors = list(torch_batches(BatchStream(spec, "train", 512, stats=stats)))
    assert len(tensors) == len(numpy_batches)
    for (x, y, w), b in zip(tensors, numpy_batches, strict=True):
        assert x.dtype == torch.float32
        assert y.dtype == torch.float32
        assert w.dtype == torch.float32
        assert x.shape == (len(b.y), 34)
        assert np.array_equal(x.numpy(), b.x)
        assert np.array_equal(y.numpy(), b.y.astype(np.float32))
        assert np.array_equal(w.numpy(), b.w)


def test_torch_batches_share_memory(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    replay = Replay(BatchStream(spec, "validation", 1000, stats=stats))
    for (x, _, w), b in zip(torch_batches(replay, device="cpu"), replay.batches, strict=True):  # type: ignore[arg-type]
        assert x.data_ptr() == b.x.ctypes.data
        assert w.data_ptr() == b.w.ctypes.data
        b.x[0, 0] = 12345.0
        assert x[0, 0].item() == 12345.0


def test_torch_multiclass_and_regression_labels(
    multiclass: tuple[DatasetSpec, DatasetStats], make_root_file: Callable[..., GeneratedFile]
) -> None:
    spec, stats = multiclass
    assert spec.task == "multiclass"
    replay = Replay(BatchStream(spec, "train", 128, stats=stats))
    got = list(torch_batches(replay))  # type: ignore[arg-type]
    for (_, y, _), b in zip(got, replay.batches, strict=True):
        assert y.dtype == torch.int64
        assert y.data_ptr() == b.y.ctypes.data  # class indices are not copied
    gen = make_root_file("r.root", n=500, seed=5)
    regression = DatasetSpec.from_dict({"files": [gen.path], "target": "MET_pt * 2"})
    stream = BatchStream(regression, "train", 100, cache=False)
    for x, y, _ in torch_batches(stream):
        assert y.dtype == torch.float32
        assert y.shape == (x.shape[0],)


def test_torch_dataset_with_dataloader(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    from torch.utils.data import DataLoader, IterableDataset

    spec, stats = toy
    numpy_batches = list(BatchStream(spec, "test", 256, stats=stats))
    dataset = torch_dataset(BatchStream(spec, "test", 256, stats=stats))
    assert isinstance(dataset, IterableDataset)
    assert len(dataset) == len(numpy_batches)
    loaded = list(DataLoader(dataset, batch_size=None))
    assert len(loaded) == len(numpy_batches)
    for (x, y, w), b in zip(loaded, numpy_batches, strict=True):
        assert isinstance(x, torch.Tensor)
        assert np.array_equal(x.numpy(), b.x)
        assert np.array_equal(y.numpy(), b.y.astype(np.float32))
        assert np.array_equal(w.numpy(), b.w)
    second = list(DataLoader(dataset, batch_size=None))  # next epoch: same events, new order
    assert sum(len(y) for _, y, _ in second) == sum(len(b.y) for b in numpy_batches)


# -- keras ----------------------------------------------------------------------------------------
class FakePyDataset:
    def __init__(self, workers: int = 1, use_multiprocessing: bool = False) -> None:
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing


@pytest.fixture
def fake_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    """keras_dataset's logic without the seconds it takes to import TensorFlow."""
    fake = types.ModuleType("keras")
    fake.utils = types.SimpleNamespace(PyDataset=FakePyDataset)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keras", fake)


def rows(parts: list[tuple[Any, Any, Any]]) -> np.ndarray[Any, Any]:
    out = np.concatenate([np.column_stack([x, y, w]) for x, y, w in parts])
    return out[np.lexsort(out.T[::-1])]


def check_keras_epochs(stream: BatchStream, stats: DatasetStats) -> None:
    dataset = keras_dataset(stream)
    assert len(dataset) == len(stream) == -(-sum(stats.split_events("train")) // 700)
    epoch0 = [dataset[i] for i in range(len(dataset))]
    assert sum(len(y) for _, y, _ in epoch0) == sum(stats.split_events("train"))
    for x, y, w in epoch0:
        assert x.dtype == np.float32
        assert y.dtype == np.float32
        assert w.dtype == np.float32
    reference = list(BatchStream(stream.spec, "train", 700, stats=stats, shuffle=False))
    expected = rows([(b.x, b.y.astype(np.float32), b.w) for b in reference])
    assert np.array_equal(rows(epoch0), expected)  # every event once
    assert stream.epoch == 1
    dataset.on_epoch_end()
    assert dataset._iterator is None
    epoch1 = [dataset[i] for i in range(len(dataset))]
    assert stream.epoch == 2
    assert not np.array_equal(epoch0[0][0], epoch1[0][0])
    assert np.array_equal(rows(epoch1), expected)
    dataset.on_epoch_end()


@pytest.mark.usefixtures("fake_keras")
def test_keras_dataset_sequence_with_stub(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    spec, stats = toy
    check_keras_epochs(BatchStream(spec, "train", 700, stats=stats), stats)


@pytest.mark.usefixtures("fake_keras")
def test_keras_dataset_restarts_when_a_pass_ends_early(
    toy: tuple[DatasetSpec, DatasetStats],
) -> None:
    spec, stats = toy
    stream = BatchStream(spec, "validation", 300, stats=stats, limit=600)
    dataset = keras_dataset(stream)
    assert len(dataset) == 2
    sizes = [len(dataset[i][1]) for i in range(5)]  # beyond one pass: the next one starts
    assert sizes == [300, 300, 300, 300, 300]
    assert stream.epoch == 3
    dataset.on_epoch_end()  # closes the open pass and its threads
    empty = BatchStream(spec, "validation", 300, stats=stats, limit=0)
    assert len(keras_dataset(empty)) == 1


@pytest.mark.usefixtures("fake_keras")
def test_keras_dataset_serves_the_shape_probe_again_in_the_same_pass(
    toy: tuple[DatasetSpec, DatasetStats],
) -> None:
    """Keras's order of calls in ``fit``: two batches read to learn their shapes, then
    ``on_epoch_end`` outside an epoch, then the epoch between its begin and end."""
    spec, stats = toy
    stream = BatchStream(spec, "train", 700, stats=stats)
    dataset = keras_dataset(stream)
    probe = [dataset[0], dataset[1]]
    dataset.on_epoch_end()
    assert stream.epoch == 1
    dataset.on_epoch_begin()
    epoch = [dataset[i] for i in range(len(dataset))]
    dataset.on_epoch_end()
    assert stream.epoch == 1  # one pass for the probe and the whole epoch
    assert dataset._iterator is None
    assert epoch[0][0] is probe[0][0]
    assert epoch[1][0] is probe[1][0]
    reference = list(BatchStream(spec, "train", 700, stats=stats, shuffle=False))
    expected = rows([(b.x, b.y.astype(np.float32), b.w) for b in reference])
    assert np.array_equal(rows(epoch), expected)  # every event once, the probed ones too
    dataset.on_epoch_begin()  # the next epoch: a new pass, nothing replayed
    assert not np.array_equal(dataset[0][0], probe[0][0])
    assert stream.epoch == 2
    dataset.on_epoch_end()
    assert dataset._iterator is None


@pytest.mark.slow
def test_keras_dataset_and_fit(toy: tuple[DatasetSpec, DatasetStats]) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    spec, stats = toy
    check_keras_epochs(BatchStream(spec, "train", 700, stats=stats), stats)
    stream = BatchStream(spec, "train", 700, stats=stats)
    model = keras.Sequential(
        [
            keras.Input((stream.width,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(keras_dataset(stream), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert all(np.isfinite(history.history["loss"]))
    assert stream.epoch == 2  # one pass per epoch: Keras's shape probe starts none of its own
