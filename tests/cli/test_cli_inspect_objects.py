"""``mlaas inspect`` of files whose objects are not (all) trees: never a silent empty.

Issue 19, item 6. Real files: scikit-hep-testdata's histogram-only file, its file of
histograms beside a TNtuple, its pre-1.0 RNTuple, and files written here by uproot (an
RNTuple beside a histogram, a tree whose key bytes are corrupted). What cannot be read
is said with what the file holds; nothing readable at all is exit status 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skhep_testdata
import uproot

from mlaas_jupyter import cli

HISTOGRAMS = str(skhep_testdata.data_path("uproot-histograms.root"))
HEPDATA = str(skhep_testdata.data_path("uproot-hepdata-example.root"))
STAFF = str(skhep_testdata.data_path("uproot-ntpl001_staff.root"))
ONLY_HISTOGRAMS = (
    "the file holds no TTree or RNTuple, only 3 objects that are not trees: one (TH1F), "
    "three (TH1F), two (TH1F); histograms and other objects are not events to train on"
)


@pytest.fixture(autouse=True)
def only_inspect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", {"inspect": cli.COMMANDS["inspect"]})


def inspect(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = cli.main(["inspect", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def corrupt_tree(path: Path, name: str) -> None:
    """Overwrite the first 200 bytes of the object (past its key header) of ``name``:
    the key is still listed, the tree can no longer be read."""
    with uproot.open(path) as handle:
        start = handle.key(name).data_cursor.index
    with path.open("r+b") as raw:
        raw.seek(start)
        raw.write(b"\xff" * 200)


def test_histograms_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = inspect(capsys, HISTOGRAMS)
    assert (code, out, err) == (2, [], [f"mlaas inspect: error: {HISTOGRAMS}: {ONLY_HISTOGRAMS}"])
    code, out, err = inspect(capsys, HISTOGRAMS, "--json")  # nothing on stdout either
    assert (code, out, err) == (2, [], [f"mlaas inspect: error: {HISTOGRAMS}: {ONLY_HISTOGRAMS}"])


def test_ntuple_beside_histograms(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = inspect(capsys, HEPDATA)
    assert (code, err) == (0, [])
    assert out[0] == f"{HEPDATA}  TTree 'ntuple': 75000 entries, 5 branches"  # a TNtuple
    assert [line.split()[0] for line in out[2:7]] == ["px", "py", "pz", "random", "i"]
    assert out[-1] == (
        f"note: {HEPDATA}: also 3 objects that are not trees: hprof (TProfile), hpx (TH1F), "
        "hpxpy (TH2F) (not listed: not events to train on)"
    )
    code, out, err = inspect(capsys, HEPDATA, "--json")
    assert [t["name"] for t in json.loads("\n".join(out))] == ["ntuple"]
    assert err == [
        f"note: {HEPDATA}: also 3 objects that are not trees: hprof (TProfile), hpx (TH1F), "
        "hpxpy (TH2F) (not listed: not events to train on)"
    ]


def test_rntuple_fields_beside_a_histogram(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "ntuple.root"
    with uproot.recreate(path) as handle:
        handle["Events"] = {"pt": np.arange(5, dtype=np.float32), "n": np.arange(5)}
        handle["h_pt"] = np.histogram(np.arange(5.0), bins=2)
    code, out, err = inspect(capsys, str(path))
    assert (code, err) == (0, [])
    assert out[0] == f"{path}  RNTuple 'Events': 5 entries, 2 branches"
    assert {line.split()[0]: line.split()[1] for line in out[2:4]} == {"pt": "flat", "n": "flat"}
    assert out[-1].startswith(f"note: {path}: also 1 object that is not a tree: h_pt (TH1D)")


def test_pre_1_0_rntuple_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = inspect(capsys, STAFF)
    assert (code, out) == (2, [])
    assert err[0].startswith(f"mlaas inspect: error: {STAFF}: RNTuple 'Staff' is a pre-1.0")


def test_corrupted_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.root"
    with uproot.recreate(path) as handle:
        for name in ("Broken", "Good"):
            tree = handle.mktree(name, {"x": np.float32})
            tree.extend({"x": np.arange(10, dtype=np.float32)})
    corrupt_tree(path, "Broken")
    code, out, err = inspect(capsys, str(path))
    assert (code, err) == (0, [])
    assert out[0] == f"{path}  TTree 'Good': 10 entries, 1 branch"
    assert out[-1].startswith(f"warning: {path}: cannot read tree 'Broken' (")
    # with nothing else to read: exit status 2, saying why
    alone = tmp_path / "alone.root"
    with uproot.recreate(alone) as handle:
        handle.mktree("Events", {"x": np.float32}).extend({"x": np.zeros(3, np.float32)})
    corrupt_tree(alone, "Events")
    code, out, err = inspect(capsys, str(alone))
    assert (code, out) == (2, [])
    assert err[0].startswith(f"mlaas inspect: error: {alone}: cannot read tree 'Events' (")


def test_unreadable_file_beside_a_good_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "fake.root").write_text("not ROOT")
    good = tmp_path / "good.root"
    with uproot.recreate(good) as handle:
        handle.mktree("Events", {"x": np.float32}).extend({"x": np.zeros(3, np.float32)})
    code, out, _ = inspect(capsys, str(tmp_path))
    assert code == 0
    assert out[0] == f"{good}  TTree 'Events': 3 entries, 1 branch"
    fake = tmp_path / "fake.root"
    assert out[-1] == f"warning: {fake}: not a ROOT file: it starts with b'not ', not b'root'"
