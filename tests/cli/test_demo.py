"""The main job of the Quick start (``bash scripts/run --demo``) runs twice in a row.

Issue 19, item 5: the first run's scores must not be picked up by the second run's
dataset globs (``signal_*.root``). The demo runs as ``scripts/run`` runs it
(``python -m mlaas_jupyter.demo`` in the repository's place: here a fresh folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import uproot

from mlaas_jupyter.stream._friends import friend_mark

INPUTS = ["background_0.root", "background_1.root", "signal_0.root", "signal_1.root"]


def _demo(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLAAS_CACHE_DIR": str(folder / "cache"),
        "MLAAS_JOB_STORE": str(folder / "jobs.sqlite"),
        "MLAAS_RUNS_DIR": str(folder / "runs"),
    }
    return subprocess.run(
        [sys.executable, "-m", "mlaas_jupyter.demo"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_demo_runs_twice(tmp_path: Path) -> None:
    data = tmp_path / "example-data"
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    scores = data / "scores" / "signal_0_score.root"
    assert f"wrote {scores.relative_to(tmp_path)} (branches score)" in first.stdout
    # the friend tree is out of the globs' reach, and marked as scores
    assert sorted(p.name for p in data.glob("*.root")) == INPUTS
    mark = friend_mark(str(scores))
    assert mark is not None
    assert mark["source"] == str(Path("example-data") / "signal_0.root")
    with uproot.open(scores) as handle, uproot.open(data / "signal_0.root") as events:
        assert handle["Events"].num_entries == events["Events"].num_entries

    second = _demo(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "statistics of 4 files (cache" in second.stdout  # the same files, cached
    assert "friend tree" not in second.stdout.replace("(a friend tree in scores/)", "")
    assert sorted(p.name for p in data.glob("*.root")) == INPUTS
    assert sorted(p.name for p in (data / "scores").iterdir()) == ["signal_0_score.root"]
