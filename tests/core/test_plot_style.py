"""``c.Mlaas.plot_style``: the server's experiment style fills what a spec leaves open."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mlaas_jupyter.core import Mlaas
from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.specs.requests import JobRequest


def _spec(folder: Path, style: str | None) -> dict[str, Any]:
    training: dict[str, Any] = {"epochs": 1, **({"style": style} if style else {})}
    return {
        "dataset": {"classes": {"b": "background_0.root", "s": "signal_0.root"}},
        "model": {"name": "bdt"},
        "training": training,
    }


def test_plot_style_fills_specs_without_one(tmp_path: Path) -> None:
    write_example_dataset(tmp_path, events_per_file=200, files_per_class=1)

    async def styles() -> list[Any]:
        core = Mlaas(
            data_roots=[str(tmp_path)],
            job_store=str(tmp_path / "state" / "jobs.sqlite"),
            runs_dir=str(tmp_path / "state" / "runs"),
            plot_style="atlas",
        ).start()
        try:
            found = []
            for style in (None, "LHCb", "none"):
                job = await core.jobs.submit(JobRequest(spec=_spec(tmp_path, style)))
                found.append(job["spec"]["training"].get("style"))
                await core.jobs.cancel(job["id"])
            return found
        finally:
            await core.stop()

    # the server's choice only where the spec has none; "none" is a choice too
    assert asyncio.run(styles()) == ["ATLAS", "LHCb", "none"]


def test_plot_style_is_checked() -> None:
    with pytest.raises(SpecError, match="allowed values are ALICE, ATLAS, CMS, LHCb, none"):
        Mlaas(plot_style="D0")
