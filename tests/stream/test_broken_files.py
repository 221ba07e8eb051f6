"""Broken local files through ``mlaas inspect``, ``stats``, ``predict`` and ``train``
(issue 22, item 1): each gives one line on stderr naming the file and the problem, a
non-zero exit, no traceback, no hang, and nothing written that claims success.

Every command runs in a child Python (``mlaas_jupyter.cli.main``) under a time limit.
The unreadable file is read by a child that drops root's rights (``os.setuid`` to
``nobody``) once it has imported the command, so the refusal is the kernel's, as a
user meets it. A dataset's ``on_error: skip`` leaves a damaged file out of the
statistics pass and the batch stream with a note counting the events lost.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from broken_inputs import CORPUS_CASES, EVENTS, BrokenInput, write_corpus
from toy_bundles import write_example_bundle

from mlaas_jupyter.errors import SourceError
from mlaas_jupyter.specs.dataset import DatasetSpec
from mlaas_jupyter.stream import BatchStream
from mlaas_jupyter.stream.sources import open_tree
from mlaas_jupyter.stream.stats import compute_stats

#: seconds a command may take on one broken file (a hang fails the case)
LIMIT = 240

#: runs the CLI; for the unreadable file it first runs the same command as root on the
#: good twin, output thrown away (so every lazy import is done: the interpreter's own
#: files are where ``nobody`` may not read them), then drops root's rights
_CHILD = """
import json, os, pwd, sys
from mlaas_jupyter.cli import main
warm, argv = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if warm:
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        assert main(warm) == 0
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    user = pwd.getpwnam("nobody")
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
sys.exit(main(argv))
"""


@pytest.fixture(scope="module")
def corpus() -> Iterator[tuple[Path, dict[str, BrokenInput]]]:
    """The good file and the broken inputs by name, in a folder that ``nobody`` may
    enter (pytest's own temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="mlaas-broken-"))
    folder.chmod(0o755)
    good, cases = write_corpus(folder)
    for path in (good.parent, folder / "good"):
        path.chmod(0o755)
    yield good, {case.name: case for case in cases}
    shutil.rmtree(folder, ignore_errors=True)


def _mlaas(
    *argv: str, work: Path, warm: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``mlaas argv`` in a child; with ``warm`` (the same command on good input) as
    ``nobody``, after ``warm`` ran as root."""
    env = {
        **os.environ,
        "HOME": str(work),
        "MLAAS_CACHE_DIR": str(work / "cache"),
        "MLAAS_JOB_STORE": str(work / "jobs.sqlite"),
        "MLAAS_RUNS_DIR": str(work / "runs"),
    }
    return subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(warm or []), json.dumps(list(argv))],
        capture_output=True,
        text=True,
        timeout=LIMIT,
        env=env,
        check=False,
        cwd=work,
    )


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], case: BrokenInput) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1, result.stderr
    assert case.path in lines[0] or os.path.basename(case.path) in lines[0], lines[0]
    assert case.says in lines[0], lines[0]


def _spec(
    good: Path, signal: str, folder: Path, name: str = "dataset.yaml", **extra: object
) -> Path:
    """A dataset spec whose signal is ``signal``, background the good file's twin."""
    spec = yaml.safe_load((good.parent / "dataset.yaml").read_text())
    spec["classes"] = {"background": [str(good.parent / "background_0.root")], "signal": [signal]}
    spec.update(extra)
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    path.chmod(0o644)
    return path


def _train_spec(good: Path, signal: str, folder: Path, name: str) -> Path:
    training = {
        "dataset": yaml.safe_load(_spec(good, signal, folder, f"dataset-{name}").read_text()),
        "model": {"name": "mlp", "backend": "torch", "params": {"sizes": [8]}},
        "training": {"epochs": 1, "batch_size": 128},
    }
    path = folder / name
    path.write_text(yaml.safe_dump(training))
    path.chmod(0o644)
    return path


@pytest.fixture
def work() -> Iterator[Path]:
    """A folder for one case that ``nobody`` may write into."""
    folder = Path(tempfile.mkdtemp(prefix="mlaas-case-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


Corpus = tuple[Path, dict[str, BrokenInput]]


def _locked(name: str, good: Path, argv: list[str], case: BrokenInput) -> list[str] | None:
    """For the unreadable file, ``argv`` with the good file instead (the warm-up run)."""
    if name != "no-permission":
        return None
    return [str(good) if arg == case.path else arg for arg in argv]


@pytest.mark.parametrize("name", CORPUS_CASES)
def test_inspect(name: str, corpus: Corpus, work: Path) -> None:
    good, cases = corpus
    case = cases[name]
    argv = ["inspect", case.path]
    result = _mlaas(*argv, work=work, warm=_locked(name, good, argv, case))
    if not case.in_metadata:
        # inspect reads the header, directory and tree metadata, not the baskets: a
        # basket's damage shows when it is read (stats, stream, train, predict)
        assert result.returncode == 0, result.stderr
        assert f"{EVENTS} entries" in result.stdout
        return
    _assert_one_clear_line(result, case)


@pytest.mark.parametrize("name", CORPUS_CASES)
def test_stats(name: str, corpus: Corpus, work: Path) -> None:
    good, cases = corpus
    case = cases[name]
    spec = _spec(good, case.path, work)
    warm = ["stats", str(_spec(good, str(good), work, "good.yaml"))]
    result = _mlaas("stats", str(spec), work=work, warm=warm if name == "no-permission" else None)
    _assert_one_clear_line(result, case)
    cached = list((work / "cache").rglob("*.json"))
    assert len(cached) == (1 if name == "no-permission" else 0)  # only the good pass's


@pytest.mark.parametrize("name", CORPUS_CASES)
def test_predict(name: str, corpus: Corpus, work: Path) -> None:
    good, cases = corpus
    case = cases[name]
    bundle = write_example_bundle(work / "bundle")
    for path in [bundle, *bundle.rglob("*")]:
        path.chmod(0o755)
    out = work / "scores.root"
    argv = ["predict", str(bundle), case.path, "--out", str(out)]
    warm = _locked(name, good, argv, case)
    if warm is not None:
        warm[-1] = str(work / "warm-scores.root")
    result = _mlaas(*argv, work=work, warm=warm)
    _assert_one_clear_line(result, case)
    assert not out.exists()  # no score file


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPUS_CASES)
def test_train(name: str, corpus: Corpus, work: Path) -> None:
    good, cases = corpus
    case = cases[name]
    spec = _train_spec(good, case.path, work, "train.yaml")
    warm = None
    if name == "no-permission":
        good_spec = _train_spec(good, str(good), work, "good.yaml")
        warm = ["train", str(good_spec), "--run-dir", str(work / "warm-run")]
    run = work / "run"
    result = _mlaas("train", str(spec), "--run-dir", str(run), work=work, warm=warm)
    _assert_one_clear_line(result, case)
    assert not list(run.rglob("manifest.json")) if run.exists() else True  # no bundle


# -- the messages, in process -----------------------------------------------------------


def test_truncation_gives_the_sizes_from_the_header(corpus: Corpus) -> None:
    good, cases = corpus
    size = good.stat().st_size
    cut = cases["cut-half"].path
    with pytest.raises(SourceError) as caught:
        open_tree(cut)
    assert caught.value.path == cut
    assert f"truncated: {size // 2} of {size} bytes" in caught.value.message


def test_a_damaged_basket_is_named_by_file_tree_branch_and_entries(
    corpus: Corpus, tmp_path: Path
) -> None:
    good, cases = corpus
    case = cases["flipped-Jet_pt"]
    spec = DatasetSpec.from_file(_spec(good, case.path, tmp_path))
    with pytest.raises(SourceError) as caught:
        compute_stats(spec, cache=False)
    message = str(caught.value)
    assert message.startswith(f"{case.path}: cannot read or decompress branch 'Jet_pt'")
    assert f"entries 0-{EVENTS} of tree 'Events'" in message
    assert "on_error: skip" in message


@pytest.mark.parametrize("name", ["flipped-Jet_pt", "cut-half", "text"])
def test_skip_leaves_a_damaged_file_out_and_counts_its_events(
    name: str, corpus: Corpus, tmp_path: Path
) -> None:
    good, cases = corpus
    case = cases[name]
    spec = DatasetSpec.from_file(_spec(good, case.path, tmp_path, on_error="skip"))
    stats = compute_stats(spec, cache=tmp_path / "cache")
    assert stats.entries_total == EVENTS  # the good file only
    skipped = [row for row in stats.files if "skipped" in row]
    assert [row["path"] for row in skipped] == [case.path]
    lost = EVENTS if name == "flipped-Jet_pt" else None
    assert skipped[0]["events_lost"] == lost
    count = f"{EVENTS} events lost" if lost else "unknown count"
    [note] = [note for note in stats.notes if note.startswith(f"skipped {case.path} (")]
    assert count in note
    assert "on_error" not in note  # the hint of the error, not of the note
    # the same from the cache, and the batch stream reads the good file alone
    again = compute_stats(spec, cache=tmp_path / "cache")
    assert again.entries_read == 0
    assert again.notes == stats.notes
    stream = BatchStream(spec, "train", 64, stats=again, shuffle=False)
    labels = [int(label) for batch in stream for label in batch.y]
    assert len(labels) == stream.events == sum(again.split_events("train"))
    assert set(labels) == {0}  # the background's good file alone


def test_skip_probes_the_first_file_that_opens(corpus: Corpus, tmp_path: Path) -> None:
    """The plan takes the branches from the first file; a truncated first file is
    skipped, the next one read."""
    good, cases = corpus
    case = cases["cut-in-streamer-info"]
    mapping = yaml.safe_load(_spec(good, case.path, tmp_path, on_error="skip").read_text())
    mapping["classes"] = {
        "signal": [case.path, str(good)],
        "background": mapping["classes"]["background"],
    }
    stats = compute_stats(DatasetSpec.from_dict(mapping), cache=False)
    assert stats.entries_total == 2 * EVENTS
    assert [row["path"] for row in stats.files if "skipped" in row] == [case.path]


def test_stats_and_stream_print_the_skip_note(corpus: Corpus, work: Path) -> None:
    good, cases = corpus
    case = cases["flipped-MET_pt"]
    spec = _spec(good, case.path, work, on_error="skip")
    stats = _mlaas("stats", str(spec), work=work)
    summary = _mlaas("stats", str(spec), "--json", work=work)
    stream = _mlaas("stream", str(spec), work=work)
    note = f"note: skipped {case.path} ({EVENTS} events lost): cannot read or decompress"
    assert stats.returncode == 0, stats.stderr
    assert note in stats.stdout
    assert stream.returncode == 0, stream.stderr
    assert note in stream.stdout
    rows = json.loads(summary.stdout)["files"]
    assert [row["events_lost"] for row in rows if "skipped" in row] == [EVENTS]


def test_nobody_is_a_user() -> None:
    """The unreadable case needs a user without root's rights."""
    assert pwd.getpwnam("nobody").pw_uid != 0
