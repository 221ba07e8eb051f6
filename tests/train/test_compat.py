"""`from_mlaas4hep`: MLaaS4HEP workflow inputs (files.txt, labels.txt, params.json,
preproc.json, model file) written as their users wrote them, and the TrainSpec they give."""

from __future__ import annotations

import fnmatch
import json
import warnings
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest

from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.specs.dataset import DatasetSpec, JaggedSpec, Split
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.train.compat import DEFAULT_REDIRECTOR, from_mlaas4hep

# The params.json of MLaaS4HEP's doc/workflow_recipe.md, as published.
RECIPE_PARAMS: dict[str, Any] = {
    "nevts": 50000,
    "shuffle": True,
    "chunk_size": 10000,
    "epochs": 5,
    "batch_size": 100,
    "identifier": "",
    "branch": "Events",
    "selected_branches": "",
    "exclude_branches": ["run", "event", "luminosityBlock"],
    "hist": "pdfs",
    "redirector": "",
    "verbose": 1,
}

# Only keys that map one to one: converting these must not warn.
CLEAN_PARAMS: dict[str, Any] = {
    "shuffle": True,
    "chunk_size": 10000,
    "epochs": 5,
    "batch_size": 100,
    "branch": "Events",
    "exclude_branches": ["HLT_Mu50"],
    "redirector": "root://cms-xrd-global.cern.ch",
}

# MLaaS4HEP's src/python/MLaaS4HEP/ex_preproc.json (uproot4 branch).
EX_PREPROC: dict[str, Any] = {
    "new_branch": {
        "log_partonE": {
            "def": "log(partonE)",
            "type": "jagged",
            "cut_1": ["log_partonE<6.31", "any"],
            "cut_2": ["log_partonE>5.85", "all"],
            "remove": "False",
            "keys_to_remove": ["partonE"],
        },
        "nJets_square": {
            "def": "nJets**2",
            "type": "flat",
            "cut": "1<=nJets_square<=16",
            "remove": "False",
            "keys_to_remove": ["nJets"],
        },
    },
    "flat_cut": {"nLeptons": {"cut": "0<=nLeptons<=2", "remove": "False"}},
    "jagged_cut": {"partonPt": {"cut": ["partonPt>200", "all"], "remove": "False"}},
}

EX_KERAS = '''"""
Basic example of ML model implemented via Keras framework
"""
from keras.models import Sequential
from keras.layers import Dense, Activation

def model(idim):
    "Simple Keras model for testing purposes"
    ml_model = Sequential([
        Dense(32, input_shape=(idim,)),
        Activation('relu'),
        Dense(1),
        Activation('sigmoid'),
    ])
    ml_model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
    return ml_model
'''

LFNS = [
    "/store/data/Run2018C/Tau/NANOAOD/14Sep2018_ver3-v1/60000/069A01AD-A9D0-7C4E-8940-FA5990EDFFCE.root",
    "/store/data/Run2018C/Tau/NANOAOD/14Sep2018_ver3-v1/60000/577AF166-478C-1F40-8E10-044AA4BC0576.root",
    "/store/data/Run2018C/Tau/NANOAOD/14Sep2018_ver3-v1/60000/9A661A77-58AC-0245-A442-8093D48A6551.root",
]


def write_inputs(
    folder: Path,
    files: list[str] | str,
    labels: list[str] | str,
    params: dict[str, Any] | None = None,
    preproc: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the MLaaS4HEP inputs into ``folder``; return their paths by role."""
    paths = {
        "files": folder / "files.txt",
        "labels": folder / "labels.txt",
        "model": folder / "ex_keras.py",
        "params": folder / "params.json",
    }
    paths["files"].write_text(files if isinstance(files, str) else "\n".join(files) + "\n")
    paths["labels"].write_text(labels if isinstance(labels, str) else "\n".join(labels) + "\n")
    paths["model"].write_text(EX_KERAS)
    paths["params"].write_text(json.dumps(CLEAN_PARAMS if params is None else params, indent=2))
    if preproc is not None:
        paths["preproc"] = folder / "preproc.json"
        paths["preproc"].write_text(json.dumps(preproc, indent=2))
    return paths


def convert(paths: dict[str, Path]) -> tuple[TrainSpec, list[str]]:
    return from_mlaas4hep(
        paths["files"], paths["labels"], paths["model"], paths["params"], paths.get("preproc")
    )


def convert_quietly(paths: dict[str, Path]) -> TrainSpec:
    """Convert, failing the test on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec, notes = convert(paths)
    assert notes == []
    return spec


@pytest.fixture
def local_pair(tmp_path: Path) -> list[str]:
    """The two open-data files of the MLaaS4HEP recipe, as (empty) local files."""
    for name in ("GluGluToHToTauTau.root", "VBF_HToTauTau.root"):
        (tmp_path / name).write_bytes(b"")
    return ["GluGluToHToTauTau.root", "VBF_HToTauTau.root"]


# -- the recipe, end to end -------------------------------------------------------


def test_recipe_inputs_give_the_equivalent_spec(
    tmp_path: Path, local_pair: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_inputs(tmp_path, local_pair, ["1", "0"], RECIPE_PARAMS)
    monkeypatch.chdir(tmp_path.parent)  # relative names are taken from files.txt's folder
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        spec, notes = convert(paths)
    assert all(w.category is UserWarning for w in record)
    assert [str(w.message) for w in record] == notes
    assert len(notes) == 3
    assert any("'nevts' (50000)" in n and "not supported" in n for n in notes)
    assert any("'hist'" in n for n in notes)
    assert any("'verbose'" in n for n in notes)

    data = spec.dataset
    assert data.tree == "Events"
    assert data.labels == ("label_0", "label_1")
    assert [g.label for g in data.classes] == [0, 1]
    assert data.classes[0].files == (str((tmp_path / "VBF_HToTauTau.root").resolve()),)
    assert data.classes[1].files == (str((tmp_path / "GluGluToHToTauTau.root").resolve()),)
    assert data.branches == ("*",)
    # identifier "" means MLaaS4HEP's default identifiers, never used as features
    assert data.exclude == ("run", "event", "luminosityBlock")
    assert data.new_branches == ()
    assert data.cuts == ()
    assert data.step_size == 10000
    assert data.normalisation == "minmax"
    assert data.split == Split(train=0.64, validation=0.16, test=0.2)
    assert data.jagged == (("*", JaggedSpec(length="max", pad_value=0.0, mask=False)),)

    assert spec.training.epochs == 5
    assert spec.training.batch_size == 100
    assert spec.training.early_stopping is None
    assert spec.model.file == str(paths["model"].resolve())
    assert spec.model.name is None
    assert spec.model.backend is None


def test_spec_survives_a_dict_round_trip(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, LFNS, ["0", "1", "1"], CLEAN_PARAMS, EX_PREPROC)
    spec = convert_quietly(paths)
    assert DatasetSpec.from_dict(spec.dataset.to_dict()) == spec.dataset
    assert TrainSpec.from_dict(spec.to_dict()) == spec


# -- files.txt, labels.txt and the redirector ------------------------------------


def test_redirector_prefixes_logical_file_names(tmp_path: Path) -> None:
    (tmp_path / "local.root").write_bytes(b"")
    files = [
        '#dasgoclient -query="file dataset=/Tau/Run2018C-14Sep2018_ver3-v1/NANOAOD"',
        *LFNS,
        "",
        "local.root",
        "root://eosuser.cern.ch//eos/user/a/someone/extra.root",
        "root://cms-xrd-global.cern.ch//store/mc/already/prefixed.root",
    ]
    labels = ["# one label per file", "1", "0", "1", "0", "0", "1"]
    spec = convert_quietly(write_inputs(tmp_path, files, labels))
    background, signal = spec.dataset.classes
    assert background.name == "label_0"
    assert background.files == (
        f"root://cms-xrd-global.cern.ch/{LFNS[1]}",
        str((tmp_path / "local.root").resolve()),
        "root://eosuser.cern.ch//eos/user/a/someone/extra.root",
    )
    assert signal.files == (
        "root://cms-xrd-global.cern.ch//store/data/Run2018C/Tau/NANOAOD/14Sep2018_ver3-v1/"
        "60000/069A01AD-A9D0-7C4E-8940-FA5990EDFFCE.root",
        f"root://cms-xrd-global.cern.ch/{LFNS[2]}",
        "root://cms-xrd-global.cern.ch//store/mc/already/prefixed.root",
    )


def test_missing_redirector_key_means_the_cms_global_redirector(tmp_path: Path) -> None:
    params = {k: v for k, v in CLEAN_PARAMS.items() if k != "redirector"}
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], params))
    assert spec.dataset.classes[0].files == (f"{DEFAULT_REDIRECTOR}/{LFNS[0]}",)
    assert DEFAULT_REDIRECTOR == "root://cms-xrd-global.cern.ch"


def test_empty_redirector_leaves_names_alone(tmp_path: Path) -> None:
    params = {**CLEAN_PARAMS, "redirector": ""}
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], params))
    assert spec.dataset.classes[0].files == (LFNS[0],)


def test_labels_that_are_not_0_to_n_are_renumbered_with_a_warning(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, LFNS, ["2", "5", "2"])
    with pytest.warns(UserWarning, match=r"labels \[2, 5\] are not 0\.\.1"):
        spec, _ = convert(paths)
    assert spec.dataset.labels == ("label_2", "label_5")
    assert [len(g.files) for g in spec.dataset.classes] == [2, 1]


def test_three_labels_make_three_classes(tmp_path: Path) -> None:
    spec = convert_quietly(write_inputs(tmp_path, LFNS, ["2", "0", "1"]))
    assert spec.dataset.labels == ("label_0", "label_1", "label_2")
    assert spec.dataset.task == "multiclass"


def test_line_counts_must_match(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, LFNS, ["1", "0"])
    with pytest.raises(SpecError, match=r"has 2 labels but .*files\.txt lists 3 files"):
        convert(paths)


@pytest.mark.parametrize("bad", ["signal", "1.0", "[1, 0, 1]"])
def test_labels_must_be_integers(tmp_path: Path, bad: str) -> None:
    paths = write_inputs(tmp_path, LFNS, ["1", bad, "0"] if "[" not in bad else bad)
    with pytest.raises(SpecError, match=r"labels\.txt:\d+: label .* is not an integer"):
        convert(paths)


def test_a_single_label_is_not_a_classifier(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="every file has label 1"):
        convert(write_inputs(tmp_path, LFNS, ["1", "1", "1"]))


def test_a_file_listed_with_two_labels_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="listed twice, with labels 0 and 1"):
        convert(write_inputs(tmp_path, [LFNS[0], LFNS[1], LFNS[0]], ["0", "1", "1"]))


def test_empty_files_list_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="lists no files"):
        convert(write_inputs(tmp_path, "# nothing yet\n", "\n"))


@pytest.mark.parametrize("role", ["files", "labels", "model", "params", "preproc"])
def test_missing_input_files_are_named(tmp_path: Path, role: str) -> None:
    paths = write_inputs(tmp_path, LFNS, ["0", "1", "0"], preproc=EX_PREPROC)
    paths[role].unlink()
    with pytest.raises(SpecError, match=paths[role].name):
        convert(paths)


# -- params.json -------------------------------------------------------------------


def test_branches_exclusions_and_training_settings(tmp_path: Path) -> None:
    params = {
        **CLEAN_PARAMS,
        "branch": "Delphes",
        "selected_branches": ["MET_pt", "Jet_pt", "odd*name"],
        "identifier": ["run", "event"],
        "epochs": 3,
        "batch_size": 256,
        "chunk_size": 5000,
    }
    del params["exclude_branches"]
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], params))
    data = spec.dataset
    assert data.tree == "Delphes"
    assert data.branches == ("MET_pt", "Jet_pt", "odd[*]name")
    assert fnmatch.fnmatchcase("odd*name", data.branches[2])
    assert not fnmatch.fnmatchcase("odd_other_name", data.branches[2])
    assert data.exclude == ("run", "event")
    assert data.step_size == 5000
    assert (spec.training.epochs, spec.training.batch_size) == (3, 256)


def test_defaults_are_mlaas4hep_defaults(tmp_path: Path) -> None:
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], {}))
    assert spec.dataset.tree == "Events"
    assert spec.dataset.step_size == 1000
    assert (spec.training.epochs, spec.training.batch_size) == (10, 50)
    assert spec.dataset.classes[0].files == (f"root://cms-xrd-global.cern.ch/{LFNS[0]}",)


def test_exclude_branches_as_comma_string_and_as_file(tmp_path: Path) -> None:
    params = {**CLEAN_PARAMS, "exclude_branches": "HLT_Mu50, Flag_METFilters"}
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], params))
    assert spec.dataset.exclude[-2:] == ("HLT_Mu50", "Flag_METFilters")
    (tmp_path / "exclude.txt").write_text("HLT_IsoMu24\n# trigger bits\nL1_SingleMu22\n")
    params["exclude_branches"] = "exclude.txt"
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], params))
    assert spec.dataset.exclude[-2:] == ("HLT_IsoMu24", "L1_SingleMu22")


def test_exclude_branches_is_ignored_when_selected_branches_is_set(tmp_path: Path) -> None:
    params = {**CLEAN_PARAMS, "selected_branches": ["MET_pt"], "exclude_branches": ["MET_pt"]}
    with pytest.warns(UserWarning, match="'exclude_branches' is ignored"):
        spec, _ = convert(write_inputs(tmp_path, LFNS[:2], ["0", "1"], params))
    assert spec.dataset.branches == ("MET_pt",)
    assert "MET_pt" not in spec.dataset.exclude


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("verbose", 1, "'verbose' has no effect"),
        ("hist", "pdfs", "'hist' has no effect"),
        ("nan", -999, "'nan' has no effect"),
        ("split", 0.3, "'split' has no effect"),
        ("drop", ["col"], "'drop'"),
        ("nevts", 20000, r"'nevts' \(20000\) is not supported"),
        ("chunk_size", -1, r"'chunk_size' \(-1"),
        ("shuffle", False, r"'shuffle' \(false\) is not supported"),
    ],
)
def test_unsupported_keys_are_named_in_warnings(
    tmp_path: Path, key: str, value: Any, match: str
) -> None:
    paths = write_inputs(tmp_path, LFNS[:2], ["0", "1"], {**CLEAN_PARAMS, key: value})
    with pytest.warns(UserWarning, match=match):
        _, notes = convert(paths)
    assert len(notes) == 1
    assert f"'{key}'" in notes[0]


def test_nevts_minus_one_and_shuffle_true_do_not_warn(tmp_path: Path) -> None:
    params = {**CLEAN_PARAMS, "nevts": -1, "shuffle": True, "identifier": "run,event"}
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], params))
    assert spec.dataset.exclude == ("run", "event", "HLT_Mu50")


def test_unknown_params_key_is_an_error(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, LFNS[:2], ["0", "1"], {**CLEAN_PARAMS, "learning_rate": 0.01})
    with pytest.raises(SpecError, match=r"params\.learning_rate: not an MLaaS4HEP field"):
        convert(paths)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("epochs", 0, r"params\.epochs: expected a positive integer"),
        ("batch_size", "100", r"params\.batch_size"),
        ("nevts", 0, r"params\.nevts: expected a positive integer \(or -1 for all\)"),
        ("branch", "", r"params\.branch"),
        ("redirector", None, r"params\.redirector"),
        ("selected_branches", [1, 2], r"params\.selected_branches"),
    ],
)
def test_invalid_param_values(tmp_path: Path, key: str, value: Any, match: str) -> None:
    paths = write_inputs(tmp_path, LFNS[:2], ["0", "1"], {**CLEAN_PARAMS, key: value})
    with pytest.raises(SpecError, match=match):
        convert(paths)


def test_params_that_is_not_json(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, LFNS[:2], ["0", "1"])
    paths["params"].write_text("{'epochs': 5}")
    with pytest.raises(SpecError, match=r"params\.json: not valid JSON"):
        convert(paths)


# -- preproc.json ------------------------------------------------------------------


def test_preproc_becomes_new_branches_cuts_and_exclusions(tmp_path: Path) -> None:
    spec = convert_quietly(write_inputs(tmp_path, LFNS, ["0", "1", "1"], CLEAN_PARAMS, EX_PREPROC))
    data = spec.dataset
    assert data.new_branches == (
        ("log_partonE", "log(partonE)"),
        ("nJets_square", "nJets ** 2"),
    )
    assert data.cuts == (
        "any(log_partonE < 6.31)",
        "all(log_partonE > 5.85)",
        "(1 <= nJets_square) & (nJets_square <= 16)",
        "(0 <= nLeptons) & (nLeptons <= 2)",
        "all(partonPt > 200)",
    )
    # keys_to_remove always removes; "remove": "False" keeps the branch itself
    assert data.exclude == ("run", "event", "luminosityBlock", "HLT_Mu50", "partonE", "nJets")
    assert data.branches == ("*",)


def test_remove_true_excludes_the_branch_after_the_cut(tmp_path: Path) -> None:
    preproc = {
        "new_branch": {
            "ht": {"def": "sum(Jet_pt)", "type": "flat", "cut": "ht > 200", "remove": "False"},
            "lead_pt": {"def": "Jet_pt[:, 0]", "type": "flat", "remove": "True"},
        },
        "flat_cut": {"nMuon": {"cut_1": "nMuon >= 1", "cut_2": "nMuon < 4", "remove": "True"}},
        "jagged_cut": {"Muon_pt": {"cut": ["Muon_pt > 25", "any"], "remove": True}},
    }
    params = {**CLEAN_PARAMS, "selected_branches": ["MET_pt", "Muon_pt"]}
    del params["exclude_branches"]
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], params, preproc))
    data = spec.dataset
    assert data.cuts == ("ht > 200", "nMuon >= 1", "nMuon < 4", "any(Muon_pt > 25)")
    assert data.new_branches == (("ht", "sum(Jet_pt)"), ("lead_pt", "Jet_pt[:, 0]"))
    # selected branches plus the new branches that are kept, as in MLaaS4HEP
    assert data.branches == ("MET_pt", "Muon_pt", "ht")
    assert data.exclude == ("run", "event", "luminosityBlock", "lead_pt", "nMuon", "Muon_pt")


@pytest.mark.parametrize(
    ("preproc", "match"),
    [
        ({"new_branches": {}}, r"preproc\.new_branches: not an MLaaS4HEP field"),
        (
            {"new_branch": {"x": {"def": "a", "type": "flat", "cuts": "x>1"}}},
            r"preproc\.new_branch\.x\.cuts: not an MLaaS4HEP field",
        ),
        ({"new_branch": {"x": {"type": "flat"}}}, r"preproc\.new_branch\.x\.def: missing"),
        (
            {"new_branch": {"x": {"def": "a", "type": "vector"}}},
            r"preproc\.new_branch\.x\.type: got 'vector'; allowed values are flat, jagged",
        ),
        (
            {"jagged_cut": {"Jet_pt": {"cut": "Jet_pt > 30", "remove": "False"}}},
            r'preproc\.jagged_cut\.Jet_pt\.cut: expected \["<expression>", "any" or "all"\]',
        ),
        (
            {"jagged_cut": {"Jet_pt": {"cut": ["Jet_pt > 30", "some"]}}},
            r"preproc\.jagged_cut\.Jet_pt\.cut: expected",
        ),
        (
            {"flat_cut": {"nJet": {"cut": "nJet >", "remove": "False"}}},
            r"preproc\.flat_cut\.nJet\.cut: not a valid expression",
        ),
        (
            {"flat_cut": {"nJet": {"cut": "nJet > 1", "remove": "maybe"}}},
            r'preproc\.flat_cut\.nJet\.remove: expected "True" or "False"',
        ),
        ({"flat_cut": ["nJet > 1"]}, r"preproc\.flat_cut: expected a mapping"),
    ],
)
def test_invalid_preproc(tmp_path: Path, preproc: dict[str, Any], match: str) -> None:
    paths = write_inputs(tmp_path, LFNS[:2], ["0", "1"], CLEAN_PARAMS, preproc)
    with pytest.raises(SpecError, match=match):
        convert(paths)


def test_python_preprocessing_function_is_refused(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, LFNS[:2], ["0", "1"])
    paths["preproc"] = tmp_path / "ex_preproc.py"
    paths["preproc"].write_text("def preprocessing(row):\n    return row\n")
    with pytest.raises(SpecError, match="Python preprocessing function"):
        convert(paths)


def test_translated_expressions_compile(tmp_path: Path) -> None:
    expressions = pytest.importorskip("mlaas_jupyter.stream.expressions")
    preproc = {
        **EX_PREPROC,
        "new_branch": {
            **EX_PREPROC["new_branch"],
            "lead_pt": {"def": "Jet_pt[:, 0]", "type": "flat", "cut": "lead_pt > 30"},
            "n_good_jets": {"def": "count(Jet_pt > 30)", "type": "flat"},
        },
        "jagged_cut": {
            **EX_PREPROC["jagged_cut"],
            "Jet_eta": {"cut": ["-2.4<Jet_eta<2.4", "all"], "remove": "False"},
        },
    }
    spec = convert_quietly(write_inputs(tmp_path, LFNS[:2], ["0", "1"], CLEAN_PARAMS, preproc))
    known = ["partonE", "nJets", "nLeptons", "partonPt", "Jet_pt", "Jet_eta"]
    for name, text in spec.dataset.new_branches:
        expressions.compile_expression(text, known)
        known.append(name)
    assert "all((-2.4 < Jet_eta) & (Jet_eta < 2.4))" in spec.dataset.cuts
    for text in spec.dataset.cuts:
        expressions.compile_expression(text, known)


def test_converted_spec_selects_the_events_mlaas4hep_would(
    tmp_path: Path, make_root_file: Any
) -> None:
    """On real ROOT files, the translated cuts keep exactly the events the original meant."""
    pytest.importorskip("mlaas_jupyter.stream.expressions")
    from mlaas_jupyter.stream.plan import DatasetPlan
    from mlaas_jupyter.stream.sources import open_tree

    generated = [
        make_root_file(f"{name}.root", n=300, seed=seed) for seed, name in ((1, "bkg"), (2, "sig"))
    ]
    preproc = {
        "new_branch": {
            "ht": {"def": "sum(Jet_pt)", "type": "flat", "cut": "40<ht<=400", "remove": "False"},
            "log_jet_pt": {
                "def": "log(Jet_pt)",
                "type": "jagged",
                "remove": "True",
                "cut_1": ["log_jet_pt > 3.2", "any"],
            },
        },
        "flat_cut": {"MET_pt": {"cut": "MET_pt >= 10", "remove": "False"}},
        "jagged_cut": {"Jet_eta": {"cut": ["-2.4<Jet_eta<2.4", "all"], "remove": "True"}},
    }
    params = {**CLEAN_PARAMS, "redirector": "", "exclude_branches": ["label"]}
    paths = write_inputs(tmp_path, ["bkg.root", "sig.root"], ["0", "1"], params, preproc)
    spec = convert_quietly(paths)
    plan = DatasetPlan(spec.dataset)
    assert sorted(plan.features) == ["Jet_pt", "MET_phi", "MET_pt", "ht", "nJet"]
    for entry, made in zip(plan.files, generated, strict=True):
        source = open_tree(entry.path, spec.dataset.tree)
        try:
            chunk = next(iter(source.iterate(plan.read_columns, made.entries)))
        finally:
            source.close()
        block = plan.select(chunk, entry)
        a = made.arrays
        ht = np.asarray(ak.sum(a["Jet_pt"], axis=1))
        expected = (
            (ht > 40)
            & (ht <= 400)
            & (a["MET_pt"] >= 10)
            & np.asarray(ak.any(np.log(a["Jet_pt"]) > 3.2, axis=1))
            & np.asarray(ak.all((a["Jet_eta"] > -2.4) & (a["Jet_eta"] < 2.4), axis=1))
        )
        assert 0 < expected.sum() < made.entries
        np.testing.assert_array_equal(block.rows, np.flatnonzero(expected))
