"""``TrainingStudio``: branches, cuts, samples and model in one panel, then Train (or
sweep the choice over parameters in its sweep tab)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w
import yaml

from ...client import Client
from ...client._job import Job
from ...specs.dataset import DatasetSpec
from ...specs.training import TrainSpec
from ._branches import BranchSelector
from ._cuts import CutEditor
from ._models import ModelPicker
from ._monitor import TrainingMonitor
from ._samples import SamplesEditor
from ._sweep_studio import SweepStudio

__all__ = ["TrainingStudio"]


class TrainingStudio(w.VBox):  # type: ignore[misc]
    """Choose branches, cuts, the samples' normalisation and a model visually; export
    the choice as YAML; train.

    Parameters
    ----------
    files
        ROOT files (paths, globs, folders); by default each file is a class.
    tree
        The tree, when the files hold more than one.
    classes
        Class name -> files, to group several files per class.
    client
        Where Train submits (default: the Jupyter server when found, else embedded).
    """

    def __init__(
        self,
        files: str | Path | Iterable[str | Path],
        tree: str | None = None,
        *,
        classes: Mapping[str, Sequence[str]] | None = None,
        client: Client | None = None,
    ) -> None:
        self.branches = BranchSelector(files, tree)
        self.classes = {k: list(v) for k, v in classes.items()} if classes else None
        base = {"classes": self.classes or {Path(f).stem: [f] for f in self.branches.files}}
        self.cuts = CutEditor({**base, "tree": self.branches.tree})
        # weights are real numbers: NanoAOD's ~1,000 flags and counters stay out of the list
        real = [
            b["name"]
            for b in self.branches.branches
            if b["kind"] == "flat" and str(b.get("dtype", "")).startswith("float")
        ]
        self.samples = SamplesEditor(base["classes"], real, self._yields_dataset, client=client)
        self.model = ModelPicker(on_train=lambda _: self.train())
        self.client = client
        self.job: Job | None = None
        self.yaml_path = w.Text(value="train.yaml", description="export to")
        self.export_button = w.Button(description="Export YAML", icon="download")
        self.export_button.on_click(lambda _: self._export())
        self.output = w.Output()
        # the same choice swept over parameters (its spec taken when Start is pressed)
        self.sweep = SweepStudio(self, client=client)
        tabs = w.Tab([self.branches, self.cuts, self.samples, self.model, self.sweep])
        titles = ("1. branches", "2. cuts", "3. samples", "4. model", "sweep")
        for index, title in enumerate(titles):
            tabs.set_title(index, title)
        super().__init__([tabs, w.HBox([self.yaml_path, self.export_button]), self.output])

    def dataset(self, branches: list[str] | None = None) -> dict[str, Any]:
        """The dataset part of the spec: the branches (or ``branches``), the cuts and
        the samples' normalisation (not yet validated)."""
        if branches is None:
            dataset = self.branches.to_spec(self.classes)
        else:
            base = self.classes or {Path(f).stem: [f] for f in self.branches.files}
            dataset = {"tree": self.branches.tree, "classes": base, "branches": branches}
        cuts = self.cuts.to_spec()
        dataset.update(new_branches=cuts["new_branches"], cuts=cuts["cuts"])
        return self.samples.apply(dataset)

    def spec(self) -> dict[str, Any]:
        """The chosen TrainSpec as a mapping (checked by ``TrainSpec.from_dict``)."""
        config = self.model.model_config()
        dataset = {**self.dataset(), "split": config["split"]}
        spec = {"dataset": dataset, "model": config["model"], "training": config["training"]}
        if config["cluster"] is not None:
            spec["cluster"] = config["cluster"]
        TrainSpec.from_dict(spec)  # a wrong choice fails here, naming the field
        return spec

    def _yields_dataset(self) -> dict[str, Any]:
        # the yields do not depend on the features: before any is ticked, one stands in
        # (not the weights branch, which is never a feature)
        stand_in = None
        if not self.branches.selected:
            weights = self.samples.weights() or {}
            flat = [n for n, k in self.branches.kinds.items() if k == "flat"]
            stand_in = [n for n in flat if n != weights.get("branch")][:1]
        # absolute paths: the server may run in another folder
        return DatasetSpec.from_dict(self.dataset(stand_in), Path.cwd()).to_dict()

    def _export(self) -> None:
        """What Export YAML does; a wrong choice is shown next to Train, not lost."""
        try:
            self.to_yaml(self.yaml_path.value)
        except Exception as err:
            self.model.status.value = (
                f"<span style='color: var(--jp-error-color1)'>{html.escape(str(err))}</span>"
            )

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The spec as YAML; also written to ``path`` when given."""
        text = yaml.safe_dump(self.spec(), sort_keys=False)
        if path:
            Path(path).write_text(text)
            self.model.status.value = f"wrote {path}"
        return text

    def train(self) -> Job:
        """Submit the spec (what Train does) and show its monitor below."""
        config = self.model.model_config()
        # absolute paths: the job may run in another folder (a job kernel, the server)
        spec = TrainSpec.from_dict(self.spec(), Path.cwd()).to_dict()
        self.job = Job.submit(
            spec,
            executor=config["executor"],
            kernel_name=config["kernel_name"],
            client=self.client,
        )
        monitor = TrainingMonitor(self.job)
        self.output.clear_output()
        with self.output:
            from IPython.display import display

            display(monitor)
        return self.job
