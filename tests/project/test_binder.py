"""binder/ installs what pyproject.toml declares, and the notebooks need nothing else."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
BINDER_EXTRAS = ("torch", "keras", "tutorials")


def _key(text: str) -> tuple[str, str]:
    requirement = Requirement(text)
    name = re.sub(r"[-_.]+", "-", requirement.name).lower()
    return name, str(requirement.specifier)


def declared() -> set[tuple[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = [*project["dependencies"], *(r for e in BINDER_EXTRAS for r in extras[e])]
    return {_key(r) for r in requirements}


def binder_requirements() -> set[tuple[str, str]]:
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    return {_key(line) for line in lines if line.strip() and not line.startswith(("#", "-"))}


def test_binder_names_the_same_dependencies_as_pyproject() -> None:
    assert binder_requirements() == declared()


def test_binder_installs_the_project_and_prepares_data() -> None:
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps ." in post_build
    assert "write_example_dataset" in post_build
    assert (ROOT / "binder" / "start").stat().st_mode & 0o111


def _imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def notebook_imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        if lines and lines[0].startswith("%%writefile") and lines[0].endswith(".py"):
            lines = lines[1:]  # a model file the notebook writes: its imports count too
        elif lines and lines[0].startswith("%%"):
            continue
        code = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
        code = re.sub(r"^(\w+) = %.*$", r"\1 = None", code, flags=re.M)
        modules |= _imports(code)
    return modules


NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_the_tutorials_are_numbered_without_gaps() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_are_declared(path: Path) -> None:
    providers = importlib.metadata.packages_distributions()
    names = {name for name, _ in declared()} | {"mlaas-jupyter"}
    missing = []
    for module in sorted(notebook_imports(path)):
        if module in sys.stdlib_module_names or module == "mlaas_jupyter":
            continue
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(module, [])}
        if not dists & names:
            missing.append(f"{module} (from {sorted(dists) or 'nothing installed'})")
    assert missing == [], f"{path.name} imports modules no declared dependency provides"
