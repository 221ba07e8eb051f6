"""DatasetSpec: validation of every field, YAML/JSON loading, round trips, jagged patterns."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlaas_jupyter.errors import MlaasError, SpecError
from mlaas_jupyter.specs import ClassGroup, DatasetSpec, JaggedSpec, Split
from mlaas_jupyter.stream import DatasetPlan

TWO_CLASSES: dict[str, Any] = {"classes": {"bkg": ["bkg.root"], "sig": ["sig.root"]}}


def spec_error(data: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(data)
    return info.value


def full(field: str) -> str:
    """A dataset's field as errors name it, from the spec's root (as ``training.epochs``)."""
    return field if field == "spec" else f"dataset.{field}"


# -- wrong fields: the error names the field and, where fixed, the allowed values ---------------
@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        (
            {"normalisation": "zscore"},
            "normalisation",
            "got 'zscore'; allowed values are minmax, none, standard",
        ),
        ({"normalization": 3}, "normalization", "allowed values are minmax, none, standard"),
        (
            {"balance": "oversample"},
            "balance",
            "got 'oversample'; did you mean sample? allowed values are none, sample, weights",
        ),
        ({"nonfinite": "ignore"}, "nonfinite", "got 'ignore'; allowed values are drop, error"),
        (
            {"split": {"train": 0.5, "validation": 0.2, "test": 0.2}},
            "split",
            "train + validation + test must be 1, got 0.9",
        ),
        ({"split": {"train": 0, "validation": 0.5, "test": 0.5}}, "split.train", "must be > 0"),
        (
            {"split": {"train": 1.5, "validation": -0.25, "test": -0.25}},
            "split.train",
            "must be between 0 and 1, got 1.5",
        ),
        ({"split": {"training": 0.8}}, "split.training", "allowed fields are test, train"),
        ({"split": {"train": "most"}}, "split.train", "expected a number, got 'most'"),
        (
            {"jagged": {"Jet_*": {"length": "longest"}}},
            "jagged.Jet_*.length",
            "got 'longest'; allowed values are max, quantile",
        ),
        (
            {"jagged": {"*": {"length": True}}},
            "jagged.*.length",
            "allowed values are max, quantile",
        ),
        ({"jagged": {"*": {"length": 0}}}, "jagged.*.length", "must be >= 1, got 0"),
        ({"jagged": {"*": {"quantile": 1.5}}}, "jagged.*.quantile", "must be in (0, 1], got 1.5"),
        ({"jagged": {"*": {"quantile": 0}}}, "jagged.*.quantile", "must be in (0, 1], got 0.0"),
        ({"jagged": {"*": {"size": 4}}}, "jagged.*.size", "allowed fields are descending, length"),
        ({"jagged": {"*": {"mask": "yes"}}}, "jagged.*.mask", "expected true or false"),
        ({"jagged": {"*": {"pad_value": "zero"}}}, "jagged.*.pad_value", "expected a number"),
        ({"jagged": {"*": {"sort_by": ""}}}, "jagged.*.sort_by", "expected a non-empty string"),
        ({"jagged": ["Jet_*"]}, "jagged", "expected a mapping"),
        (
            {"brnaches": ["Jet_*"]},
            "brnaches",
            "unknown field; did you mean branches? allowed fields are balance, branches",
        ),
        ({"branches": 5}, "branches", "expected a string or a list of strings, got 5"),
        ({"branches": {"Jet_pt": 1}}, "branches", "expected a string or a list of strings"),
        ({"branches": ["Jet_pt", 3]}, "branches[1]", "expected a non-empty string, got 3"),
        ({"cuts": [""]}, "cuts[0]", "expected a non-empty string"),
        ({"exclude": None}, "exclude", "expected a string or a list of strings, got None"),
        ({"new_branches": ["HT"]}, "new_branches", "expected a mapping"),
        ({"new_branches": {"HT": 1}}, "new_branches.HT", "expected a non-empty string, got 1"),
        ({"seed": -1}, "seed", "must be >= 0, got -1"),
        ({"seed": 1.5}, "seed", "expected an integer, got 1.5"),
        ({"seed": True}, "seed", "expected an integer, got True"),
        ({"weights": "EventWeight"}, "weights", "expected a mapping, got str 'EventWeight'"),
        ({"weights": {"column": "w"}}, "weights.column", "allowed fields are branch"),
        ({"weights": {}}, "weights.branch", "missing"),
        ({"weights": {"branch": " "}}, "weights.branch", "expected a non-empty string, got ' '"),
        ({"tree": 5}, "tree", "expected a non-empty string, got 5"),
        ({"shuffle_buffer": -1}, "shuffle_buffer", "must be >= 0, got -1"),
        ({"step_size": 0}, "step_size", "must be >= 1, got 0"),
        ({"step_size": 1.5}, "step_size", "expected a number of entries or a size such as"),
        ({"step_size": True}, "step_size", "got True"),
        ({"shuffle_buffer": "1000"}, "shuffle_buffer", "expected an integer, got '1000'"),
        ({"normalisation": None}, "normalisation", "got None; allowed values are minmax"),
        (
            {"classes": {"sig": ["s.root"], "bkg": ["b.root"]}, "label_branch": ""},
            "label_branch",
            "expected a non-empty string",
        ),
    ],
)
def test_wrong_field_names_field_and_allowed_values(
    extra: dict[str, Any], field: str, message: str
) -> None:
    err = spec_error({**TWO_CLASSES, **extra})
    assert err.field == full(field)
    assert str(err).startswith(f"{full(field)}: ")
    assert message in str(err)
    assert isinstance(err, MlaasError)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "classes", "missing: give classes (name -> files) or files + label_branch"),
        ({"classes": {}}, "classes", "at least one group of files is required"),
        ({"classes": ["a.root", "b.root"]}, "classes", "expected a mapping"),
        ({"classes": {"sig": ["s.root"]}}, "classes", "a classifier needs two or more classes"),
        (
            {"classes": {"sig": {"files": ["s.root"], "wieght": 2}, "bkg": ["b.root"]}},
            "classes.sig.wieght",
            "unknown field; did you mean weight? allowed fields are files, samples, weight, xsec",
        ),
        (
            {"classes": {"sig": {"weight": 2}, "bkg": ["b.root"]}},
            "classes.sig.files",
            "missing: list the files of this class",
        ),
        (
            {"classes": {"sig": {"files": ["s.root"], "weight": 0}, "bkg": ["b.root"]}},
            "classes.sig.weight",
            "must be > 0, got 0.0",
        ),
        ({"classes": {"sig": [], "bkg": ["b.root"]}}, "classes.sig", "the group has no files"),
        ({"classes": {"sig": 3, "bkg": ["b.root"]}}, "classes.sig", "expected a string or a list"),
        ({"files": ["a.root"]}, "label_branch", "name the label_branch or target"),
        (
            {**TWO_CLASSES, "files": ["a.root"]},
            "files",
            "give either classes (one label per group) or files, not both",
        ),
        ({"files": "a.root", "label_branch": 7}, "label_branch", "expected a non-empty string"),
        ([1, 2], "spec", "expected a mapping, got list [1, 2]"),
    ],
)
def test_wrong_classes_and_files(data: Any, field: str, message: str) -> None:
    err = spec_error(data)
    assert err.field == full(field)
    assert message in str(err)


def test_single_class_is_fine_with_label_branch_or_target() -> None:
    labelled = DatasetSpec.from_dict({"classes": {"all": ["a.root"]}, "label_branch": "label"})
    assert labelled.task == "binary"
    assert labelled.labels == ("0", "1")
    named = DatasetSpec.from_dict(
        {"files": "a.root", "label_branch": "label", "class_names": ["e", "mu", "tau"]}
    )
    assert named.task == "multiclass"
    assert named.labels == ("e", "mu", "tau")
    assert named.classes == (ClassGroup(name="all", files=("a.root",), label=0),)
    regression = DatasetSpec.from_dict({"files": ["a.root"], "target": "MET_pt"})
    assert regression.task == "regression"


def test_duplicate_new_branch_and_other_constructor_checks() -> None:
    groups = (
        ClassGroup(name="a", files=("a.root",), label=0),
        ClassGroup(name="b", files=("b.root",), label=1),
    )
    with pytest.raises(SpecError, match=r"^dataset\.new_branches: a name is defined twice$"):
        DatasetSpec(classes=groups, new_branches=(("HT", "sum(Jet_pt)"), ("HT", "MET_pt")))
    with pytest.raises(SpecError, match=r"^dataset\.classes: at least one group"):
        DatasetSpec(classes=())
    with pytest.raises(SpecError, match=r"^dataset\.classes\.a: the group has no files"):
        DatasetSpec(classes=(ClassGroup(name="a", files=(), label=0), groups[1]))
    with pytest.raises(SpecError, match=r"^split\.validation: must be between 0 and 1"):
        Split(train=0.5, validation=1.5, test=-1.0)
    with pytest.raises(SpecError, match=r"^jagged\.length: must be >= 1, got 0"):
        JaggedSpec(length=0)
    with pytest.raises(SpecError, match=r"^dataset\.classes: expected a mapping name -> files"):
        DatasetSpec(classes=(("a", ("a.root",)),))  # type: ignore[arg-type]
    python = DatasetSpec(classes=groups, new_branches=(("HT", "sum(Jet_pt)"),), seed=3)
    assert python == DatasetSpec.from_dict(
        {
            "classes": {"a": "a.root", "b": "b.root"},
            "new_branches": {"HT": "sum(Jet_pt)"},
            "seed": 3,
        }
    )


def test_new_branch_named_like_an_existing_branch(make_root_file: Callable[..., Any]) -> None:
    gen = make_root_file(n=20)
    spec = DatasetSpec.from_dict(
        {"files": [gen.path], "label_branch": "label", "new_branches": {"MET_pt": "MET_phi * 2"}}
    )
    with pytest.raises(SpecError, match="a branch of that name already exists") as info:
        DatasetPlan(spec)
    assert info.value.field == "dataset.new_branches.MET_pt"


# -- accepted values and defaults ---------------------------------------------------------------
def test_defaults_and_aliases() -> None:
    spec = DatasetSpec.from_dict(TWO_CLASSES)
    assert spec.normalisation == "standard"
    assert spec.balance == "none"
    assert spec.split == Split(train=0.8, validation=0.1, test=0.1)
    assert spec.seed == 42
    assert spec.nonfinite == "error"
    assert spec.jagged == (("*", JaggedSpec()),)
    assert spec.branches == ("*",)
    assert spec.labels == ("bkg", "sig")
    assert spec.task == "binary"
    assert [g.label for g in spec.classes] == [0, 1]
    assert DatasetSpec.from_dict({**TWO_CLASSES, "normalization": "MIN-MAX"}).normalisation == (
        "minmax"
    )
    assert DatasetSpec.from_dict({**TWO_CLASSES, "balance": "Weights"}).balance == "weights"
    partial = DatasetSpec.from_dict({**TWO_CLASSES, "split": {"train": 0.6, "validation": 0.3}})
    assert partial.split.test == pytest.approx(0.1)
    only_train = DatasetSpec.from_dict({**TWO_CLASSES, "split": {"train": 0.8}})
    assert only_train.split == Split(train=0.8, validation=0.1, test=0.1)
    three = DatasetSpec.from_dict({"classes": {"a": "a.root", "b": "b.root", "c": "c.root"}})
    assert three.task == "multiclass"
    assert three.labels == ("a", "b", "c")
    assert DatasetSpec.from_dict({**TWO_CLASSES, "step_size": 1000}).step_size == 1000
    assert DatasetSpec.from_dict({**TWO_CLASSES, "tree": " events "}).tree == "events"


def test_jagged_from_dict_values() -> None:
    spec = DatasetSpec.from_dict(
        {
            **TWO_CLASSES,
            "jagged": {
                "Jet_*": {"length": 4, "sort_by": "Jet_pt", "pad_value": -1, "mask": False},
                "Muon_*": {"length": "quantile", "quantile": 0.9, "descending": False},
            },
        }
    )
    assert spec.jagged_for("Jet_eta") == JaggedSpec(
        length=4, quantile=0.95, sort_by="Jet_pt", descending=True, pad_value=-1.0, mask=False
    )
    assert spec.jagged_for("Muon_pt") == JaggedSpec(
        length="quantile", quantile=0.9, sort_by=None, descending=False, pad_value=0.0, mask=True
    )
    assert spec.jagged_for("Electron_pt") == JaggedSpec()


@pytest.mark.parametrize(
    ("jagged", "expected"),
    [
        ({"*": {"length": 2}, "Jet_*": {"length": 4}, "Jet_pt": {"length": 6}}, [6, 4, 2]),
        ({"Jet_pt": {"length": 6}, "Jet_*": {"length": 4}, "*": {"length": 2}}, [2, 2, 2]),
        ({"Jet_pt": {"length": 6}, "Jet_*": {"length": 4}}, [4, 4, "max"]),
        ({"Jet_*": {"length": 4}, "Jet_pt": {"length": 6}}, [6, 4, "max"]),
    ],
)
def test_jagged_for_last_match_wins(jagged: dict[str, Any], expected: list[Any]) -> None:
    spec = DatasetSpec.from_dict({**TWO_CLASSES, "jagged": jagged})
    lengths = [spec.jagged_for(name).length for name in ("Jet_pt", "Jet_eta", "Muon_pt")]
    assert lengths == expected


# -- files -------------------------------------------------------------------------------------
def test_yaml_relative_paths_resolved_against_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "specs" / "deep"
    folder.mkdir(parents=True)
    path = folder / "dataset.yaml"
    path.write_text(
        "tree: Events\n"
        "classes:\n"
        "  bkg: [data/bkg_*.root, /abs/b.root]\n"
        "  sig: {files: ../sig.root, weight: 2}\n"
        "normalisation: minmax\n"
    )
    spec = DatasetSpec.from_file(path)
    assert spec.classes[0].files == (str(folder / "data" / "bkg_*.root"), "/abs/b.root")
    assert spec.classes[1] == ClassGroup(
        name="sig", files=(str(folder / ".." / "sig.root"),), label=1, weight=2.0
    )
    assert spec.normalisation == "minmax"
    assert spec.tree == "Events"
    remote = DatasetSpec.from_dict(
        {"files": ["root://eos.cern.ch//a.root"], "target": "x"}, base_dir=folder
    )
    assert remote.classes[0].files == ("root://eos.cern.ch//a.root",)
    assert DatasetSpec.from_dict(TWO_CLASSES).classes[0].files == ("bkg.root",)


def test_json_file_and_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**TWO_CLASSES, "seed": 7}))
    spec = DatasetSpec.from_file(path)
    assert spec.seed == 7
    assert spec.classes[1].files == (str(tmp_path / "sig.root"),)
    with pytest.raises(SpecError, match="cannot read the spec file") as info:
        DatasetSpec.from_file(tmp_path / "missing.yaml")
    assert info.value.field == str(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [a, b\n")
    with pytest.raises(SpecError, match="not valid YAML/JSON"):
        DatasetSpec.from_file(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(SpecError, match="expected a mapping, got str 'just text'"):
        DatasetSpec.from_file(scalar)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({**TWO_CLASSES, "balance": "up"}))
    with pytest.raises(SpecError, match=r"^dataset\.balance: got 'up'; allowed values are"):
        DatasetSpec.from_file(wrong)


def test_dataset_section_of_training_file(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "dataset": {**TWO_CLASSES, "cuts": ["nJet >= 2"], "seed": 3},
                "model": {"kind": "mlp", "hidden": [32, 16]},
                "training": {"epochs": 2},
            }
        )
    )
    spec = DatasetSpec.from_file(path)
    assert spec.cuts == ("nJet >= 2",)
    assert spec.seed == 3
    assert spec.classes[0].files == (str(tmp_path / "bkg.root"),)
    path.write_text("dataset: [1, 2]\n")
    with pytest.raises(SpecError, match=r"^dataset: expected a mapping"):
        DatasetSpec.from_file(path)


# -- round trips -------------------------------------------------------------------------------
FULL: dict[str, Any] = {
    "tree": "events",
    "classes": {"bkg": {"files": ["/d/b_*.root"], "weight": 0.5}, "sig": ["/d/s.root"]},
    "branches": ["Muon_*", "MET_*"],
    "exclude": ["*_E"],
    "new_branches": {"mu_pt": "sqrt(Muon_Px**2 + Muon_Py**2)", "ht": "sum(mu_pt)"},
    "cuts": ["NMuon >= 1", "MET_px > -100"],
    "jagged": {
        "*": {"length": "max"},
        "Muon_*": {"length": 4, "sort_by": "mu_pt", "pad_value": -5, "mask": False},
        "mu_pt": {"length": "quantile", "quantile": 0.8, "descending": False},
    },
    "normalisation": "minmax",
    "split": {"train": 0.6, "validation": 0.25, "test": 0.15},
    "weights": {"branch": "EventWeight"},
    "balance": "sample",
    "seed": 9,
    "nonfinite": "drop",
    "step_size": 5000,
    "shuffle_buffer": 1000,
}


@pytest.mark.parametrize(
    "data",
    [
        FULL,
        TWO_CLASSES,
        {"files": ["/d/a.root"], "label_branch": "lab", "class_names": ["a", "b", "c"]},
        {"files": ["/d/a.root", "/d/b.root"], "target": "MET_px * 2", "step_size": "10 MB"},
    ],
)
def test_to_dict_from_dict_round_trip(data: dict[str, Any], tmp_path: Path) -> None:
    spec = DatasetSpec.from_dict(data)
    again = DatasetSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.to_dict() == spec.to_dict()
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    from_yaml = DatasetSpec.from_file(path)
    if all(Path(f).is_absolute() for g in spec.classes for f in g.files):
        assert from_yaml == spec
    json.dumps(spec.to_dict())  # plain data only


def test_full_spec_values() -> None:
    spec = DatasetSpec.from_dict(FULL)
    assert spec.new_branch_map == FULL["new_branches"]
    assert spec.classes[0].weight == 0.5
    assert spec.classes[1].weight == 1.0
    assert spec.weight_branch == "EventWeight"
    assert spec.balance == "sample"
    assert spec.jagged_for("Muon_Px").sort_by == "mu_pt"
    assert spec.jagged_for("mu_pt").length == "quantile"
    assert spec.with_changes(seed=1).seed == 1
    assert spec.seed == 9


def test_round_trip_classes_with_label_branch() -> None:
    data = {
        "classes": {"a": {"files": ["/d/a.root"], "weight": 2.0}, "b": ["/d/b.root"]},
        "label_branch": "label",
    }
    try:
        spec = DatasetSpec.from_dict(data)
    except SpecError:
        return  # rejecting the combination would also be consistent
    assert DatasetSpec.from_dict(spec.to_dict()) == spec
