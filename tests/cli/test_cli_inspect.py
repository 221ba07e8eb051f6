"""``mlaas inspect`` through :func:`mlaas_jupyter.cli.main`, output captured."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skhep_testdata

from mlaas_jupyter import cli
from mlaas_jupyter.stream.sources import inspect_file

if TYPE_CHECKING:
    from conftest import GeneratedFile

    MakeFile = Callable[..., GeneratedFile]

OBJECTS = skhep_testdata.data_path("uproot-HZZ-objects.root")
UNSUPPORTED_OBJECTS = [
    "jetp4",
    "muonp4",
    "electronp4",
    "photonp4",
    "MET",
    "MC_bquarkhadronic",
    "MC_bquarkleptonic",
    "MC_wdecayb",
    "MC_wdecaybbar",
    "MC_lepton",
    "MC_neutrino",
]


@pytest.fixture(autouse=True)
def only_inspect(monkeypatch: pytest.MonkeyPatch) -> None:
    # build_parser imports every command module; these tests need only inspect's.
    monkeypatch.setattr(cli, "COMMANDS", {"inspect": cli.COMMANDS["inspect"]})


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["inspect", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_table(capsys: pytest.CaptureFixture[str], hzz_path: str) -> None:
    code, out, err = run(capsys, hzz_path)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{hzz_path}  TTree 'events': 2421 entries, 51 branches"
    assert lines[1].split() == ["name", "kind", "type", "detail"]
    assert re.search(r"^  NJet +flat +int32_t$", out, re.MULTILINE)
    assert re.search(r"^  Jet_Px +jagged +float\[\]$", out, re.MULTILINE)
    assert re.search(r"^  triggerIsoMu24 +flat +bool$", out, re.MULTILINE)
    # Aligned: every row has its kind in the same column.
    assert len({line.index(line.split()[1], len(line.split()[0]) + 2) for line in lines[2:]}) == 1
    assert len(lines) == 2 + 51
    assert "warning" not in out


def test_json_matches_inspect_file(capsys: pytest.CaptureFixture[str], hzz_path: str) -> None:
    code, out, err = run(capsys, hzz_path, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [info.to_dict() for info in inspect_file(hzz_path)]


def test_filter(capsys: pytest.CaptureFixture[str], hzz_path: str) -> None:
    code, out, _ = run(capsys, hzz_path, "--json", "--filter", "Jet_*")
    (tree,) = json.loads(out)
    assert code == 0
    assert tree["entries"] == 2421
    assert [b["name"] for b in tree["branches"]] == [
        "Jet_Px",
        "Jet_Py",
        "Jet_Pz",
        "Jet_E",
        "Jet_btag",
        "Jet_ID",
    ]
    code, out, _ = run(capsys, hzz_path, "--filter", "nothing*")
    assert out.splitlines() == [
        f"{hzz_path}  TTree 'events': 2421 entries, 0 branches",
        "no branch matches 'nothing*'",
    ]


def test_unsupported_warning(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, OBJECTS)
    assert (code, err) == (0, "")
    assert re.search(
        r"^  jetp4 +unsupported +std::vector<TLorentzVector>  objects or nested containers$",
        out,
        re.MULTILINE,
    )
    assert out.splitlines()[-1] == (
        f"warning: 11 unsupported branches will be excluded: {', '.join(UNSUPPORTED_OBJECTS)}"
    )
    code, out, err = run(capsys, OBJECTS, "--json", "--filter", "*p4")
    assert [b["kind"] for b in json.loads(out)[0]["branches"]] == ["unsupported"] * 4
    assert err == (
        "warning: 4 unsupported branches will be excluded: jetp4, muonp4, electronp4, photonp4\n"
    )


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.root")
    code, out, err = run(capsys, missing)
    assert (code, out) == (2, "")
    assert err == f"mlaas inspect: error: {missing}: no such file\n"


def test_tree_option(capsys: pytest.CaptureFixture[str], make_root_file: MakeFile) -> None:
    made = make_root_file(n=25, extra_trees=("Other",))
    code, out, _ = run(capsys, made.path)
    headers = [line for line in out.splitlines() if not line.startswith("  ")]
    assert headers == [
        f"{made.path}  TTree 'Events': 25 entries, 6 branches",
        "",
        f"{made.path}  TTree 'Other': 25 entries, 1 branch",
    ]
    code, out, _ = run(capsys, made.path, "--tree", "Other", "--json")
    assert [(t["name"], t["entries"]) for t in json.loads(out)] == [("Other", 25)]
    code, out, err = run(capsys, made.path, "--tree", "Nope")
    assert code == 2
    assert err.strip().endswith(
        "no tree 'Nope' (TTree or RNTuple); trees in the file: Events (TTree), Other (TTree)"
    )


def test_directory_of_mixed_files(
    capsys: pytest.CaptureFixture[str], make_root_file: MakeFile, tmp_path: Path
) -> None:
    make_root_file("data/a.root", n=12)
    values = pa.array(np.arange(12, dtype=np.float32))
    pq.write_table(
        pa.table({"p4": pa.FixedSizeListArray.from_arrays(values, 3)}), tmp_path / "data/b.parquet"
    )
    code, out, _ = run(capsys, str(tmp_path / "data"))
    assert code == 0
    assert f"{tmp_path / 'data/b.parquet'}  Parquet 'table': 4 entries, 1 branch" in out
    assert re.search(r"^  p4 +fixed +fixed_size_list<\w+: float>\[3\]  width 3$", out, re.M)
    assert re.search(r"^  Jet_eta +jagged +float\[\]$", out, re.MULTILINE)
