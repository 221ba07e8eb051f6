"""BatchStream event by event: files with an ``event_id`` branch let every row of a batch be
traced back to its file and entry, and compared with a naive computation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from mlaas_jupyter.errors import DataError, SourceError
from mlaas_jupyter.stream import Batch, BatchStream, DatasetSpec, compute_stats
from mlaas_jupyter.stream.plan import _stable_key, split_codes

if TYPE_CHECKING:
    from conftest import GeneratedFile

MakeFile = Callable[..., "GeneratedFile"]
SPLIT = {"train": 0.5, "validation": 0.3, "test": 0.2}


@pytest.fixture
def id_files(make_id_file: MakeFile) -> list[GeneratedFile]:
    return [
        make_id_file("a.root", n=1500, seed=0, first_id=0),
        make_id_file("b.root", n=1000, seed=1, first_id=100_000),
        make_id_file("c.root", n=800, seed=2, first_id=200_000),
    ]


def make_spec(files: list[GeneratedFile], **changes: Any) -> DatasetSpec:
    data: dict[str, Any] = {
        "tree": "Events",
        "files": [g.path for g in files],
        "label_branch": "label",
        "branches": ["event_id", "MET_pt", "Jet_*"],
        "cuts": ["MET_pt > 5"],
        "jagged": {"Jet_*": {"length": 3, "pad_value": -1}},
        "normalisation": "none",
        "split": SPLIT,
        "seed": 3,
    }
    data.update(changes)
    return DatasetSpec.from_dict(data)


def lookup(files: list[GeneratedFile]) -> dict[int, tuple[GeneratedFile, int]]:
    return {int(i): (g, e) for g in files for e, i in enumerate(g.arrays["event_id"])}


def rows_of(stream: BatchStream) -> tuple[np.ndarray[Any, Any], list[Batch]]:
    batches = list(stream)
    x = np.concatenate([b.x for b in batches])
    return x, batches


def ids_of(stream: BatchStream) -> np.ndarray[Any, Any]:
    x, _ = rows_of(stream)
    ids = x[:, stream.layout.feature("event_id").offset]
    assert np.array_equal(ids, np.round(ids))
    return ids.astype(np.int64)


def prefetch_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "mlaas-prefetch" and t.is_alive()}


@pytest.fixture
def new_threads() -> Callable[[], set[threading.Thread]]:
    """The prefetch threads started since the test began (other tests' are ignored)."""
    before = prefetch_threads()
    return lambda: prefetch_threads() - before


def expected_split_ids(files: list[GeneratedFile], spec: DatasetSpec) -> list[set[int]]:
    out: list[set[int]] = [set(), set(), set()]
    for g in files:
        entries = np.flatnonzero(np.asarray(g.arrays["MET_pt"]) > 5)
        codes = split_codes(entries, _stable_key(g.path), spec.seed, spec.split)
        for s in range(3):
            out[s] |= set(np.asarray(g.arrays["event_id"])[entries[codes == s]].tolist())
    return out


def test_split_is_per_event_and_stable(id_files: list[GeneratedFile]) -> None:
    spec = make_spec(id_files)
    stats = compute_stats(spec, cache=False)
    expected = expected_split_ids(id_files, spec)
    assert [len(e) for e in expected] == [sum(stats.split_events(s)) for s in SPLIT]
    assert not (expected[0] & expected[1])
    assert not (expected[0] & expected[2])
    assert not (expected[1] & expected[2])
    for step in ("32 MB", 100, 37):
        changed = spec.with_changes(step_size=step)
        for s, split in enumerate(SPLIT):
            ids = ids_of(BatchStream(changed, split, 128, stats=stats))
            assert len(ids) == len(set(ids.tolist())), (step, split)
            assert set(ids.tolist()) == expected[s], (step, split)
    passing = sum(int((np.asarray(g.arrays["MET_pt"]) > 5).sum()) for g in id_files)
    assert sum(len(e) for e in expected) == passing


def test_padding_and_masks_equal_naive(id_files: list[GeneratedFile]) -> None:
    stream = BatchStream(make_spec(id_files), "train", 200, cache=False)
    layout = stream.layout
    assert layout.column_names == [  # tree order, masks last
        "MET_pt",
        "event_id",
        *[f"Jet_{v}[{i}]" for v in ("pt", "eta") for i in range(3)],
        *[f"Jet.mask[{i}]" for i in range(3)],
    ]
    x, _ = rows_of(stream)
    where = lookup(id_files)
    pt, eta, mask = (layout.feature(n).offset for n in ("Jet_pt", "Jet_eta", "Jet.mask"))
    saw_long = saw_empty = False
    id_col, met = layout.feature("event_id").offset, layout.feature("MET_pt").offset
    for row in x:
        gen, entry = where[int(row[id_col])]
        jets_pt = gen.arrays["Jet_pt"][entry].tolist()
        jets_eta = gen.arrays["Jet_eta"][entry].tolist()
        saw_long |= len(jets_pt) > 3
        saw_empty |= not jets_pt
        padded = [*jets_pt[:3], *[-1.0] * (3 - len(jets_pt[:3]))]
        assert row[pt : pt + 3].tolist() == pytest.approx(padded)
        assert row[eta : eta + 3].tolist() == pytest.approx(
            [*jets_eta[:3], *[-1.0] * (3 - len(jets_eta[:3]))]
        )
        assert row[mask : mask + 3].tolist() == [float(j < len(jets_pt)) for j in range(3)]
        assert row[met] == gen.arrays["MET_pt"][entry]
    assert saw_long
    assert saw_empty


@pytest.mark.parametrize("descending", [True, False])
def test_sort_by_equal_naive(id_files: list[GeneratedFile], descending: bool) -> None:
    jagged = {"Jet_*": {"length": 2, "sort_by": "Jet_pt", "descending": descending, "mask": False}}
    stream = BatchStream(make_spec(id_files, jagged=jagged), "validation", 200, cache=False)
    assert stream.layout.column_names == [
        "MET_pt",
        "event_id",
        "Jet_pt[0]",
        "Jet_pt[1]",
        "Jet_eta[0]",
        "Jet_eta[1]",
    ]
    x, _ = rows_of(stream)
    where = lookup(id_files)
    for row in x:
        gen, entry = where[int(row[1])]
        pairs = sorted(
            zip(
                gen.arrays["Jet_pt"][entry].tolist(),
                gen.arrays["Jet_eta"][entry].tolist(),
                strict=True,
            ),
            reverse=descending,
        )[:2]
        pairs += [(0.0, 0.0)] * (2 - len(pairs))
        assert row[2:4].tolist() == pytest.approx([p for p, _ in pairs])
        assert row[4:6].tolist() == pytest.approx([e for _, e in pairs])


def test_label_branch_y_and_event_weights(id_files: list[GeneratedFile]) -> None:
    spec = make_spec(id_files, weights={"branch": "target + 10"})
    assert spec.task == "binary"
    stream = BatchStream(spec, "train", 256, cache=False)
    where = lookup(id_files)
    id_col = stream.layout.feature("event_id").offset
    for batch in stream:
        assert batch.y.dtype == np.int64
        for row, y, w in zip(batch.x, batch.y, batch.w, strict=True):
            gen, entry = where[int(row[id_col])]
            assert y == gen.arrays["label"][entry]
            assert w == pytest.approx(gen.arrays["target"][entry] + 10, rel=1e-6)
    assert "label" not in stream.layout.column_names
    multi = BatchStream(
        spec.with_changes(class_names=("a", "b", "c")), "train", 256, stats=None, cache=False
    )
    assert multi.spec.task == "multiclass"
    assert set(np.concatenate([b.y for b in multi]).tolist()) == {0, 1}


def test_regression_target_y(id_files: list[GeneratedFile]) -> None:
    spec = make_spec(id_files, target="target", label_branch=None, branches=["event_id", "MET_*"])
    assert spec.task == "regression"
    stream = BatchStream(spec, "test", 300, cache=False)
    assert "target" not in stream.layout.column_names
    assert "MET_phi" in stream.layout.column_names
    where = lookup(id_files)
    id_col = stream.layout.feature("event_id").offset
    total = 0
    for batch in stream:
        assert batch.y.dtype == np.float32
        assert (batch.w == 1.0).all()
        for row, y in zip(batch.x, batch.y, strict=True):
            gen, entry = where[int(row[id_col])]
            assert y == gen.arrays["target"][entry]
        total += len(batch.y)
    assert total == stream.events == sum(stream.stats.split_events("test"))
    assert stream.report.class_events == {}


@pytest.mark.parametrize(
    ("label", "found"), [("nJet", "found values [0, 1, 2, 3"), ("MET_pt", "found values [")]
)
def test_labels_outside_range(id_files: list[GeneratedFile], label: str, found: str) -> None:
    spec = make_spec(id_files, label_branch=label, branches=["event_id"])
    with pytest.raises(DataError) as info:
        BatchStream(spec, "train", 100, cache=False)
    message = str(info.value)
    assert message.startswith(
        f"{id_files[0].path}: label branch {label!r} must hold integers 0..1 (classes 0, 1); "
    )
    assert found in message


def truncate(path: str) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(("prefetch", "shuffle"), [(2, False), (2, True), (0, False)])
def test_reader_error_reaches_consumer(
    id_files: list[GeneratedFile],
    prefetch: int,
    shuffle: bool,
    new_threads: Callable[[], set[threading.Thread]],
) -> None:
    spec = make_spec(id_files)
    stats = compute_stats(spec, cache=False)
    truncate(id_files[2].path)
    stream = BatchStream(spec, "train", 100, stats=stats, prefetch=prefetch, shuffle=shuffle)
    seen: list[int] = []
    with pytest.raises(SourceError) as info:
        seen.extend(len(batch.y) for batch in stream)
    assert info.value.path == id_files[2].path
    assert str(info.value).startswith(f"{id_files[2].path}: ")
    assert not new_threads()
    if not shuffle:
        assert sum(seen) > 0  # the first files were read before the broken one


@pytest.mark.parametrize(
    "changes",
    [{"target": "MET_pt", "label_branch": None}, {"weights": {"branch": "MET_pt"}}],
    ids=["target", "weight"],
)
def test_nonfinite_target_or_weight_is_caught(
    make_id_file: MakeFile, changes: dict[str, Any]
) -> None:
    files = [make_id_file("n.root", nonfinite=True), make_id_file("m.root", seed=1)]
    assert np.isnan(files[0].arrays["MET_pt"]).sum() == 2
    spec = make_spec(files, branches=["event_id", "MET_phi"], cuts=[], **changes)
    with pytest.raises(DataError, match="NaN or infinite"):
        list(BatchStream(spec, "train", 500, cache=False))
