"""compute_stats against NumPy on the values that pass the cuts; cache; errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np
import pytest
import uproot

from mlaas_jupyter.errors import DataError, ExpressionError, SourceError
from mlaas_jupyter.stream import DatasetSpec, DatasetStats, compute_stats
from mlaas_jupyter.stream.cache import StatsCache
from mlaas_jupyter.stream.plan import _stable_key, split_codes
from mlaas_jupyter.stream.stats import FeatureStats

if TYPE_CHECKING:
    from conftest import GeneratedFile

MakeFile = Callable[..., "GeneratedFile"]


def three_files(make_id_file: MakeFile, **kwargs: Any) -> list[GeneratedFile]:
    return [
        make_id_file("bkg_0.root", seed=0, first_id=0, **kwargs),
        make_id_file("bkg_1.root", n=700, seed=1, first_id=10_000),
        make_id_file("sig_0.root", n=1200, seed=2, first_id=20_000),
    ]


def make_spec(files: list[GeneratedFile], **changes: Any) -> DatasetSpec:
    folder = Path(files[0].path).parent
    data: dict[str, Any] = {
        "tree": "Events",
        "classes": {
            "bkg": str(folder / "bkg_*.root"),
            "sig": {"files": [str(folder / "sig_0.root")], "weight": 2.0},
        },
        "branches": ["MET_*", "Jet_*", "nJet"],
        "new_branches": {"HT": "sum(Jet_pt)"},
        "cuts": ["nJet >= 1"],
        "weights": {"branch": "target + 10"},
        "split": {"train": 0.6, "validation": 0.3, "test": 0.1},
        "seed": 5,
    }
    data.update(changes)
    return DatasetSpec.from_dict(data)


def passing(gen: GeneratedFile) -> np.ndarray[Any, Any]:
    return np.asarray(gen.arrays["nJet"]) >= 1


def test_features_match_numpy(make_id_file: MakeFile, tmp_path: Path) -> None:
    files = three_files(make_id_file)
    stats = compute_stats(make_spec(files), cache=tmp_path / "cache")
    masks = [passing(g) for g in files]
    flat = {
        name: np.concatenate(
            [np.asarray(g.arrays[name])[m] for g, m in zip(files, masks, strict=True)]
        )
        for name in ("MET_pt", "MET_phi", "nJet")
    }
    jets = {
        name: np.concatenate(
            [ak.to_numpy(ak.flatten(g.arrays[name][m])) for g, m in zip(files, masks, strict=True)]
        )
        for name in ("Jet_pt", "Jet_eta")
    }
    flat["HT"] = np.concatenate(
        [
            ak.to_numpy(ak.sum(g.arrays["Jet_pt"][m], axis=1))
            for g, m in zip(files, masks, strict=True)
        ]
    )
    assert set(stats.features) == {"MET_pt", "MET_phi", "nJet", "Jet_pt", "Jet_eta", "HT"}
    for name, values in {**flat, **jets}.items():
        values = values.astype(np.float64)
        feature = stats.features[name]
        assert feature.count == len(values), name
        assert feature.mean == pytest.approx(values.mean(), rel=1e-5), name
        assert feature.std == pytest.approx(values.std(), rel=1e-5), name
        assert feature.min == pytest.approx(values.min(), rel=1e-6), name
        assert feature.max == pytest.approx(values.max(), rel=1e-6), name
    assert stats.features["Jet_pt"].kind == "jagged"
    assert stats.features["HT"].kind == "flat"
    counts = np.concatenate(
        [np.asarray(g.arrays["nJet"])[m] for g, m in zip(files, masks, strict=True)]
    )
    lengths = stats.features["Jet_pt"].lengths
    assert lengths == np.bincount(counts).tolist()
    assert stats.features["Jet_eta"].lengths == lengths
    assert stats.features["Jet_eta"].digest == stats.features["Jet_pt"].digest
    assert stats.features["Jet_pt"].max_length == counts.max()
    for q in (0.5, 0.9, 0.95, 1.0):
        expected = max(1, int(np.sort(counts)[math.ceil(q * len(counts)) - 1]))
        assert stats.features["Jet_pt"].length_quantile(q) == expected, q
    assert stats.entries_total == stats.entries_read == 2900
    assert [f["selected"] for f in stats.files] == [int(m.sum()) for m in masks]
    assert [f["entries"] for f in stats.files] == [1000, 700, 1200]


def test_class_and_split_counts(make_id_file: MakeFile) -> None:
    files = three_files(make_id_file)
    spec = make_spec(files)
    stats = compute_stats(spec, cache=False)
    expected_events = [[0, 0, 0], [0, 0, 0]]
    expected_weights = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    for gen, label, class_weight in zip(files, (0, 0, 1), (1.0, 1.0, 2.0), strict=True):
        entries = np.flatnonzero(passing(gen))
        codes = split_codes(entries, _stable_key(gen.path), spec.seed, spec.split)
        weight = class_weight * (np.asarray(gen.arrays["target"], np.float32)[entries] + 10)
        for s in range(3):
            expected_events[label][s] += int((codes == s).sum())
            expected_weights[label][s] += float(weight[codes == s].sum())
    assert stats.events == expected_events
    for row, expected in zip(stats.weights, expected_weights, strict=True):
        assert row == pytest.approx(expected, rel=1e-5)
    total = sum(int(passing(g).sum()) for g in files)
    assert stats.events_selected == total
    assert (
        sum(stats.split_events("train"))
        + sum(stats.split_events("validation"))
        + sum(stats.split_events("test"))
        == total
    )
    assert stats.split_events("test") == [stats.events[0][2], stats.events[1][2]]
    assert stats.split_weights("train") == [stats.weights[0][0], stats.weights[1][0]]
    for s, p in enumerate((0.6, 0.3, 0.1)):
        n = stats.events[0][s] + stats.events[1][s]
        assert abs(n - total * p) <= 3 * math.sqrt(total * p * (1 - p)), (s, n)


def test_split_fractions_on_many_events(make_id_file: MakeFile) -> None:
    files = [make_id_file("bkg_0.root", n=20_000), make_id_file("sig_0.root", n=20_000, seed=3)]
    spec = make_spec(files, cuts=[], split={"train": 0.5, "validation": 0.2, "test": 0.3})
    stats = compute_stats(spec, cache=False)
    for c in range(2):
        for s, p in enumerate((0.5, 0.2, 0.3)):
            n = 20_000
            assert abs(stats.events[c][s] - n * p) <= 3 * math.sqrt(n * p * (1 - p))


def test_parallel_serial_and_chunked_agree(make_id_file: MakeFile) -> None:
    files = three_files(make_id_file)
    spec = make_spec(files)
    serial = compute_stats(spec, cache=False)
    parallel = compute_stats(spec, cache=False, workers=2)
    assert parallel.to_dict() == serial.to_dict()
    chunked = compute_stats(spec.with_changes(step_size=97), cache=False)
    assert chunked.events == serial.events
    for row, expected in zip(chunked.weights, serial.weights, strict=True):
        assert row == pytest.approx(expected, rel=1e-6)
    for name, feature in serial.features.items():
        other = chunked.features[name]
        assert other.count == feature.count
        assert other.lengths == feature.lengths
        assert other.mean == pytest.approx(feature.mean, rel=1e-9)
        assert other.std == pytest.approx(feature.std, rel=1e-9)


def test_cache_hit_and_invalidation(make_id_file: MakeFile, tmp_path: Path) -> None:
    files = three_files(make_id_file)
    spec = make_spec(files)
    cache = tmp_path / "cache"
    first = compute_stats(spec, cache=cache)
    assert first.entries_read == 2900
    assert len(list(cache.glob("*.json"))) == 1
    second = compute_stats(spec, cache=cache)
    assert second.entries_read == 0
    assert {**second.to_dict(), "entries_read": 2900} == first.to_dict()
    assert isinstance(second, DatasetStats)
    cut = compute_stats(spec.with_changes(cuts=("nJet >= 2",)), cache=cache)
    assert cut.entries_read == 2900
    assert cut.events_selected < first.events_selected
    new = compute_stats(spec.with_changes(new_branches=(("HT", "sum(Jet_pt) * 2"),)), cache=cache)
    assert new.entries_read == 2900
    assert new.features["HT"].mean == pytest.approx(2 * first.features["HT"].mean, rel=1e-6)
    assert compute_stats(spec, cache=cache).entries_read == 0
    make_id_file("sig_0.root", n=900, seed=9, first_id=20_000)  # new content, same name
    rewritten = compute_stats(spec, cache=cache)
    assert rewritten.entries_read == 2600
    assert rewritten.files[2]["entries"] == 900
    assert rewritten.features["MET_pt"].mean != first.features["MET_pt"].mean
    assert compute_stats(spec, cache=cache).entries_read == 0
    (cache / f"{rewritten.key}.json").write_text("{not json")
    assert compute_stats(spec, cache=cache).entries_read == 2600  # damaged entry: recomputed


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_bar_counts_the_files_read(
    make_id_file: MakeFile, capsys: pytest.CaptureFixture[str], workers: int
) -> None:
    spec = make_spec(three_files(make_id_file))
    quiet = compute_stats(spec, cache=False, workers=workers)  # None: stderr is no terminal
    assert capsys.readouterr().err == ""
    shown = compute_stats(spec, cache=False, workers=workers, progress=True)
    err = capsys.readouterr().err
    assert "statistics pass: 100%" in err
    assert "| 3/3 [" in err
    assert shown.to_dict() == quiet.to_dict()


def test_file_added_to_glob_is_seen(make_id_file: MakeFile, tmp_path: Path) -> None:
    files = three_files(make_id_file)
    spec = make_spec(files)
    assert compute_stats(spec, cache=tmp_path / "cache").entries_total == 2900
    make_id_file("bkg_2.root", n=300, seed=4, first_id=30_000)
    assert compute_stats(spec, cache=tmp_path / "cache").entries_total == 3200


@pytest.mark.slow
def test_dask_local_scheduler_same_result(make_id_file: MakeFile) -> None:
    pytest.importorskip("distributed")
    files = three_files(make_id_file)
    spec = make_spec(files)
    local = compute_stats(spec, cache=False)
    dask = compute_stats(spec, cache=False, scheduler="local")
    assert dask.to_dict() == local.to_dict()


def test_no_events_left(make_id_file: MakeFile) -> None:
    files = three_files(make_id_file)
    with pytest.raises(DataError) as info:
        compute_stats(make_spec(files, cuts=["nJet > 100", "MET_pt > 0"]), cache=False)
    assert str(info.value) == (
        "no events left: 2900 events read, none passes the cuts ['nJet > 100', 'MET_pt > 0']"
    )


def nonfinite_events(gen: GeneratedFile) -> np.ndarray[Any, Any]:
    met = np.asarray(gen.arrays["MET_pt"])
    jets = ak.to_numpy(ak.all(np.isfinite(gen.arrays["Jet_pt"]), axis=1))
    return ~np.isfinite(met) | ~jets


def test_nonfinite_error_names_file_branch_and_entries(make_id_file: MakeFile) -> None:
    files = three_files(make_id_file, nonfinite=True)
    bad = nonfinite_events(files[0])
    with pytest.raises(DataError) as info:
        compute_stats(make_spec(files, cuts=[]), cache=False)
    message = str(info.value)
    assert message == (
        f"{files[0].path}: {int(bad.sum())} events in entries 0-1000 have NaN or infinite "
        f"values in MET_pt, HT, Jet_pt (first at entry {int(np.flatnonzero(bad)[0])}); "
        "add a cut such as isfinite(BRANCH) or set nonfinite: drop"
    )
    assert bad.sum() >= 3


def test_nonfinite_drop_counts_and_excludes(make_id_file: MakeFile) -> None:
    files = three_files(make_id_file, nonfinite=True)
    stats = compute_stats(make_spec(files, nonfinite="drop"), cache=False)
    gen = files[0]
    bad = nonfinite_events(gen) & passing(gen)
    assert stats.dropped_nonfinite == int(bad.sum()) > 0
    kept = passing(gen) & ~bad
    assert stats.files[0]["selected"] == int(kept.sum())
    met = np.concatenate(
        [np.asarray(gen.arrays["MET_pt"])[kept]]
        + [np.asarray(g.arrays["MET_pt"])[passing(g)] for g in files[1:]]
    ).astype(np.float64)
    assert stats.features["MET_pt"].mean == pytest.approx(met.mean(), rel=1e-5)
    assert np.isfinite(stats.features["Jet_pt"].min)
    assert stats.events_selected == sum(int(passing(g).sum()) for g in files) - int(bad.sum())
    # the suggested cuts make the error go away and remove exactly those events
    cut = ["isfinite(MET_pt)", "all(isfinite(Jet_pt))", "nJet >= 1"]
    by_cut = compute_stats(make_spec(files, cuts=cut), cache=False)
    assert by_cut.dropped_nonfinite == 0
    assert by_cut.events == stats.events


def test_branch_missing_in_second_file(make_id_file: MakeFile) -> None:
    files = [
        make_id_file("bkg_0.root"),
        make_id_file("bkg_1.root", seed=1, drop=("MET_phi",)),
        make_id_file("sig_0.root", seed=2),
    ]
    with pytest.raises(DataError) as info:
        compute_stats(make_spec(files), cache=False)
    assert str(info.value) == f"{files[1].path}: tree 'Events' has no branch MET_phi"


def test_unknown_branch_in_cut_suggests(make_id_file: MakeFile) -> None:
    files = three_files(make_id_file)
    with pytest.raises(ExpressionError) as info:
        compute_stats(make_spec(files, cuts=["nJets >= 2"]), cache=False)
    assert str(info.value) == (
        "in expression 'nJets >= 2': unknown branch 'nJets'; did you mean nJet?"
    )
    with pytest.raises(ExpressionError, match="unknown branch 'Jet_PT'; did you mean Jet_pt"):
        compute_stats(make_spec(files, new_branches={"HT": "sum(Jet_PT)"}), cache=False)


def test_missing_file_is_source_error(make_id_file: MakeFile, tmp_path: Path) -> None:
    files = three_files(make_id_file)
    spec = make_spec(
        files, classes={"a": str(tmp_path / "bkg_0.root"), "b": str(tmp_path / "nope.root")}
    )
    with pytest.raises(SourceError, match=r"nope\.root: no such file"):
        compute_stats(spec, cache=False)


def test_label_branch_and_regression_counts(make_id_file: MakeFile) -> None:
    gen = make_id_file("all.root", n=1500)
    labelled = DatasetSpec.from_dict(
        {"files": [gen.path], "label_branch": "label", "branches": ["MET_*"]}
    )
    stats = compute_stats(labelled, cache=False)
    labels = np.asarray(gen.arrays["label"])
    assert [sum(row) for row in stats.events] == [
        int((labels == 0).sum()),
        int((labels == 1).sum()),
    ]
    assert "label" not in stats.features
    regression = DatasetSpec.from_dict(
        {"files": [gen.path], "target": "target", "branches": ["MET_pt"]}
    )
    reg = compute_stats(regression, cache=False)
    assert len(reg.events) == 1
    assert sum(reg.events[0]) == 1500
    three = labelled.with_changes(class_names=("a", "b", "c"))
    assert [sum(r) for r in compute_stats(three, cache=False).events][2] == 0


def test_hzz_muons(hzz_path: str) -> None:
    spec = DatasetSpec.from_dict(
        {
            "files": [hzz_path],
            "tree": "events",
            "target": "MET_px",
            "branches": ["Muon_P*", "NMuon"],
            "cuts": ["NMuon >= 1"],
        }
    )
    stats = compute_stats(spec, cache=False)
    with uproot.open(hzz_path) as handle:
        arrays = handle["events"].arrays(["Muon_Px", "NMuon"])
    mask = ak.to_numpy(arrays["NMuon"]) >= 1
    px = ak.to_numpy(ak.flatten(arrays["Muon_Px"][mask])).astype(np.float64)
    assert stats.entries_total == 2421
    assert stats.events_selected == int(mask.sum())
    assert set(stats.features) == {"Muon_Px", "Muon_Py", "Muon_Pz", "NMuon"}
    assert stats.features["Muon_Px"].count == len(px)
    assert stats.features["Muon_Px"].mean == pytest.approx(px.mean(), rel=1e-5)
    assert stats.features["Muon_Px"].std == pytest.approx(px.std(), rel=1e-5)
    assert (
        stats.features["Muon_Px"].lengths
        == np.bincount(ak.to_numpy(arrays["NMuon"])[mask]).tolist()
    )


def test_feature_stats_merge_and_lengths() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, 1000)
    merged = FeatureStats("flat")
    for part in np.array_split(values, [10, 11, 400, 999]):
        piece = FeatureStats("flat")
        piece.add(part)
        merged.merge(piece)
    merged.add(np.array([]))
    assert merged.count == 1000
    assert merged.mean == pytest.approx(values.mean(), rel=1e-12)
    assert merged.std == pytest.approx(values.std(), rel=1e-12)
    assert (merged.min, merged.max) == (values.min(), values.max())
    lengths = FeatureStats("jagged", lengths=[2, 3, 5])
    assert lengths.max_length == 2
    assert [lengths.length_quantile(q) for q in (0.2, 0.21, 0.5, 0.51, 1.0)] == [1, 1, 1, 2, 2]
    empty = FeatureStats("jagged", lengths=[4])
    assert empty.max_length == 1
    assert empty.length_quantile(0.9) == 1
    assert FeatureStats("flat").std == 0.0
    counts = FeatureStats("jagged")
    counts.add_lengths(np.array([0, 2, 2, 5]))
    counts.add_lengths(np.array([1]))
    assert counts.lengths == [1, 1, 2, 0, 0, 1]
    assert counts.max_length == 5
    stats = DatasetStats("k", {"x": counts}, [[1, 2, 3]], [[1.0, 2.0, 3.0]])
    assert DatasetStats.from_dict(stats.to_dict()) == stats


def test_an_unwritable_cache_warns_and_the_statistics_still_come(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    cache = StatsCache(blocker / "stats")
    with pytest.warns(RuntimeWarning, match=r"statistics not cached: cannot write to .*stats"):
        cache.put("key", {"events": 1})
    assert cache.get("key") is None
