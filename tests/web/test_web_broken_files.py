"""Broken local files through the REST API (issue 22, item 1): browsing a file's trees
and branches, POST histograms, POST stats and POST jobs answer 4xx with one line naming the file (as
the client gave it) and the problem, never a 500 or a hang, and no job is queued for
a dataset that cannot be read.

The corpus (tests/broken_inputs.py) is written inside the server's data root. The
unreadable file is left out here: the server runs as root, and root reads it (the CLI
test, tests/stream/test_broken_files.py, reads it as ``nobody``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from broken_inputs import BrokenInput, write_corpus

#: seconds one request may take (a hang fails the case)
LIMIT = 60


@pytest.fixture
def broken(jp_root_dir: Path) -> dict[str, BrokenInput]:
    """The corpus inside the data root, by case name, with paths relative to the root."""
    _, cases = write_corpus(jp_root_dir / "broken")
    return {
        case.name: BrokenInput(
            case.name, str(Path(case.path).relative_to(jp_root_dir)), case.says, case.in_metadata
        )
        for case in cases
        if case.name != "no-permission"
    }


def _dataset(root: Path, case: BrokenInput, **extra: Any) -> dict[str, Any]:
    spec = yaml.safe_load((root / "broken/good/dataset.yaml").read_text())
    spec["classes"] = {"background": ["broken/good/background_0.root"], "signal": [case.path]}
    return {**spec, **extra}


def _check(case: BrokenInput, status: int, body: Any) -> None:
    assert 400 <= status < 500, (case.name, status, body)
    detail = body["detail"]
    assert "\n" not in detail
    assert "Traceback" not in detail
    assert Path(case.path).name in detail, (case.name, detail)  # jobs: the absolute path
    assert case.says in detail, (case.name, detail)


async def _call(api: Any, *parts: str, **kwargs: Any) -> tuple[int, Any]:
    result: tuple[int, Any] = await asyncio.wait_for(api(*parts, **kwargs), LIMIT)
    return result


async def test_browsing_a_broken_file(api: Any, broken: dict[str, BrokenInput]) -> None:
    for case in broken.values():
        status, body = await _call(api, "trees", params={"path": case.path})
        if not case.in_metadata:  # the baskets are not read to list the trees
            assert (status, body["trees"]) == (200, ["Events"]), (case.name, body)
            continue
        _check(case, status, body)
        params = {"path": case.path, "tree": "Events"}
        status, body = await _call(api, "branches", params=params)
        _check(case, status, body)


async def test_stats_of_a_broken_file(
    api: Any, broken: dict[str, BrokenInput], jp_root_dir: Path
) -> None:
    for case in broken.values():
        status, body = await _call(api, "stats", method="POST", body=_dataset(jp_root_dir, case))
        _check(case, status, body)


async def test_histograms_of_a_broken_file(api: Any, broken: dict[str, BrokenInput]) -> None:
    for case in broken.values():
        branch = "Jet_pt" if case.name == "flipped-Jet_pt" else "MET_pt"
        request = {"classes": {"s": [case.path]}, "branch": branch, "range": [0, 300]}
        status, body = await _call(api, "histograms", method="POST", body=request)
        _check(case, status, body)


async def test_stats_skips_a_damaged_file_when_asked(
    api: Any, broken: dict[str, BrokenInput], jp_root_dir: Path
) -> None:
    case = broken["flipped-Jet_pt"]
    spec = _dataset(jp_root_dir, case, on_error="skip")
    status, body = await _call(api, "stats", method="POST", body=spec)
    assert status == 200, body
    assert any(note.startswith("skipped ") and "events lost" in note for note in body["notes"])


async def test_a_job_on_a_broken_file_is_refused(
    api: Any, broken: dict[str, BrokenInput], jp_root_dir: Path
) -> None:
    for case in broken.values():
        if not case.in_metadata:
            continue  # a basket's damage shows when the job reads it (its error event)
        spec = {
            "dataset": _dataset(jp_root_dir, case),
            "model": {"name": "bdt"},
            "training": {"epochs": 1},
        }
        status, body = await _call(api, "jobs", method="POST", body={"spec": spec})
        _check(case, status, body)
    status, listing = await _call(api, "jobs")
    assert (status, listing["jobs"]) == (200, [])
