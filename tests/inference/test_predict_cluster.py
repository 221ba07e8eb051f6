"""Prediction jobs over many files on a dask cluster (``predict.cluster``): one task per
file on a real LocalCluster, friend trees identical to the in-process path, per-file
errors that keep the other files' friend trees, one progress event per file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
from toy_bundles import write_example_bundle

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.inference.batch import FilesFailed, run_prediction
from mlaas_jupyter.inference.friend import PARTIAL_SUFFIX

CLUSTER = {"local": {"workers": 2}}
STEMS = ["background_0", "background_1", "signal_0", "signal_1"]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 files of the example dataset (2 per class, 600 events each) and a bundle."""
    data = tmp_path_factory.mktemp("cluster-data")
    write_example_dataset(data, events_per_file=600, files_per_class=2)
    bundle = write_example_bundle(tmp_path_factory.mktemp("cluster-bundle") / "bundle")
    return {"data": data, "bundle": bundle}


def predict_spec(bundle: Path, files: list[str], out: Path, **extra: Any) -> dict[str, Any]:
    return {"predict": {"bundle": str(bundle), "files": files, "output": str(out), **extra}}


def friend(path: Path) -> tuple[str, int, np.ndarray[Any, Any]]:
    """(tree name, entries, scores) of a friend tree file."""
    with uproot.open(path) as handle:
        # the scores' tree, and the mark that keeps dataset globs off the file
        name, mark = handle.keys(cycle=False)
        assert mark == "mlaas_friend"
        tree = handle[name]
        return name, tree.num_entries, tree["score"].array(library="np")


def ignore(event: dict[str, Any]) -> None:
    """An event sink that keeps nothing."""


def names(folder: Path) -> list[str]:
    """Every file in ``folder``, hidden (partial) ones included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.slow
def test_cluster_friend_trees_equal_the_local_ones(
    example: dict[str, Path], tmp_path: Path
) -> None:
    files = [str(example["data"] / "*.root")]
    local = run_prediction(predict_spec(example["bundle"], files, tmp_path / "local"), ignore)
    events: list[dict[str, Any]] = []
    task = predict_spec(example["bundle"], files, tmp_path / "cluster", cluster=CLUSTER)
    done = run_prediction(task, events.append)

    expected = [f"{stem}_score.root" for stem in STEMS]
    assert names(tmp_path / "cluster") == names(tmp_path / "local") == expected
    bundle = load_bundle(example["bundle"])
    for stem, name in zip(STEMS, expected, strict=True):
        tree, entries, scores = friend(tmp_path / "cluster" / name)
        assert (tree, entries) == ("Events", 600)
        np.testing.assert_array_equal(scores, friend(tmp_path / "local" / name)[2])
        source = example["data"] / f"{stem}.root"
        np.testing.assert_array_equal(scores, bundle.predict(str(source)).astype(np.float32))

    outputs = [str(tmp_path / "cluster" / name) for name in expected]
    assert done["outputs"] == outputs
    assert done["results"] == [
        {"input": str(example["data"] / f"{stem}.root"), "output": out, "entries": 600}
        for stem, out in zip(STEMS, outputs, strict=True)
    ]
    assert [r["entries"] for r in local["results"]] == [600] * 4
    assert (done["metrics"]["entries"], done["metrics"]["files"]) == (2400, 4)

    assert events[0]["type"] == "start"
    assert (events[0]["files"], events[0]["cluster"]) == (4, "local")
    progress = [e for e in events if e["type"] == "progress"]
    per_file, summary = progress[:-1], progress[-1]
    assert [e["files_done"] for e in per_file] == [1, 2, 3, 4]
    assert [e["events"] for e in per_file] == [600, 1200, 1800, 2400]
    assert all((e["files"], e["files_failed"]) == (4, 0) for e in progress)
    assert sorted(e["file"] for e in per_file) == [r["input"] for r in done["results"]]
    assert all(e["result"]["entries"] == 600 for e in per_file)
    assert (summary["fraction"], summary["results"]) == (1.0, done["results"])
    assert events[-1] is done


@pytest.mark.slow
def test_a_corrupt_file_fails_alone(example: dict[str, Path], tmp_path: Path) -> None:
    """Bytes that are not ROOT among 3 good files: only that file fails; the job's error
    names it, the other friend trees are complete and in place, nothing half-written."""
    data = tmp_path / "data"
    data.mkdir()
    for stem in STEMS[:3]:
        shutil.copy(example["data"] / f"{stem}.root", data / f"{stem}.root")
    corrupt = data / "corrupt.root"
    corrupt.write_bytes(b"these bytes are not a ROOT file\n" * 64)
    out = tmp_path / "out"
    events: list[dict[str, Any]] = []
    task = predict_spec(example["bundle"], [str(data / "*.root")], out, cluster=CLUSTER)
    with pytest.raises(FilesFailed) as info:
        run_prediction(task, events.append)

    message = str(info.value)
    assert message.startswith(f"1 of 4 files failed: {corrupt} (not a ROOT file: it starts")
    assert message.endswith("3 scored; their friend trees are in place")
    assert names(out) == [f"{stem}_score.root" for stem in STEMS[:3]]
    assert not [name for name in names(out) if name.endswith(PARTIAL_SUFFIX)]
    bundle = load_bundle(example["bundle"])
    for stem in STEMS[:3]:
        tree, entries, scores = friend(out / f"{stem}_score.root")
        assert (tree, entries) == ("Events", 600)
        np.testing.assert_array_equal(scores, bundle.predict(str(data / f"{stem}.root")))

    results = {r["input"]: r for r in info.value.results}
    bad = results.pop(str(corrupt))
    assert (bad["output"], set(bad)) == (
        str(out / "corrupt_score.root"),
        {"input", "output", "error"},
    )
    assert str(corrupt) in bad["error"]
    assert [r["entries"] for r in results.values()] == [600, 600, 600]
    progress = [e for e in events if e["type"] == "progress"]
    assert [e["files_done"] for e in progress[:-1]] == [1, 2, 3, 4]
    assert progress[-1]["files_failed"] == 1
    assert progress[-1]["results"] == info.value.results
    assert not any(e["type"] == "done" for e in events)


@pytest.mark.slow
def test_a_cancelled_cluster_run_leaves_only_complete_friend_trees(
    example: dict[str, Path], tmp_path: Path
) -> None:
    """A cancellation (KeyboardInterrupt from the job's event sink) after the first
    file: the run stops, and every friend tree under a final name is complete."""

    def emit(event: dict[str, Any]) -> None:
        if event["type"] == "progress":
            raise KeyboardInterrupt

    out = tmp_path / "out"
    files = [str(example["data"] / "*.root")]
    task = predict_spec(example["bundle"], files, out, cluster=CLUSTER, step_size=50)
    with pytest.raises(KeyboardInterrupt):
        run_prediction(task, emit)
    complete = [name for name in names(out) if not name.startswith(".")]
    assert complete  # the first file's friend tree, at least
    for name in complete:
        assert friend(out / name)[:2] == ("Events", 600)


def test_a_bad_cluster_is_refused_before_anything_runs(
    example: dict[str, Path], tmp_path: Path
) -> None:
    from mlaas_jupyter.errors import SpecError

    both = {"local": {}, "scheduler": "tcp://127.0.0.1:1"}
    task = predict_spec(example["bundle"], [str(example["data"])], tmp_path / "o", cluster=both)
    with pytest.raises(SpecError, match=r"predict\.cluster: give exactly one of"):
        run_prediction(task, ignore)
    assert names(tmp_path / "o") == []


@pytest.mark.slow
def test_cli_predict_on_a_cluster(
    example: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlaas_jupyter.cli import main

    data = tmp_path / "data"
    data.mkdir()
    for stem in STEMS[:2]:
        shutil.copy(example["data"] / f"{stem}.root", data / f"{stem}.root")
    out = tmp_path / "scores"
    argv = ["predict", str(example["bundle"]), str(data), "--out", str(out)]
    assert main([*argv, "--cluster", "{local: {workers: 2}}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{data / stem}.root: 600 entries -> {out / stem}_score.root" for stem in STEMS[:2]
    ] + ["scored 1200 entries of 2 files"]
    assert names(out) == [f"{stem}_score.root" for stem in STEMS[:2]]

    (data / "zz_corrupt.root").write_bytes(b"\0" * 512)
    assert main([*argv, "--cluster", "local"]) == 2
    captured = capsys.readouterr()
    assert f"{data / 'zz_corrupt.root'}: FAILED: " in captured.out
    assert captured.err.startswith(
        f"mlaas predict: error: 1 of 3 files failed: {data / 'zz_corrupt.root'} ("
    )


def test_cluster_option_forms(tmp_path: Path) -> None:
    from mlaas_jupyter.cli.predict import cluster_option
    from mlaas_jupyter.errors import SpecError
    from mlaas_jupyter.specs.cluster import ClusterSpec

    def form(value: Any) -> dict[str, Any]:
        return ClusterSpec.parse(value).to_dict()

    spec = tmp_path / "train.yaml"
    spec.write_text("dataset: {}\ncluster: {jobqueue: {kind: slurm, cores: 4}}\n")
    bare = tmp_path / "cluster.yml"
    bare.write_text("scheduler: tcp://10.0.0.1:8786\n")
    assert cluster_option(None) is None
    assert cluster_option("local") == form({"local": {}})
    assert cluster_option("tcp://h:8786") == form({"scheduler": "tcp://h:8786"})
    assert cluster_option("{local: {workers: 3}}") == form({"local": {"workers": 3}})
    assert cluster_option(str(spec)) == form({"jobqueue": {"kind": "slurm", "cores": 4}})
    assert cluster_option(str(bare)) == form("tcp://10.0.0.1:8786")
    for bad, words in [
        ("lcoal", "--cluster: 'lcoal' is not 'local', a scheduler address"),
        ("{local: {}, scheduler: x}", "--cluster: give exactly one of"),
        (str(tmp_path / "none.yaml"), "none.yaml: cannot read the spec file"),
        ("{local: [", "--cluster: not a valid YAML mapping"),
    ]:
        with pytest.raises(SpecError) as info:
            cluster_option(bad)
        assert str(info.value).startswith(words) or words in str(info.value), (bad, info.value)


@pytest.mark.slow
def test_client_predict_file_on_a_cluster(isolated: Path, example: dict[str, Path]) -> None:
    """The in-process client: a prediction job (local executor) scoring on a cluster."""
    from mlaas_jupyter.client import Client
    from mlaas_jupyter.specs.cluster import ClusterSpec

    archive = shutil.make_archive(str(isolated / "bundle"), "zip", example["bundle"])
    client = Client(transport="in-process")
    try:
        client.upload_model(archive, name="higgs")
        files = [str(example["data"] / f"{stem}.root") for stem in STEMS[:2]]
        cluster = ClusterSpec.parse(CLUSTER)
        job = client.predict_file("higgs", files, str(isolated / "out"), cluster=cluster)
        assert job["spec"]["predict"]["cluster"] == cluster.to_dict()
        done = client.wait(job["id"], timeout=180)
        assert done["state"] == "succeeded", (done["error"], client.logs(job["id"]))
        assert done["progress"]["results"] == [
            {
                "input": source,
                "output": str(isolated / "out" / f"{stem}_score.root"),
                "entries": 600,
            }
            for source, stem in zip(files, STEMS[:2], strict=True)
        ]
    finally:
        client.close()


@pytest.mark.slow
def test_a_local_cluster_inside_the_dask_executor_is_refused_by_name(
    example: dict[str, Path], tmp_path: Path
) -> None:
    """A job of the dask executor runs in a daemonic worker process, which cannot start
    LocalCluster worker processes: the job fails saying so, not with dask's own error."""
    import asyncio

    from mlaas_jupyter.jobs import JobManager, JobState, JobStore
    from mlaas_jupyter.jobs.executors.dask import DaskExecutor

    task = predict_spec(example["bundle"], [str(example["data"])], tmp_path / "o", cluster="local")

    async def main() -> None:
        store = JobStore(tmp_path / "jobs.sqlite")
        executors = {"dask": DaskExecutor()}
        manager = JobManager(store, executors, default_executor="dask", runs_dir=tmp_path / "r")
        try:
            job = await manager.wait((await manager.submit(task)).id, timeout=180)
            assert job.state is JobState.FAILED
            assert str(job.error).startswith("predict.cluster: local: this job runs inside a dask")
        finally:
            await manager.shutdown()
            store.close()

    asyncio.run(main())
    assert names(tmp_path / "o") == []
