"""Remote sources: a ROOT file served over HTTP on loopback, read through uproot."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import uproot

from mlaas_jupyter.errors import SourceError
from mlaas_jupyter.stream import DatasetSpec, compute_stats, open_tree, resolve_files
from mlaas_jupyter.stream.cache import file_identity


class _RangeHandler(BaseHTTPRequestHandler):
    """Serves files of one folder with HTTP Range support (what uproot needs)."""

    folder: Path

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, head_only: bool) -> None:
        path = self.folder / self.path.lstrip("/").split("?")[0]
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            stop = int(match.group(2)) + 1 if match.group(2) else len(data)
            body = data[start:stop]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(head_only=False)

    def do_HEAD(self) -> None:
        self._send(head_only=True)


@pytest.fixture
def http_folder(tmp_path: Path, hzz_path: str) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copy(hzz_path, folder / "hzz.root")
    (folder / "text.root").write_text("not a ROOT file at all\n")
    handler = type("Handler", (_RangeHandler,), {"folder": folder})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


def test_http_file_reads_the_same_values(http_folder: tuple[str, Path], hzz_path: str) -> None:
    url, _ = http_folder
    source = open_tree(f"{url}/hzz.root")
    try:
        assert (source.name, source.entries) == ("events", 2421)
        assert source.branches["Muon_Px"].kind == "jagged"
        chunks = list(source.iterate(["NMuon", "MET_px"], 1000))
    finally:
        source.close()
    assert [c.entries for c in chunks] == [1000, 1000, 421]
    local = uproot.open(hzz_path)["events"].arrays(["NMuon", "MET_px"], library="np")
    np.testing.assert_array_equal(
        np.concatenate([c.columns["MET_px"] for c in chunks]), local["MET_px"]
    )


def test_remote_urls_pass_through_resolution_and_identity(http_folder: tuple[str, Path]) -> None:
    url, _ = http_folder
    assert resolve_files([f"{url}/hzz.root"]) == [f"{url}/hzz.root"]
    assert file_identity(f"{url}/hzz.root") == [f"{url}/hzz.root"]


def test_stats_over_http(http_folder: tuple[str, Path], tmp_path: Path, hzz_path: str) -> None:
    url, _ = http_folder
    spec = DatasetSpec.from_dict(
        {
            "files": [f"{url}/hzz.root"],
            "tree": "events",
            "target": "MET_px",
            "branches": ["NMuon", "MET_py"],
            "split": {"train": 1.0, "validation": 0.0, "test": 0.0},
        }
    )
    stats = compute_stats(spec, cache=tmp_path / "cache")
    expected = uproot.open(hzz_path)["events"]["MET_py"].array(library="np")
    assert stats.features["MET_py"].count == 2421
    assert stats.features["MET_py"].mean == pytest.approx(float(expected.mean()), rel=1e-6)


def test_remote_errors_name_the_url(http_folder: tuple[str, Path]) -> None:
    url, _ = http_folder
    with pytest.raises(SourceError, match=re.escape(f"{url}/missing.root")):
        open_tree(f"{url}/missing.root")
    with pytest.raises(SourceError, match=re.escape(f"{url}/text.root")):
        open_tree(f"{url}/text.root")
