"""``TrainingStudio``: branches, cuts and model in one panel, then Train."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w
import yaml

from ...client import Client
from ...client._job import Job
from ...specs.training import TrainSpec
from ._branches import BranchSelector
from ._cuts import CutEditor
from ._models import ModelPicker
from ._monitor import TrainingMonitor

__all__ = ["TrainingStudio"]


class TrainingStudio(w.VBox):  # type: ignore[misc]
    """Choose branches, cuts and a model visually; export the choice as YAML; train.

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
        self.model = ModelPicker(on_train=lambda _: self.train())
        self.client = client
        self.job: Job | None = None
        self.yaml_path = w.Text(value="train.yaml", description="export to")
        self.export_button = w.Button(description="Export YAML", icon="download")
        self.export_button.on_click(lambda _: self.to_yaml(self.yaml_path.value))
        self.output = w.Output()
        tabs = w.Tab([self.branches, self.cuts, self.model])
        for index, title in enumerate(("1. branches", "2. cuts", "3. model")):
            tabs.set_title(index, title)
        super().__init__([tabs, w.HBox([self.yaml_path, self.export_button]), self.output])

    def spec(self) -> dict[str, Any]:
        """The chosen TrainSpec as a mapping (checked by ``TrainSpec.from_dict``)."""
        config = self.model.model_config()
        dataset = self.branches.to_spec(self.classes)
        cuts = self.cuts.to_spec()
        dataset.update(new_branches=cuts["new_branches"], cuts=cuts["cuts"], split=config["split"])
        spec = {"dataset": dataset, "model": config["model"], "training": config["training"]}
        TrainSpec.from_dict(spec)  # a wrong choice fails here, naming the field
        return spec

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
