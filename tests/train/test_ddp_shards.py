"""Data-parallel training's shards, event by event: files with an ``event_id`` branch
(a feature here, so every row names its event) show that the ranks' streams hold each
event of a split once, whatever the file format; models that cannot be trained in
parallel are refused before anything is read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot
import yaml

from mlaas_jupyter.cli import main
from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.stream.batches import BatchStream
from mlaas_jupyter.stream.stats import compute_stats
from mlaas_jupyter.train._ddp_fit import rank_streams
from mlaas_jupyter.train.runner import train

if TYPE_CHECKING:
    from conftest import GeneratedFile

MakeFile = Callable[..., "GeneratedFile"]
TRAINING: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 128,
    "learning_rate": 3e-3,
    "device": "cpu",
    "early_stopping": None,
}


def id_spec(
    files: list[GeneratedFile] | list[str],
    tmp_path: Path,
    cut: str = "MET_pt > 5",
    **training: Any,
) -> TrainSpec:
    """Files with ``event_id`` (a feature here, so every row names its event)."""
    paths = [f if isinstance(f, str) else f.path for f in files]
    dataset = {
        "tree": None if paths[0].endswith(".parquet") else "Events",
        "files": paths,
        "label_branch": "label",
        "branches": ["event_id", "MET_pt", "MET_phi"],
        "cuts": [cut],
        "normalisation": "none",
        "split": {"train": 0.6, "validation": 0.2, "test": 0.2},
        "seed": 11,
    }
    settings = {**TRAINING, "output": str(tmp_path / "runs"), **training}
    return TrainSpec.from_dict({"dataset": dataset, "training": settings})


@pytest.fixture
def id_files(make_id_file: MakeFile) -> list[GeneratedFile]:
    return [
        make_id_file("a.root", n=1500, seed=0, first_id=0, baskets=5),
        make_id_file("b.root", n=1000, seed=1, first_id=100_000, baskets=1),
        make_id_file("c.root", n=700, seed=2, first_id=200_000, baskets=3),
    ]


def ids(stream: BatchStream) -> np.ndarray[Any, Any]:
    column = stream.layout.feature("event_id").offset
    return np.concatenate([b.x[:, column] for b in stream]).astype(np.int64)


@pytest.mark.parametrize(("world", "loader"), [(2, "thread"), (3, "thread"), (2, "process")])
def test_the_shards_hold_the_single_process_training_set_once(
    id_files: list[GeneratedFile], tmp_path: Path, world: int, loader: str
) -> None:
    spec = id_spec(id_files, tmp_path, workers=world)
    stats = compute_stats(spec.dataset, cache=False)
    single = BatchStream(spec.dataset, "train", 128, stats=stats)
    for epoch in (0, 1):
        single.epoch = epoch
        expected = ids(single)
        parts = []
        for rank in range(world):
            streams = rank_streams(spec, stats, rank, world, loader)
            assert set(streams) == {"train", "validation", "test"}
            streams["train"].epoch = epoch
            parts.append(ids(streams["train"]))
            streams["train"].close()
            assert 0 < len(parts[-1]) < len(expected)
        union = np.concatenate(parts)
        assert len(union) == len(expected) == sum(stats.split_events("train"))
        np.testing.assert_array_equal(np.sort(union), np.sort(expected))
    # each epoch reads its shard in a new order, the same on every run
    stream, again = (rank_streams(spec, stats, 1, world)["train"] for _ in range(2))
    first = ids(stream)
    np.testing.assert_array_equal(ids(again), first)
    assert not np.array_equal(ids(stream), first)


def rewrite(files: list[GeneratedFile], kind: str) -> list[str]:
    """The flat branches of ``files`` as RNTuples (3 clusters) or Parquet files."""
    paths = []
    for g in files:
        flat = {k: np.asarray(g.arrays[k]) for k in ("event_id", "MET_pt", "MET_phi", "label")}
        path = Path(g.path).with_suffix(".parquet" if kind == "parquet" else ".ntuple.root")
        if kind == "parquet":
            pq.write_table(pa.table(flat), path, row_group_size=300)
        else:
            bounds = np.linspace(0, g.entries, 4).astype(int)
            with uproot.recreate(path) as handle:
                out = handle.mkrntuple("Events", ak.zip(flat, depth_limit=1).layout.form)
                for lo, hi in itertools.pairwise(bounds):
                    out.extend({k: v[lo:hi] for k, v in flat.items()})
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("kind", ["rntuple", "parquet"])
def test_rntuples_and_tables_shard_alike(
    id_files: list[GeneratedFile], tmp_path: Path, kind: str
) -> None:
    spec = id_spec(rewrite(id_files, kind), tmp_path, workers=2)
    stats = compute_stats(spec.dataset, cache=False)
    expected = ids(BatchStream(spec.dataset, "train", 128, stats=stats))
    shards = [ids(rank_streams(spec, stats, r, 2)["train"]) for r in range(2)]
    assert all(len(shard) > len(expected) // 4 for shard in shards)
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.sort(expected))


def test_the_validation_and_test_shards_are_those_splits(
    id_files: list[GeneratedFile], tmp_path: Path
) -> None:
    spec = id_spec(id_files, tmp_path, workers=2)
    stats = compute_stats(spec.dataset, cache=False)
    for split in ("validation", "test"):
        single = ids(BatchStream(spec.dataset, split, 128, stats=stats))
        shards = [ids(rank_streams(spec, stats, r, 2)[split]) for r in range(2)]
        np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.sort(single))


def test_a_shard_must_name_a_rank_of_its_world(
    id_files: list[GeneratedFile], tmp_path: Path
) -> None:
    spec = id_spec(id_files, tmp_path)
    with pytest.raises(SpecError, match=r"shard: expected \(rank, world\)"):
        BatchStream(spec.dataset, "train", 64, cache=False, shard=(2, 2))


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ({"name": "bdt"}, ["BDT (scikit-learn)", "workers: 1", "PyTorch"]),
        ({"file": "keras_model.py"}, ["Keras model", "workers: 1", "torch.nn"]),
    ],
)
def test_keras_and_bdt_refuse_workers_before_reading(
    id_files: list[GeneratedFile], tmp_path: Path, model: dict[str, Any], words: list[str]
) -> None:
    (tmp_path / "keras_model.py").write_text("import keras\n\ndef model(idim):\n    pass\n")
    spec = id_spec(id_files, tmp_path, workers=2)
    spec = spec.model_copy(update={"model": type(spec.model).from_dict(model, tmp_path)})
    with pytest.raises(SpecError) as caught:
        train(spec, cache=False)
    assert caught.value.field == "training.workers"
    for word in words:
        assert word in str(caught.value)
    assert not (tmp_path / "runs").exists()  # nothing was started


@pytest.mark.slow
def test_uneven_shards_train_every_event_once_per_epoch(
    id_files: list[GeneratedFile], tmp_path: Path
) -> None:
    # rank 0's entries pass the cut, most of rank 1's do not: rank 1 runs out first
    spec = id_spec(id_files, tmp_path, "event_id % 100000 < 700", workers=2, epochs=2)
    stats = compute_stats(spec.dataset, cache=False)
    sizes = [rank_streams(spec, stats, r, 2)["train"] for r in range(2)]
    counts = [len(ids(stream)) for stream in sizes]
    assert counts[0] > 2 * counts[1] > 0
    events: list[dict[str, Any]] = []
    result = train(spec, on_event=events.append, cache=False)
    train_events = events[1]["events"]["train"]
    assert [e["events"] for e in events if e["type"] == "epoch"] == [train_events] * 2
    assert result.metrics["events"] == events[1]["events"]["test"]
    assert np.isfinite(result.history[-1]["loss"])


def test_too_small_a_local_cluster_is_refused(
    id_files: list[GeneratedFile], tmp_path: Path
) -> None:
    spec = id_spec(id_files, tmp_path, workers=3)
    spec = TrainSpec.from_dict({**spec.to_dict(), "cluster": {"local": {"workers": 2}}})
    with pytest.raises(SpecError, match="needs at least as many workers, it has 2"):
        train(spec, cache=False)


def test_mlaas_train_takes_workers_and_cluster_from_its_options(
    id_files: list[GeneratedFile], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = id_spec(id_files, tmp_path).to_dict()
    spec["model"] = {"name": "bdt"}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["train", str(path), "--workers", "2"]) == 2
    refused = "training.workers: the BDT (scikit-learn) trains in one process"
    assert refused in capsys.readouterr().err
    spec["model"] = {"name": "mlp"}
    path.write_text(yaml.safe_dump(spec))
    assert main(["train", str(path), "--workers", "3", "--cluster", "{local: {workers: 2}}"]) == 2
    assert "cluster.local.workers: training.workers is 3" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
