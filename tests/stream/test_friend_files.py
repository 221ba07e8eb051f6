"""Friend trees of scores beside the events: marked when written, left out of datasets.

Issue 19, item 5: a friend tree written where a class glob matches it
(``signal_*.root`` and ``signal_0_score.root``) is recognised by its mark and left out
with a note (statistics, training events, prediction jobs), refused when named
explicitly, and never trained on. Real files: the toy dataset and a toy bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import uproot
import yaml
from toy_bundles import write_example_bundle

from mlaas_jupyter.errors import SourceError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.inference.batch import run_prediction
from mlaas_jupyter.inference.friend import write_friend_tree
from mlaas_jupyter.specs.dataset import DatasetSpec
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.stream import compute_stats
from mlaas_jupyter.stream._friends import dataset_files, friend_mark
from mlaas_jupyter.train.runner import train

EVENTS = 400


@pytest.fixture
def example_bundle(tmp_path: Path) -> Path:
    """A small real bundle (ONNX) that reads the example dataset."""
    return write_example_bundle(tmp_path / "bundle")


@pytest.fixture
def data_with_friend(tmp_path: Path, example_bundle: Path) -> tuple[Path, Path]:
    """The toy dataset (one file per class) and a friend tree of ``signal_0.root``
    written beside it, where the glob ``signal_*.root`` matches it."""
    spec = write_example_dataset(tmp_path / "data", events_per_file=EVENTS, files_per_class=1)
    friend = tmp_path / "data" / "signal_0_score.root"
    bundle = load_bundle(example_bundle)
    assert write_friend_tree(bundle, tmp_path / "data" / "signal_0.root", friend) == EVENTS
    return spec, friend


def test_friend_tree_is_marked(data_with_friend: tuple[Path, Path]) -> None:
    spec, friend = data_with_friend
    mark = friend_mark(str(friend))
    assert mark is not None
    assert (mark["source"], mark["tree"], mark["branches"]) == (
        str(spec.parent / "signal_0.root"),
        "Events",
        ["score"],
    )
    with uproot.open(friend) as handle:
        assert json.loads(str(handle["mlaas_friend"])) == mark
    assert friend_mark(str(spec.parent / "signal_0.root")) is None  # events: no mark


def test_glob_leaves_friend_out_with_a_note(data_with_friend: tuple[Path, Path]) -> None:
    spec, friend = data_with_friend
    folder = spec.parent
    files, notes = dataset_files([str(folder / "signal_*.root")], "class 'signal'")
    assert files == [str(folder / "signal_0.root")]
    assert notes == [
        f"left out 1 friend tree of scores that {str(folder / 'signal_*.root')!r} of class "
        f"'signal' matches: {friend} (scores of model 'toy-example' for "
        f"{folder / 'signal_0.root'}, written by mlaas predict)"
    ]
    # a folder is a glob too; a friend named explicitly is refused, naming it
    assert dataset_files([str(folder)])[0] == [
        str(folder / "background_0.root"),
        str(folder / "signal_0.root"),
    ]
    with pytest.raises(SourceError) as info:
        dataset_files([str(friend)])
    assert str(info.value).startswith(
        f"{friend}: a friend tree of scores written by mlaas predict, not events to train on"
    )
    with pytest.raises(SourceError, match="the pattern matches only friend trees of scores"):
        dataset_files([str(folder / "*_score.root")])


def test_statistics_and_training_leave_friend_out(
    data_with_friend: tuple[Path, Path], tmp_path: Path
) -> None:
    spec, friend = data_with_friend
    dataset = DatasetSpec.from_file(spec)
    stats = compute_stats(dataset, cache=False)
    assert [Path(f["path"]).name for f in stats.files] == ["background_0.root", "signal_0.root"]
    assert stats.entries_total == 2 * EVENTS
    assert len(stats.notes) == 1
    assert str(friend) in stats.notes[0]
    events: list[dict[str, Any]] = []
    training = TrainSpec.from_dict(
        {
            "dataset": yaml.safe_load(spec.read_text()),
            "model": {"name": "mlp", "params": {"sizes": [8]}},
            "training": {"epochs": 1, "batch_size": 256},
        },
        base_dir=spec.parent,
    )
    train(training, on_event=events.append, run_dir=tmp_path / "run", cache=False)
    notes = [e["message"] for e in events if e["type"] == "note"]
    assert stats.notes[0] in notes


def test_prediction_job_does_not_score_friends(
    data_with_friend: tuple[Path, Path], example_bundle: Path
) -> None:
    spec, friend = data_with_friend
    folder = spec.parent
    events: list[dict[str, Any]] = []
    job = {"predict": {"bundle": str(example_bundle), "files": [str(folder / "*.root")]}}
    done = run_prediction(job, events.append)
    # no output: scores/ beside each input; the friend tree is neither scored nor an input
    assert done["outputs"] == [
        str(folder / "scores" / "background_0_score.root"),
        str(folder / "scores" / "signal_0_score.root"),
    ]
    notes = [e["message"] for e in events if e["type"] == "note"]
    assert len(notes) == 1
    assert str(friend) in notes[0]
