"""Paths outside the data roots are refused with 403, however they are dressed up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from web_helpers import toy_spec, wait_for

from mlaas_jupyter.core.paths import DataRoots, PathRefused
from mlaas_jupyter.specs.training import TrainSpec

TRICKS = [
    "..",
    "../outside/secret.root",
    "toy/../../outside/secret.root",
    "toy\\..\\..\\outside\\secret.root",
    "%2e%2e/outside/secret.root",
    "%2E%2E%2Foutside%2Fsecret.root",
    "%252e%252e/outside/secret.root",
    "toy/signal_0.root\x00.csv",
    "toy/signal_0.root%00",
    "~/secret.root",
]


@pytest.fixture
def link_out(toy_dir: Path, outside_dir: Path) -> Path:
    """``toy/link.root`` -> a file outside the root; ``toy/door`` -> the outside folder."""
    (toy_dir / "link.root").symlink_to(outside_dir / "secret.root")
    (toy_dir / "door").symlink_to(outside_dir, target_is_directory=True)
    return toy_dir / "link.root"


@pytest.mark.parametrize("trick", TRICKS)
async def test_browsing_refuses_tricks(api: Any, outside_dir: Path, trick: str) -> None:
    for endpoint in ("files", "trees", "branches"):
        status, reply = await api(endpoint, params={"path": trick})
        assert status == 403, (endpoint, trick, reply)
        assert reply["error"] == "Forbidden"
        assert reply["detail"]


async def test_absolute_paths(api: Any, outside_dir: Path, toy_dir: Path) -> None:
    for path in (str(outside_dir / "secret.root"), "/etc/passwd", "/", "file:///etc/passwd"):
        status, reply = await api("trees", params={"path": path})
        assert status == 403, (path, reply)
        assert "outside the data roots" in reply["detail"]
    status, reply = await api("trees", params={"path": str(toy_dir / "signal_0.root")})
    assert status == 200
    assert reply["path"] == "toy/signal_0.root"
    status, reply = await api("trees", params={"path": "root://eos.cern.ch//x.root"})
    assert status == 403
    assert "remote URLs" in reply["detail"]


async def test_symlinks_out_are_refused_and_hidden(api: Any, link_out: Path) -> None:
    status, reply = await api("trees", params={"path": "toy/link.root"})
    assert status == 403
    assert "symlink" in reply["detail"]
    status, reply = await api("files", params={"path": "toy/door"})
    assert status == 403
    status, reply = await api("trees", params={"path": "toy/door/secret.root"})
    assert status == 403
    status, listing = await api("files", params={"path": "toy"})
    names = {e["name"] for e in listing["entries"]}
    assert "link.root" not in names
    assert "door" not in names


async def test_raw_urls_with_encoded_dots(
    http_server_client: Any, jp_auth_header: dict[str, str]
) -> None:
    # sent byte for byte: the client must not normalise these
    base = "/a%40b/mlaas/api/"
    for query in ("path=%252e%252e%252foutside", "path=toy%2f..%2f..%2foutside", "path=a%00b"):
        response = await http_server_client.fetch(
            base + "files?" + query, headers=jp_auth_header, raise_error=False
        )
        assert response.code == 403, (query, response.body)
    response = await http_server_client.fetch(
        base + "files?path=%ff%fe", headers=jp_auth_header, raise_error=False
    )
    assert response.code in (400, 404), response.body


async def test_specs_outside_roots_are_refused(api: Any, outside_dir: Path, link_out: Path) -> None:
    outside_file = str(outside_dir / "secret.root")
    for files in (["../outside/*.root"], [outside_file], ["toy/link.root"], ["toy/*.root"]):
        spec = toy_spec()
        spec["dataset"]["classes"]["signal"] = files
        status, reply = await api("jobs", method="POST", body={"spec": spec})
        assert status == 403, (files, reply)
    spec = toy_spec()
    spec["model"] = {"file": outside_file}
    status, reply = await api("jobs", method="POST", body={"spec": spec})
    assert status == 403
    assert "outside the data roots" in reply["detail"]
    status, reply = await api("jobs", method="POST", body={"spec_path": "../outside/x.yaml"})
    assert status == 403
    request = {"classes": {"s": ["toy/door/*.root"]}, "branch": "MET_pt"}
    status, reply = await api("histograms", method="POST", body=request)
    assert status == 403
    status, listing = await api("jobs")
    assert listing["jobs"] == []


async def test_artefact_traversal(
    api: Any, http_server_client: Any, jp_auth_header: dict[str, str]
) -> None:
    _status, job = await api("jobs", method="POST", body={"spec": toy_spec(), "name": "ok"})
    await wait_for(api, job["id"], ("succeeded",))
    run_dir = Path(job["run_dir"])
    (run_dir / "plots" / "out.png").symlink_to("/etc/hostname")
    base = f"/a%40b/mlaas/api/jobs/{job['id']}/artefacts/"
    for tail in ("../../jobs.sqlite", "..%2f..%2fjobs.sqlite", "%2e%2e/x", "/etc/passwd",
                 "%2fetc%2fpasswd", "plots/out.png", "plots/%00", "%252e%252e/x"):  # fmt: skip
        response = await http_server_client.fetch(
            base + tail, headers=jp_auth_header, raise_error=False
        )
        assert response.code == 403, (tail, response.body)


def test_data_roots_unit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.root").write_bytes(b"root")
    roots = DataRoots([str(root), str(tmp_path / "second")])
    assert roots.resolve("sub/a.root") == str(root / "sub" / "a.root")
    assert roots.resolve(str(tmp_path / "second" / "x")) == str(tmp_path / "second" / "x")
    assert roots.display(str(root / "sub")) == "sub"
    for bad in ("sub/../../x", str(tmp_path), "a\x00b", "%2e%2e", "https://x/y.root"):
        with pytest.raises(PathRefused):
            roots.resolve(bad)
    assert DataRoots([str(root)], allow_remote=True).check_pattern("root://x//a.root")
    os.symlink(tmp_path, root / "up")
    with pytest.raises(PathRefused, match="symlink"):
        roots.check_pattern("up/*")
    spec = toy_spec()
    spec["dataset"]["classes"] = {"b": ["sub/a.root"], "s": ["up/*"]}
    with pytest.raises(PathRefused):
        roots.check_spec(TrainSpec.from_dict(spec, base_dir=root))
