"""Finding and opening files: ROOT (scikit-hep-testdata and generated), Parquet and CSV."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skhep_testdata
import uproot

from mlaas_jupyter.errors import SourceError
from mlaas_jupyter.stream.schema import TreeSource
from mlaas_jupyter.stream.sources import inspect_file, list_trees, open_tree, resolve_files
from mlaas_jupyter.stream.tabular import CsvSource, ParquetSource, parse_size

if TYPE_CHECKING:
    from conftest import GeneratedFile

    MakeFile = Callable[..., GeneratedFile]

COLUMNS = ["MET_pt", "MET_phi", "nJet", "Jet_pt", "Jet_eta"]


def read_all(source: TreeSource, columns: list[str], step: int | str = 100, **kw: Any) -> Any:
    """Every chunk of ``source``, and the columns concatenated over the chunks."""
    chunks = list(source.iterate(columns, step, **kw))
    joined = {
        c: (ak.concatenate if isinstance(chunks[0].columns[c], ak.Array) else np.concatenate)(
            [ch.columns[c] for ch in chunks]
        )
        for c in columns
    }
    return chunks, joined


def assert_same(got: Any, expected: Any) -> None:
    if isinstance(expected, ak.Array):
        assert ak.to_list(ak.num(got)) == ak.to_list(ak.num(expected))
        np.testing.assert_array_equal(
            ak.to_numpy(ak.flatten(got)), ak.to_numpy(ak.flatten(expected))
        )
    else:
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- resolve_files


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for name in ("b.root", "a.root", "c.parquet", "notes.txt", "sub/d.root"):
        (root / name).write_bytes(b"root")
    return root


def test_resolve_glob_sorted(data_dir: Path) -> None:
    assert resolve_files([str(data_dir / "*.root")]) == [
        str(data_dir / "a.root"),
        str(data_dir / "b.root"),
    ]
    assert resolve_files([str(data_dir / "**" / "*.root")])[-1] == str(data_dir / "sub" / "d.root")


def test_resolve_directory_keeps_data_files(data_dir: Path) -> None:
    found = resolve_files([str(data_dir)])
    assert [os.path.basename(f) for f in found] == ["a.root", "b.root", "c.parquet"]


def test_resolve_deduplicates_and_keeps_order(data_dir: Path) -> None:
    b, a = str(data_dir / "b.root"), str(data_dir / "a.root")
    assert resolve_files([b, "file://" + a, str(data_dir / "*.root")]) == [b, a]


def test_resolve_missing_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.root")
    with pytest.raises(SourceError, match="no such file") as info:
        resolve_files([missing])
    assert info.value.path == missing
    assert str(info.value).startswith(missing)


def test_resolve_pattern_without_match(data_dir: Path) -> None:
    with pytest.raises(SourceError, match=r"\*\.csv: the pattern matches no files"):
        resolve_files([str(data_dir / "*.csv")])


def test_resolve_directory_without_data(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match="holds no data files"):
        resolve_files([str(tmp_path)])


# ---------------------------------------------------------------- broken ROOT files


def test_text_file_is_not_root(tmp_path: Path) -> None:
    path = tmp_path / "fake.root"
    path.write_text("hello, world\n")
    with pytest.raises(SourceError, match=r"not a ROOT file: it starts with b'hell'") as info:
        open_tree(str(path))
    assert str(path) in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.root"
    path.touch()
    with pytest.raises(SourceError, match="not a ROOT file: the file is empty"):
        inspect_file(str(path))


def test_missing_file_on_open(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.root: no such file"):
        open_tree(str(tmp_path / "nope.root"))


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_root_file(make_root_file: MakeFile, fraction: float) -> None:
    made = make_root_file(n=5000)
    data = Path(made.path).read_bytes()
    Path(made.path).write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(SourceError) as info:
        read_all(open_tree(made.path, "Events"), COLUMNS, step=1000)
    message = str(info.value)
    assert message.startswith(made.path + ": ")
    assert "\n" not in message


def test_wrong_tree_lists_trees(make_root_file: MakeFile) -> None:
    made = make_root_file(n=10, extra_trees=("Other",))
    listed = r"trees in the file: Events \(TTree\), Other \(TTree\)"
    with pytest.raises(SourceError, match=r"no tree 'Evts' \(TTree or RNTuple\); " + listed):
        open_tree(made.path, "Evts")


def test_two_trees_need_a_name(make_root_file: MakeFile) -> None:
    made = make_root_file(n=10, extra_trees=("Other",))
    with pytest.raises(SourceError, match=r"name the tree to read: the file has 2 trees"):
        open_tree(made.path)
    assert list_trees(made.path) == ["Events", "Other"]
    assert [(t.name, t.entries) for t in inspect_file(made.path)] == [("Events", 10), ("Other", 10)]
    assert [t.name for t in inspect_file(made.path, "Other")] == ["Other"]
    other = open_tree(made.path, "Other")
    np.testing.assert_array_equal(read_all(other, ["x"])[1]["x"], np.arange(10.0))


def test_unknown_branch(make_root_file: MakeFile) -> None:
    source = open_tree(make_root_file(n=10).path)
    with pytest.raises(SourceError, match="has no branch 'Muon_pt'"):
        next(source.iterate(["MET_pt", "Muon_pt"], 5))


# ---------------------------------------------------------------- scikit-hep-testdata


def test_hzz_kinds() -> None:
    (info,) = inspect_file(skhep_testdata.data_path("uproot-HZZ.root"))
    assert (info.name, info.entries, len(info.branches)) == ("events", 2421, 51)
    by_name = {b.name: b for b in info.branches}
    assert (by_name["NJet"].kind, by_name["NJet"].dtype) == ("flat", "int32")
    assert (by_name["Jet_Px"].kind, by_name["Jet_Px"].dtype, by_name["Jet_Px"].type) == (
        "jagged",
        "float32",
        "float[]",
    )
    assert (by_name["Jet_ID"].kind, by_name["Jet_ID"].dtype) == ("jagged", "bool")
    assert (by_name["triggerIsoMu24"].kind, by_name["triggerIsoMu24"].dtype) == ("flat", "bool")
    assert not [b for b in info.branches if b.kind == "unsupported"]


def test_objects_are_unsupported() -> None:
    (info,) = inspect_file(skhep_testdata.data_path("uproot-HZZ-objects.root"))
    unsupported = {b.name: b for b in info.branches if b.kind == "unsupported"}
    for name in ("jetp4", "muonp4", "electronp4", "photonp4"):
        assert unsupported[name].type == "std::vector<TLorentzVector>"
        assert unsupported[name].reason == "objects or nested containers"
        assert unsupported[name].to_dict() == {
            "name": name,
            "type": "std::vector<TLorentzVector>",
            "kind": "unsupported",
            "reason": "objects or nested containers",
        }
    assert unsupported["MET"].type == "TVector2"
    assert {b.name: b.kind for b in info.branches}["jetbtag"] == "jagged"


def test_zmumu_flat_and_string() -> None:
    (info,) = inspect_file(skhep_testdata.data_path("uproot-Zmumu.root"))
    kinds = {b.name: (b.kind, b.dtype) for b in info.branches}
    assert info.entries == 2304
    assert kinds["Type"] == ("unsupported", None)
    assert kinds["M"] == ("flat", "float64")
    assert kinds["Run"] == ("flat", "int32")
    source = open_tree(skhep_testdata.data_path("uproot-Zmumu.root"))
    chunk = next(source.iterate(["M", "Q1"], 10))
    assert chunk.columns["M"].dtype == np.float64
    assert chunk.columns["M"][0] == pytest.approx(82.4626915551)


def test_small_dy_with_offsets() -> None:
    source = open_tree(skhep_testdata.data_path("uproot-small-dy-withoffsets.root"))
    assert (source.name, source.entries) == ("tree", 501)
    assert source.branches["nJet"].dtype == "uint32"
    _, joined = read_all(source, ["nJet", "Jet_pt"], step=64)
    np.testing.assert_array_equal(ak.to_numpy(ak.num(joined["Jet_pt"])), joined["nJet"])


@pytest.mark.parametrize("variant", ["lz4", "zstd", "lzma", "uncompressed", "zlib"])
def test_hzz_compressions_read_the_same(variant: str) -> None:
    columns = ["NJet", "Jet_Px", "Muon_E", "MET_px"]
    _, reference = read_all(open_tree(skhep_testdata.data_path("uproot-HZZ.root")), columns, 500)
    path = skhep_testdata.data_path(f"uproot-HZZ-{variant}.root")
    chunks, joined = read_all(open_tree(path), columns, 500)
    assert [c.entry_stop for c in chunks] == [500, 1000, 1500, 2000, 2421]
    for column in columns:
        assert_same(joined[column], reference[column])


# ---------------------------------------------------------------- generated ROOT files


def test_generated_compressions(make_root_file: MakeFile, root_compression: str) -> None:
    made = make_root_file(n=700, compression=root_compression, nonfinite=True)
    source = open_tree(made.path)
    kinds = {name: (b.kind, b.dtype) for name, b in source.branches.items()}
    assert kinds["MET_pt"] == ("flat", "float32")
    assert kinds["nJet"] == ("flat", "int32")
    assert kinds["Jet_pt"] == ("jagged", "float32")
    chunks, joined = read_all(source, COLUMNS, step=256)
    assert [(c.entry_start, c.entry_stop) for c in chunks] == [(0, 256), (256, 512), (512, 700)]
    for column in COLUMNS:
        assert_same(joined[column], made.arrays[column])
    assert np.flatnonzero(np.isnan(joined["MET_pt"])).tolist() == [1, 5]
    assert len(joined["Jet_pt"][0]) == 0


def test_chunk_boundaries_and_types(make_root_file: MakeFile) -> None:
    made = make_root_file(n=1000, baskets=3)
    source = open_tree(made.path)
    chunks, joined = read_all(source, COLUMNS, step=128, entry_start=150, entry_stop=777)
    assert chunks[0].entry_start == 150
    assert chunks[-1].entry_stop == 777
    assert sum(c.entries for c in chunks) == 627
    assert all(a.entry_stop == b.entry_start for a, b in itertools.pairwise(chunks))
    first = chunks[0].columns
    assert isinstance(first["MET_pt"], np.ndarray)
    assert first["MET_pt"].shape == (128,)
    assert str(ak.type(first["Jet_pt"])) == "128 * var * float32"
    for column in COLUMNS:
        assert_same(joined[column], made.arrays[column][150:777])


def test_step_as_size(make_root_file: MakeFile) -> None:
    source = open_tree(make_root_file(n=2000, baskets=8).path)
    step = source.entries_per_step("2 kB", ["MET_pt"])
    assert 1 <= step < 2000
    chunks, _ = read_all(source, ["MET_pt"], step="2 kB")
    assert sum(c.entries for c in chunks) == 2000
    assert source.entries_per_step(37, ["MET_pt"]) == 37


# ---------------------------------------------------------------- Parquet and CSV


def test_parquet_round_trip(make_table_file: MakeFile, make_root_file: MakeFile) -> None:
    made = make_table_file("events.parquet", n=1000, row_group_size=128)
    source = open_tree(made.path)
    assert isinstance(source, ParquetSource)
    assert (source.name, source.entries) == ("table", 1000)
    kinds = {name: (b.kind, b.dtype) for name, b in source.branches.items()}
    assert kinds["Jet_pt"] == ("jagged", "float32")
    assert kinds["nJet"] == ("flat", "int32")
    chunks, joined = read_all(source, COLUMNS, step=100, entry_start=130, entry_stop=901)
    assert [(c.entry_start, c.entry_stop) for c in chunks][:2] == [(130, 230), (230, 330)]
    assert chunks[-1].entry_stop == 901
    assert str(ak.type(chunks[0].columns["Jet_eta"])) == "100 * var * float32"
    # The same events through ROOT and Parquet give the same values.
    root = open_tree(make_root_file(n=1000).path)
    _, from_root = read_all(root, COLUMNS, step=100, entry_start=130, entry_stop=901)
    for column in COLUMNS:
        assert_same(joined[column], made.arrays[column][130:901])
        assert_same(joined[column], from_root[column])
    source.close()


def test_csv_round_trip(make_table_file: MakeFile) -> None:
    made = make_table_file("events.csv", n=500, nonfinite=True)
    source = open_tree(made.path)
    assert isinstance(source, CsvSource)
    assert source.entries == 500
    kinds = {name: (b.kind, b.dtype) for name, b in source.branches.items()}
    assert kinds == {
        "MET_pt": ("flat", "float64"),
        "MET_phi": ("flat", "float64"),
        "nJet": ("flat", "int64"),
        "label": ("flat", "int64"),
    }
    chunks, joined = read_all(source, ["MET_pt", "nJet"], step=64, entry_start=3, entry_stop=400)
    assert [c.entries for c in chunks] == [64] * 6 + [13]
    # float32 values are written in their shortest form, so they come back exactly.
    np.testing.assert_array_equal(joined["MET_pt"].astype(np.float32), made.arrays["MET_pt"][3:400])
    np.testing.assert_array_equal(joined["nJet"], made.arrays["nJet"][3:400])
    assert np.isposinf(joined["MET_pt"][7 - 3])


def test_fixed_and_unsupported_parquet_columns(tmp_path: Path) -> None:
    path = str(tmp_path / "mixed.parquet")
    values = np.arange(30, dtype=np.float64)
    table = pa.table(
        {
            "p4": pa.FixedSizeListArray.from_arrays(pa.array(values), 3),
            "tag": pa.array([str(i) for i in range(10)]),
            "rec": pa.array([{"a": i} for i in range(10)]),
            "nested": pa.array([[[1.0]]] * 10),
            "w": pa.array([1.0, None] * 5, type=pa.float32()),
            "k": pa.array([1, None] * 5, type=pa.int32()),
        }
    )
    pq.write_table(table, path, row_group_size=4)
    source = open_tree(path)
    branches = source.branches
    p4, tag = branches["p4"], branches["tag"]
    assert (p4.kind, p4.width, p4.dtype) == ("fixed", 3, "float64")
    assert (tag.kind, tag.reason) == ("unsupported", "strings are not numbers")
    assert branches["rec"].reason == "records (structs) are not numbers"
    assert branches["nested"].reason == "lists of non-numbers or nested lists"
    chunks, joined = read_all(source, ["p4", "w"], step=3, entry_start=2, entry_stop=9)
    assert [(c.entry_start, c.entry_stop) for c in chunks] == [(2, 5), (5, 8), (8, 9)]
    np.testing.assert_array_equal(joined["p4"], values.reshape(10, 3)[2:9])
    assert np.isnan(joined["w"]).tolist() == [False, True] * 3 + [False]
    with pytest.raises(SourceError, match="column 'tag' cannot be read: strings are not numbers"):
        next(source.iterate(["tag"], 5))
    with pytest.raises(SourceError, match=r"cannot convert rows 0-5: column 'k' has 2 missing"):
        next(source.iterate(["k"], 5))
    with pytest.raises(SourceError, match="no column 'zz'"):
        next(source.iterate(["zz"], 5))


def test_table_step_size(make_table_file: MakeFile) -> None:
    source = open_tree(make_table_file(n=2000).path)
    # Two float32 columns: 8 bytes per row, plus the validity bitmaps pyarrow allocates.
    assert 960 <= source.entries_per_step("8 kB", ["MET_pt", "MET_phi"]) <= 1000
    assert source.entries_per_step(7, ["MET_pt"]) == 7
    with pytest.raises(SourceError, match="cannot size steps of '8 parsecs'"):
        source.entries_per_step("8 parsecs", ["MET_pt"])
    assert parse_size("32 MB") == 32_000_000
    assert parse_size("1.5KiB") == 1536


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("text.parquet", b"hello\n", r"not a Parquet file: it starts with b'hell'"),
        ("empty.parquet", b"", "not a Parquet file: the file is empty"),
        ("empty.csv", b"", "not a CSV file: the file is empty"),
        ("binary.csv", b"\x00\x01root", "not a CSV file: it holds binary data"),
    ],
)
def test_broken_tables(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as info:
        open_tree(str(path))
    assert info.value.path == str(path)


def test_truncated_parquet(make_table_file: MakeFile) -> None:
    made = make_table_file(n=1000)
    data = Path(made.path).read_bytes()
    Path(made.path).write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="truncated or corrupted Parquet file") as info:
        open_tree(made.path)
    assert str(info.value).startswith(made.path)


def test_missing_table(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"x\.parquet: no such file"):
        open_tree(str(tmp_path / "x.parquet"))


def test_csv_bad_value_names_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    rows = "".join(f"{i},{i}\n" for i in range(200_000))
    path.write_text("a,b\n" + rows + "oops,1\n")
    source = open_tree(str(path))
    assert source.entries == 200_001
    with pytest.raises(SourceError, match=r"cannot read rows \d+-200001 of the CSV file") as info:
        read_all(source, ["a"], step=50_000)
    assert "invalid value 'oops'" in str(info.value)


def test_fixed_size_arrays_of_a_ttree_are_columns(tmp_path: Path) -> None:
    # float[3] is a sub-array dtype (kind 'V'): its numbers are those of its base type
    with uproot.recreate(tmp_path / "fixed.root") as handle:
        handle.mktree("T", {"v": ("f4", (3,)), "x": "f4"})
        handle["T"].extend({"v": np.arange(12, dtype="f4").reshape(4, 3), "x": np.ones(4, "f4")})
    source = open_tree(str(tmp_path / "fixed.root"))
    try:
        info = source.branches["v"]
        assert (info.kind, info.dtype, info.width) == ("fixed", "float32", 3)
        chunk = next(iter(source.iterate(["v"], 100)))
        np.testing.assert_array_equal(chunk.columns["v"], np.arange(12).reshape(4, 3))
    finally:
        source.close()
