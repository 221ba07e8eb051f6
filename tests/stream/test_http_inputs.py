"""Remote files that web servers serve wrongly, as a user meets them: a server that
ignores HTTP range requests (``python -m http.server``), one asking for credentials
(401) or refusing them (403), no such file (404), a redirect (followed: to a good server
it reads, to a bad one the message says where it led), a server that closes the
connection in the middle of a reply, one that never answers, and none listening.

Each case goes through ``mlaas inspect URL``, ``mlaas stats``, ``stream`` and ``train``
of a spec naming the URL, ``mlaas predict BUNDLE URL``, and ``GET trees`` and ``GET
branches`` of the URL on a standalone ``mlaas serve`` that allows remote URLs:
one line naming the URL and what is wrong, exit status 2 or HTTP 400, no traceback, no
hang (every command has a time limit), and no statistics cached as if they had been
computed. The servers are real, on loopback, each in a thread (tests/http_servers.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import pytest
import skhep_testdata
import yaml
from http_servers import RangeHandler, StalledHandler, StatusHandler, serving, static_handler
from toy_bundles import write_example_bundle

from mlaas_jupyter.errors import SourceError
from mlaas_jupyter.stream.sources import open_tree

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from standalone_helpers import Server, isolated_env, serve

#: seconds a command may take before the case counts as a hang
LIMIT_S = 180
#: the read timeout given to every command (MLAAS_HTTP_TIMEOUT), so a stalled server
#: fails fast
STALL_S = "2"

#: each case: the URL's name in the ``web`` fixture, and what its one line says
FAILURES = {
    "ignores ranges": "the web server does not honour HTTP range requests (asked for "
    "bytes 0-63, it sent the whole file: HTTP 200, not 206 Partial Content); ROOT files "
    "are read in byte ranges: download the file",
    "asks for credentials": "the server asks for credentials (HTTP 401 Unauthorized): put "
    "them in the URL",
    "refuses credentials": "the server refuses to send the file (HTTP 403 Forbidden)",
    "no such file": "no such file at this URL (HTTP 404 Not Found); check the address",
    "redirects to a server ignoring ranges": "the web server does not honour HTTP range "
    "requests (asked for bytes 0-63, it sent the whole file: HTTP 200, not 206 Partial "
    "Content) (the URL redirects to {plain}/hzz.root)",
    "drops the connection": "cannot open as a ROOT file (the server closed the connection "
    "after 300 of 403 bytes of a read; try again, or download the file",
    "never answers": f"no answer from the server within {STALL_S} s",
    "is not listening": "cannot reach the server (Cannot connect to host",
}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The URL of each case (and ``"good"``, ``"redirects to a good server"``), while
    MLAAS_HTTP_TIMEOUT is set for the commands and the server started here."""
    folder = tmp_path_factory.mktemp("served")
    shutil.copy(skhep_testdata.data_path("uproot-HZZ.root"), folder / "hzz.root")
    released = threading.Event()

    def status(code: int, location: str | None = None) -> str:
        handler = type(f"Status{code}", (StatusHandler,), {"status": code, "location": location})
        return stack.enter_context(serving(handler))

    with ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLAAS_HTTP_TIMEOUT", STALL_S)
        stack.callback(released.set)  # first out: the stalled handler lets go
        good = stack.enter_context(serving(type("Good", (RangeHandler,), {"folder": folder})))
        plain = stack.enter_context(serving(static_handler(folder)))
        cut = {"folder": folder, "cut_after": 300}  # the probe's 64 bytes pass
        dropping = stack.enter_context(serving(type("Dropping", (RangeHandler,), cut)))
        stalled = stack.enter_context(
            serving(type("Stalled", (StalledHandler,), {"released": released}))
        )
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
        yield {
            "good": f"{good}/hzz.root",
            "plain": plain,
            "ignores ranges": f"{plain}/hzz.root",
            "asks for credentials": f"{status(401)}/hzz.root",
            "refuses credentials": f"{status(403)}/hzz.root",
            "no such file": f"{good}/missing.root",
            "redirects to a good server": f"{status(302, f'{good}/hzz.root')}/hzz.root",
            "redirects to a server ignoring ranges": f"{status(302, f'{plain}/hzz.root')}/a.root",
            "drops the connection": f"{dropping}/hzz.root",
            "never answers": f"{stalled}/hzz.root",
            "is not listening": f"{closed}/hzz.root",
        }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, web: dict[str, str]) -> Iterator[Server]:
    """``mlaas serve`` allowing remote URLs (a server under Jupyter refuses them by
    default; the standalone one inherits that)."""
    config = {"Mlaas": {"allow_remote_urls": True}}
    with serve(tmp_path_factory.mktemp("serve"), config=config) as running:
        yield running


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_bundle(tmp_path_factory.mktemp("bundle"))


def expected(web: dict[str, str], case: str) -> str:
    return FAILURES[case].format(plain=web["plain"])


def mlaas(*argv: str, cache: Path) -> subprocess.CompletedProcess[str]:
    """``python -m mlaas_jupyter ARGV`` with its cache in ``cache``, under the limit."""
    env = {**isolated_env(cache.parent), "MLAAS_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "mlaas_jupyter", *argv]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=LIMIT_S)


def one_error_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    """The single line a failed command printed (exit status 2, nothing on stdout)."""
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"mlaas {command}: error: ")
    return lines[0]


def stats_spec(folder: Path, url: str) -> Path:
    spec = {
        "tree": "events",
        "classes": {"signal": [url], "background": [skhep_testdata.data_path("uproot-HZZ.root")]},
        "branches": ["MET_px", "MET_py", "NMuon"],
        "split": {"train": 0.8, "validation": 0.1, "test": 0.1},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FAILURES))
def test_every_command_says_what_the_server_does_wrong(
    case: str, web: dict[str, str], bundle: Path, tmp_path: Path
) -> None:
    url, cache = web[case], tmp_path / "cache"
    line = one_error_line(mlaas("inspect", url, cache=cache), "inspect")
    assert line.startswith(f"mlaas inspect: error: {url}: {expected(web, case)}"), line

    spec = stats_spec(tmp_path, url)
    line = one_error_line(mlaas("stats", str(spec), cache=cache), "stats")
    assert f"{url}: {expected(web, case)}" in line, line
    written = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert written == []  # no statistics cached as if computed
    line = one_error_line(mlaas("stream", str(spec), "--limit", "10", cache=cache), "stream")
    assert f"{url}: {expected(web, case)}" in line, line

    training = {"dataset": yaml.safe_load(spec.read_text()), "model": {"name": "mlp"}}
    spec.write_text(yaml.safe_dump({**training, "training": {"epochs": 1}}))
    run_dir = tmp_path / "run"
    done = mlaas("train", str(spec), "--run-dir", str(run_dir), cache=cache)
    line = one_error_line(done, "train")
    assert f"{url}: {expected(web, case)}" in line, line
    assert not (run_dir / "bundle").exists()

    predict = ("predict", str(bundle), url, "--tree", "events", "--json")
    line = one_error_line(mlaas(*predict, cache=cache), "predict")
    assert line.startswith(f"mlaas predict: error: {url}: {expected(web, case)}"), line


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FAILURES))
def test_rest_trees_say_what_the_server_does_wrong(
    case: str, web: dict[str, str], server: Server
) -> None:
    url = quote(web[case], safe="")
    for route in (f"trees?path={url}", f"branches?path={url}&tree=events"):
        status, _, body = server.call("GET", route)
        assert status == 400, body
        assert body["error"] == "Bad Request"
        assert body["detail"].startswith(f"{web[case]}: {expected(web, case)}"), body
        assert "\n" not in body["detail"]


@pytest.mark.slow
def test_a_redirect_to_a_server_honouring_ranges_is_followed(
    web: dict[str, str], server: Server, tmp_path: Path
) -> None:
    url, cache = web["redirects to a good server"], tmp_path / "cache"
    done = mlaas("inspect", url, cache=cache)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.splitlines()[0] == f"{url}  TTree 'events': 2421 entries, 51 branches"

    done = mlaas("stats", "--json", str(stats_spec(tmp_path, url)), cache=cache)
    assert done.returncode == 0, done.stderr
    assert '"signal"' in done.stdout

    status, _, body = server.call("GET", f"trees?path={quote(url, safe='')}")
    assert (status, body["trees"], body["formats"]) == (200, ["events"], {"events": "TTree"})


def test_credentials_given_as_the_401_message_says_are_used(tmp_path: Path) -> None:
    """The two ways the message offers: the token in the URL, and fsspec's headers from
    the environment (read by a new process, as ``mlaas`` is)."""
    shutil.copy(skhep_testdata.data_path("uproot-HZZ.root"), tmp_path / "hzz.root")
    handler = type("Private", (RangeHandler,), {"folder": tmp_path, "token": "s3cret"})
    cache = tmp_path / "cache"
    with serving(handler) as base:
        url = f"{base}/hzz.root"
        assert "(HTTP 401 Unauthorized)" in one_error_line(
            mlaas("inspect", url, cache=cache), "inspect"
        )
        with_token = url.replace("http://", "http://physicist:s3cret@")
        done = mlaas("inspect", with_token, cache=cache)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FSSPEC_HTTP", json.dumps({"headers": {"Authorization": "Bearer s3cret"}}))
            done = mlaas("inspect", url, cache=cache)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert "TTree 'events': 2421 entries" in done.stdout


class _RangeEndIgnored(RangeHandler):
    """Answers ``Range: bytes=A-B`` as if it were ``bytes=A-`` (206, the rest of the file)."""

    def do_GET(self) -> None:
        self.headers.replace_header("Range", self.headers["Range"].split("-")[0] + "-")
        super().do_GET()


def test_a_range_answered_with_other_bytes_is_named(tmp_path: Path) -> None:
    shutil.copy(skhep_testdata.data_path("uproot-HZZ.root"), tmp_path / "hzz.root")
    handler = type("EndIgnored", (_RangeEndIgnored,), {"folder": tmp_path})
    with serving(handler) as base, pytest.raises(SourceError) as caught:
        open_tree(f"{base}/hzz.root")
    assert str(caught.value) == (
        f"{base}/hzz.root: the web server does not honour HTTP range requests as ROOT files "
        "need (asked for bytes 0-63, it sent more than 64); download the file (curl -O URL) "
        "and give its local path, serve it with a server that honours ranges (nginx, Apache, "
        "XRootD; python -m http.server does not), or read it over root://"
    )


def test_a_server_refusing_remote_urls_says_how_to_allow_them(
    tmp_path: Path, web: dict[str, str]
) -> None:
    from mlaas_jupyter.core.browse import tree_names
    from mlaas_jupyter.core.paths import DataRoots
    from mlaas_jupyter.errors import PathRefused

    with pytest.raises(PathRefused, match=re.escape("c.Mlaas.allow_remote_urls = True")):
        tree_names(DataRoots([str(tmp_path)]), web["good"])
    reply = tree_names(DataRoots([str(tmp_path)], allow_remote=True), web["good"])
    assert reply["trees"] == ["events"]


def test_a_connection_dropped_while_reading_baskets_is_not_called_damage(
    tmp_path: Path,
) -> None:
    """The header and the tree's metadata come whole, the baskets are cut: the error
    names the entries (and branch) and says the network failed, not the file."""
    shutil.copy(skhep_testdata.data_path("uproot-HZZ.root"), tmp_path / "hzz.root")
    handler = type("Cut", (RangeHandler,), {"folder": tmp_path, "cut_after": 5000})
    with serving(handler) as base:
        source = open_tree(f"{base}/hzz.root")
        try:
            assert source.entries == 2421
            with pytest.raises(SourceError) as caught:
                list(source.iterate(["Jet_Px", "MET_px"], 1000))
        finally:
            source.close()
    message = str(caught.value)
    assert re.match(
        rf"{re.escape(base)}/hzz.root: cannot read (branch '\w+' in )?entries 0-1000 of tree "
        r"'events': the connection to the web server failed in the middle of a read \(\w+\); "
        "try again, or download the file",
        message,
    ), message
    assert "damaged" not in message


def test_http_timeout_is_read_from_the_environment() -> None:
    code = "from mlaas_jupyter.stream._http_probe import TIMEOUT_S; print(TIMEOUT_S)"
    env = {**os.environ, "MLAAS_HTTP_TIMEOUT": "7"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "7.0", done.stderr
