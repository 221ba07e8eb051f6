"""REST latency of the MLaaS server extension while jobs are training (loopback only).

Starts a real ``jupyter server`` with the extension (a subprocess on a free port of
127.0.0.1, a random token, temporary folders, ``--allow-root``), submits 4 training
jobs on toy data that keep running (local executor, a huge epoch count), then lets
50 concurrent clients (threads with keep-alive ``http.client`` connections) send a
fixed number of ``GET jobs`` and ``GET jobs/{id}/events?since=0`` requests. The jobs
are cancelled and the server stopped at the end. Prints ONE JSON line::

    python benchmarks/server_bench.py                 # 50 clients x 40 requests
    python benchmarks/server_bench.py --requests 10   # quick

Target: p99 < 60 ms for both endpoints (it was 100 ms). The measurement phase stops
after ``--max-seconds`` (20 s) whatever the number of requests done.

Where the tail came from: with 50 clients in flight, any pause of the server's event
loop is added to some 50 requests at once, 2.5% of a run, so the p99 is the median
plus the longest pause. The pauses were the garbage collector's full collections,
30-60 ms each over the ~240,000 objects of a started server (now frozen once it has
started: ``c.MlaasExtension.freeze_gc``), and the SQLite checkpoints that one job-event
commit in a few hundred ran on the loop (5-20 ms of disk syncing; now a thread of the
job store runs them). What remains is the median itself, the server's CPU time per
request times the queue, which grows when other processes share the two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlaas_jupyter.examples import write_example_dataset

API = "/mlaas/api/"
TARGET_P99_MS = 60
PROFILE: list[str] = []  # e.g. ["-m", "cProfile", "-o", "server.prof"] to profile the server
CONFIG = """
c.ServerApp.jpserver_extensions = {{
    "mlaas_jupyter": True, "jupyterlab": False, "notebook_shim": False,
    "jupyter_lsp": False, "jupyter_server_terminals": False,
}}
c.Mlaas.job_store = {store!r}
c.Mlaas.runs_dir = {runs!r}
c.Mlaas.default_executor = "local"
c.Mlaas.max_concurrent_jobs = 4
"""
# Training below the server's priority: the recommended set-up when jobs share the
# server's machine (the local executor takes any interpreter command; nice wraps it).
NICE_CONFIG = """
c.LocalExecutor.python = {wrapper!r}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Api:
    """A keep-alive connection to the server's REST API (one per client thread)."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        self.connection.request(method, API + path, body=data, headers=self.headers)
        response = self.connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


def start_server(folder: Path, port: int, token: str, nice: int) -> subprocess.Popen[bytes]:
    config = CONFIG.format(store=str(folder / "jobs.sqlite"), runs=str(folder / "runs"))
    if nice:
        wrapper = folder / "nice-python"
        # the executor starts each job in a new session, which Linux schedules as its own
        # "autogroup" (fair share against the whole server whatever the nice value):
        # lower the autogroup too, where the kernel has them
        wrapper.write_text(
            "#!/bin/sh\n"
            f"[ -w /proc/$$/autogroup ] && echo {nice} > /proc/$$/autogroup\n"
            f'exec nice -n {nice} "{sys.executable}" "$@"\n'
        )
        wrapper.chmod(0o755)
        config += NICE_CONFIG.format(wrapper=str(wrapper))
    (folder / "config.py").write_text(config)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(folder / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(folder / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(folder / "jupyter-runtime"),
        "MLAAS_CACHE_DIR": str(folder / "cache"),
        "OMP_NUM_THREADS": "1",  # the training workers: one thread each
    }
    command = [
        sys.executable, *PROFILE, "-m", "jupyter_server", "--allow-root", "--no-browser",
        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder / 'root'}",
        f"--config={folder / 'config.py'}",
    ]  # fmt: skip
    log = (folder / "server.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_ready(port: int, token: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if Api(port, token)("GET", "jobs?limit=1")[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer in {timeout} s")


def spec(epochs: int) -> dict[str, Any]:
    return {
        "dataset": {
            "tree": "Events",
            "classes": {"background": ["toy/background_*.root"], "signal": ["toy/signal_*.root"]},
            "branches": ["MET_*", "nJet"],
            "cuts": ["nJet >= 2"],
        },
        "model": {"name": "mlp"},
        "training": {"epochs": epochs, "early_stopping": None, "threads": 1, "batch_size": 256},
    }


class Connection:
    """A lean HTTP/1.1 keep-alive client on asyncio streams (the load generator shares
    the machine with the server: it must cost little CPU)."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"GET {API}{path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: token {self.token}\r\nAccept: application/json\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def client(
    connection: Connection,
    paths: list[str],
    count: int,
    deadline: float,
    out: dict[str, list[float]],
    errors: list[str],
) -> None:
    """One client: ``count`` sequential requests (until ``deadline``), each timed."""
    try:
        for k in range(count):
            if time.monotonic() > deadline:
                return
            path = paths[k % len(paths)]
            started = time.perf_counter()
            status = await connection.get(path)
            elapsed = (time.perf_counter() - started) * 1000.0
            if status != 200:
                errors.append(f"GET {path}: HTTP {status}")
            out["GET jobs" if path == "jobs" else "GET jobs/{id}/events?since=0"].append(elapsed)
    except (OSError, asyncio.IncompleteReadError, ValueError) as err:
        errors.append(f"{type(err).__name__}: {err}")
    finally:
        connection.close()


async def measure(
    port: int, token: str, paths: list[str], clients: int, count: int, seconds: float
) -> tuple[dict[str, list[float]], list[str], float]:
    """``clients`` concurrent clients, each alternating the endpoints from its own offset."""
    samples: dict[str, list[float]] = {"GET jobs": [], "GET jobs/{id}/events?since=0": []}
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    tasks = []
    for i in range(clients):
        mine = paths[i % len(paths) :] + paths[: i % len(paths)]
        work = client(Connection(port, token), mine, count, deadline, samples, errors)
        tasks.append(work)
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    return samples, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument(
        "--nice", type=int, default=19, help="niceness of the training workers (0: as the server)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlaas-server-bench-") as tmp:
        folder = Path(tmp)
        write_example_dataset(folder / "root" / "toy", events_per_file=5000, files_per_class=1)
        port, token = free_port(), secrets.token_hex(16)
        server = start_server(folder, port, token, args.nice)
        api = Api(port, token)
        job_ids: list[str] = []
        try:
            wait_ready(port, token, server, 30.0)
            for _ in range(args.jobs):
                status, job = api("POST", "jobs", {"spec": spec(100_000), "name": "bench"})
                if status != 201:
                    raise RuntimeError(f"submit: HTTP {status}: {job}")
                job_ids.append(job["id"])
            deadline = time.monotonic() + 30.0  # the jobs are training (an epoch is done)
            while time.monotonic() < deadline:
                events = [api("GET", f"jobs/{j}/events?since=0")[1]["events"] for j in job_ids]
                if all(any(e["type"] == "epoch" for e in ev) for ev in events):
                    break
                time.sleep(0.5)
            paths = [p for j in job_ids for p in ("jobs", f"jobs/{j}/events?since=0")]
            # the load generator's own pauses would count as the server's latency: its
            # collector (some 75,000 objects: uproot, numpy...) waits for the end
            gc.collect()
            gc.disable()
            try:
                samples, errors, seconds = asyncio.run(
                    measure(port, token, paths, args.clients, args.requests, args.max_seconds)
                )
            finally:
                gc.enable()
            running = sum(api("GET", f"jobs/{j}")[1]["state"] == "running" for j in job_ids)
            events_total = sum(api("GET", f"jobs/{j}")[1]["events"] for j in job_ids)
        finally:
            for job_id in job_ids:
                with contextlib.suppress(Exception):
                    Api(port, token)("POST", f"jobs/{job_id}/cancel")
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        done = sum(len(v) for v in samples.values())
        result = {
            "benchmark": "server_rest_latency",
            "clients": args.clients,
            "requests": done,
            "seconds": round(seconds, 3),
            "requests_per_s": round(done / seconds, 1),
            "jobs_running_during": running,
            "workers_nice": args.nice,
            "job_events_stored": events_total,
            "cpus": os.cpu_count(),
            "endpoints": {
                key: {
                    "n": len(values),
                    "p50_ms": round(statistics.median(values), 2),
                    "p99_ms": round(percentile(values, 99), 2),
                    "max_ms": round(max(values), 2),
                }
                for key, values in sorted(samples.items())
            },
            "errors": len(errors),
            "target_p99_ms": TARGET_P99_MS,
        }
        met = all(v["p99_ms"] < TARGET_P99_MS for v in result["endpoints"].values())
        result["target_met"] = met
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
