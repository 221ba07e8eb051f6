"""``benchmarks/scale_bench.py --quick`` runs end to end and prints its JSON line (no
timing checks: the figures of tiny sizes on a shared machine mean nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


@pytest.mark.slow
def test_scale_bench_quick() -> None:
    python = str(VENV_PYTHON) if VENV_PYTHON.is_file() else sys.executable
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [python, "benchmarks/scale_bench.py", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    for key in ("ddp_2_vs_1", "stats_2_vs_1"):
        assert isinstance(result[key], float)
        assert result[key] > 0
    assert 0 <= result["ddp_auc_delta"] <= 1
    assert result["ddp_model"].startswith("mlp 34-64-1 (2305 parameters), batch 4096")
    assert set(result["samples_per_s"]) == {"workers_1", "workers_2"}
    assert all(v > 0 for v in result["samples_per_s"].values())
    assert result["stats_files"] == 8
    assert result["stats_events"] == 8 * 2000
