"""The benchmark scripts run end to end and print their JSON line (no timing checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _run(*args: str) -> dict[str, object]:
    python = str(VENV_PYTHON) if VENV_PYTHON.is_file() else sys.executable
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [python, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert isinstance(result, dict)
    return result


@pytest.mark.slow
def test_train_bench_quick() -> None:
    result = _run("benchmarks/train_bench.py", "--quick")
    ratios = {
        f"loader_vs_memory_{backend}{way}"
        for backend in ("torch", "keras")
        for way in ("", "_streaming")
    }
    assert {*ratios, "samples_per_s", "epoch_cache_mb"} <= set(result)
    assert all(isinstance(result[k], float) and result[k] > 0 for k in ratios)
    rates = result["samples_per_s"]
    assert isinstance(rates, dict)
    assert set(rates) == {
        f"{backend}_{side}{way}"
        for backend in ("torch", "keras")
        for side in ("loader", "memory")
        for way in ("", "_streaming")
    } | {"loader_only"}
    assert all(isinstance(v, int) and v > 0 for v in rates.values())
    assert result["events"] == 40_000
    assert result["batch_size"] == 1024


@pytest.mark.slow
def test_stream_bench_small() -> None:
    result = _run("benchmarks/stream_bench.py", "--events", "5000")
    expected = {
        "flat_ratio",
        "jagged_ratio",
        "jagged_vs_naive",
        "rss_5_vs_1",
        "warm_first_batch_vs_chunk",
        "cached_stats_events_read",
        "events_per_s",
        "peak_rss_mib",
    }
    assert expected <= set(result)
    assert result["cached_stats_events_read"] == 0
    assert result["events_per_file"] == 5000


@pytest.mark.slow
def test_serve_bench_quick() -> None:
    result = _run("benchmarks/serve_bench.py", "--quick")
    assert {"single_row_rps", "p99_ms", "batch_predictions_per_s"} <= set(result)
    assert isinstance(result["single_row_rps"], int | float)
    assert result["single_row_rps"] > 0
    assert result["json_parser"] == "simdjson+orjson+json"  # every parser installed


@pytest.mark.slow
def test_server_bench_quick() -> None:
    result = _run("benchmarks/server_bench.py", "--requests", "10")
    assert result["errors"] == 0
    endpoints = result["endpoints"]
    assert isinstance(endpoints, dict)
    assert set(endpoints) == {"GET jobs", "GET jobs/{id}/events?since=0"}
