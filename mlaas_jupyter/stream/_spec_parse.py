"""Turning a YAML/JSON mapping into a :class:`DatasetSpec`, and back."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from ._validate import (
    as_choice,
    as_float,
    as_int,
    as_mapping,
    as_str,
    as_str_list,
    check_keys,
)

if TYPE_CHECKING:
    from .spec import DatasetSpec

_TOP_LEVEL = [
    "tree",
    "classes",
    "files",
    "label_branch",
    "class_names",
    "target",
    "branches",
    "exclude",
    "new_branches",
    "cuts",
    "jagged",
    "normalisation",
    "normalization",
    "split",
    "seed",
    "weights",
    "balance",
    "nonfinite",
    "step_size",
    "shuffle_buffer",
]


def _resolve(path: str, base_dir: Path | None) -> str:
    if base_dir is None or "://" in path or Path(path).is_absolute():
        return path
    return str(base_dir / path)


def _parse_classes(data: Mapping[str, Any], base_dir: Path | None) -> tuple[Any, ...]:
    from .spec import ClassGroup

    groups: list[ClassGroup] = []
    if "classes" in data:
        if "files" in data:
            raise SpecError("files", "give either classes (one label per group) or files, not both")
        classes = as_mapping("classes", data["classes"])
        if not classes:
            raise SpecError("classes", "at least one group of files is required")
        for label, (name, value) in enumerate(classes.items()):
            where = f"classes.{name}"
            weight = 1.0
            if isinstance(value, Mapping):
                check_keys(where, value, ["files", "weight"])
                if "files" not in value:
                    raise SpecError(f"{where}.files", "missing: list the files of this class")
                files = as_str_list(f"{where}.files", value["files"])
                weight = as_float(f"{where}.weight", value.get("weight", 1.0))
                if weight <= 0:
                    raise SpecError(f"{where}.weight", f"must be > 0, got {weight}")
            else:
                files = as_str_list(where, value)
            resolved = tuple(_resolve(f, base_dir) for f in files)
            groups.append(ClassGroup(str(name), resolved, label, weight))
    elif "files" in data:
        files = as_str_list("files", data["files"])
        groups.append(ClassGroup("all", tuple(_resolve(f, base_dir) for f in files), 0))
    else:
        raise SpecError("classes", "missing: give classes (name -> files) or files + label_branch")
    return tuple(groups)


def parse_spec(
    cls: type[DatasetSpec], data: Mapping[str, Any], base_dir: str | Path | None
) -> DatasetSpec:
    from .spec import JaggedSpec, Split

    data = as_mapping("spec", data)
    check_keys("", data, _TOP_LEVEL)
    base = Path(base_dir) if base_dir is not None else None
    kwargs: dict[str, Any] = {"classes": _parse_classes(data, base)}
    if "files" in data and "label_branch" not in data and "target" not in data:
        raise SpecError("label_branch", "with a plain files list, name the label_branch or target")
    if "tree" in data and data["tree"] is not None:
        kwargs["tree"] = as_str("tree", data["tree"])
    for key in ("branches", "exclude", "cuts", "class_names"):
        if key in data:
            kwargs[key] = as_str_list(key, data[key])
    for key in ("label_branch", "target"):
        if key in data and data[key] is not None:
            kwargs[key] = as_str(key, data[key])
    if "new_branches" in data:
        mapping = as_mapping("new_branches", data["new_branches"])
        kwargs["new_branches"] = tuple(
            (as_str("new_branches", name), as_str(f"new_branches.{name}", expr))
            for name, expr in mapping.items()
        )
    if "jagged" in data:
        jagged = as_mapping("jagged", data["jagged"])
        kwargs["jagged"] = tuple(
            (str(pattern), JaggedSpec.from_dict(f"jagged.{pattern}", settings))
            for pattern, settings in jagged.items()
        )
    norm_key = "normalisation" if "normalisation" in data else "normalization"
    if norm_key in data:
        from .spec import _NORMALISATIONS

        kwargs["normalisation"] = as_choice(norm_key, data[norm_key], _NORMALISATIONS)
    if "split" in data:
        split = as_mapping("split", data["split"])
        check_keys("split", split, ["train", "validation", "test"])
        kwargs["split"] = (
            Split(**{k: as_float(f"split.{k}", v) for k, v in split.items()})
            if set(split) == {"train", "validation", "test"}
            else _partial_split(split)
        )
    if "seed" in data:
        kwargs["seed"] = as_int("seed", data["seed"], minimum=0)
    if "weights" in data:
        weights = as_mapping("weights", data["weights"])
        check_keys("weights", weights, ["branch"])
        kwargs["weight_branch"] = as_str("weights.branch", weights.get("branch"))
    if "balance" in data:
        from .spec import _BALANCES

        kwargs["balance"] = as_choice("balance", data["balance"], _BALANCES)
    if "nonfinite" in data:
        from .spec import _NONFINITE

        kwargs["nonfinite"] = as_choice("nonfinite", data["nonfinite"], _NONFINITE)
    if "step_size" in data:
        step = data["step_size"]
        kwargs["step_size"] = (
            as_int("step_size", step, minimum=1)
            if isinstance(step, int)
            else as_str("step_size", step)
        )
    if "shuffle_buffer" in data:
        kwargs["shuffle_buffer"] = as_int("shuffle_buffer", data["shuffle_buffer"], minimum=0)
    return cls(**kwargs)


def _partial_split(split: Mapping[str, Any]) -> Any:
    """Fill the one missing fraction so that the three add up to one."""
    from .spec import Split

    values = {k: as_float(f"split.{k}", v) for k, v in split.items()}
    missing = [k for k in ("train", "validation", "test") if k not in values]
    if len(missing) == 1:
        values[missing[0]] = max(0.0, 1.0 - sum(values.values()))
    elif missing:
        defaults = dataclasses.asdict(Split())
        for key in missing:
            values[key] = defaults[key]
    return Split(**values)


def spec_to_dict(spec: DatasetSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    plain_files = len(spec.classes) == 1 and spec.classes[0].name == "all"
    if plain_files and spec.classes[0].weight == 1.0:
        out["files"] = list(spec.classes[0].files)
    else:
        out["classes"] = {
            g.name: {"files": list(g.files), "weight": g.weight} for g in spec.classes
        }
    if spec.tree is not None:
        out["tree"] = spec.tree
    for key in ("label_branch", "target"):
        if getattr(spec, key) is not None:
            out[key] = getattr(spec, key)
    if spec.class_names:
        out["class_names"] = list(spec.class_names)
    out["branches"] = list(spec.branches)
    out["exclude"] = list(spec.exclude)
    out["new_branches"] = dict(spec.new_branches)
    out["cuts"] = list(spec.cuts)
    out["jagged"] = {
        pattern: {
            "length": js.length,
            "quantile": js.quantile,
            "sort_by": js.sort_by,
            "descending": js.descending,
            "pad_value": js.pad_value,
            "mask": js.mask,
        }
        for pattern, js in spec.jagged
    }
    for pattern_settings in out["jagged"].values():
        if pattern_settings["sort_by"] is None:
            del pattern_settings["sort_by"]
    out["normalisation"] = spec.normalisation
    out["split"] = dataclasses.asdict(spec.split)
    out["seed"] = spec.seed
    if spec.weight_branch is not None:
        out["weights"] = {"branch": spec.weight_branch}
    out["balance"] = spec.balance
    out["nonfinite"] = spec.nonfinite
    out["step_size"] = spec.step_size
    out["shuffle_buffer"] = spec.shuffle_buffer
    return out
