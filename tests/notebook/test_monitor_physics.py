"""The training monitor shows a finished classifier's physics metrics and plots."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlaas_jupyter.client import Client
from mlaas_jupyter.client._job import Job
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.notebook.widgets import TrainingMonitor
from mlaas_jupyter.notebook.widgets._monitor import _metrics, physics_summary
from mlaas_jupyter.stream import DatasetSpec

METRICS = {
    "auc": 0.91,
    "auc_weighted": 0.92345,
    "rejection_at_50": 51.07,
    "rejection_at_90": 4.2114,
    "best_cut": {"score": 0.74, "signal": 14076.2, "background": 448805.0, "significance": 20.9},
    "luminosity": 138000.0,
}


def test_physics_summary_reads_like_the_jobs_panel() -> None:
    assert physics_summary(METRICS) == (
        "weighted AUC 0.923 · rejection 51.1 @ 50%, 4.21 @ 90%"
        " · best cut ≥ 0.740: Z 20.90 (s 14,076, b 448,805) · 138 fb⁻¹"
    )
    # no background left at 50%: an infinite rejection, stored as None
    infinite = {**METRICS, "rejection_at_50": None, "best_cut": None, "luminosity": None}
    assert physics_summary(infinite) == "weighted AUC 0.923 · rejection n/a @ 50%, 4.21 @ 90%"
    assert physics_summary({"auc": 0.9, "loss": 0.3}) == ""  # regression, older jobs


def test_monitor_keeps_the_best_cut_among_its_metrics() -> None:
    kept = _metrics({**METRICS, "auc_per_class": {"a": 0.9}, "split": "test"})
    assert kept["best_cut"] == METRICS["best_cut"]
    assert "auc_per_class" not in kept  # other mappings stay out of the view
    assert kept["split"] == "test"


@pytest.mark.slow
def test_monitor_of_a_finished_job_shows_the_physics(tmp_path: Path, isolated: Path) -> None:
    spec = write_example_dataset(tmp_path, events_per_file=2000, files_per_class=1)
    dataset = DatasetSpec.from_file(spec).to_dict()
    client = Client(transport="in-process")
    try:
        training = {"epochs": 1, "early_stopping": None}
        job = Job.submit(
            {"dataset": dataset, "model": {"name": "bdt"}, "training": training}, client=client
        )
        job = job.wait(timeout=180)
        assert job.status == "succeeded", job.logs()
        monitor = TrainingMonitor(job.id, client, follow=False)
        metrics = monitor.metrics
        assert metrics["auc_weighted"] == pytest.approx(job.metrics["auc_weighted"])
        assert metrics["best_cut"] == job.metrics["best_cut"]
        assert metrics["best_cut"]["background"] >= 1
        assert monitor.physics == physics_summary(job.metrics)
        assert monitor.physics.startswith(
            f"weighted AUC {metrics['auc_weighted']:.3f} · rejection "
        )
        assert f"Z {metrics['best_cut']['significance']:.2f}" in monitor.physics
        assert set(monitor.images) == {"roc", "rejection", "scores"}
    finally:
        client.close()
