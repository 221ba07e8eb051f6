"""Throughput and latency of ``mlaas serve`` on loopback (REST predictions).

Builds a 28-feature MLP bundle by hand (28 -> 64 -> 64 -> 1, ONNX, standardised flat
inputs; no training needed) in ``benchmarks/.cache/serve``, starts ``mlaas serve`` in a
subprocess on a free port of 127.0.0.1, then measures

(a) single-row requests (``{"rows": [{...28 features...}]}``) from ``--clients``
    concurrent clients on keep-alive connections: requests/s, p50 and p99 latency;
(b) batch requests of ``--batch-rows`` rows (predictions/s, p50), as
    * ``batch_predictions_per_s``, ``batch_p50_ms``, ``batch_json_mb``: JSON in the
      columns form (``{"columns": {"f0": [...], ...}}``)
      with the float32 features written at float32 precision (the shortest text that
      reads back as the same float32, as ``orjson`` or NumPy-aware encoders write
      them): what a batch client sends when it posts JSON. JSON reply.
    * ``batch_json_f64text_*``: the same columns with every float32 written as the
      float64 it widens to (17 significant digits, ``json.dumps(array.tolist())``):
      twice the bytes for no information.
    * ``batch_json_rows_*``: the rows form (feature names repeated in every row).
    * ``batch_arrow_*``: the columns form as an Arrow IPC stream, Arrow reply.

The load generator is asyncio with raw keep-alive sockets and pre-encoded requests, in
this process: it shares the machine's cores with the server (on a 2-core machine it
takes a good part of one). Every phase is bounded by ``--requests`` and
``--max-seconds``. Prints ONE JSON line::

    python benchmarks/serve_bench.py            # 50 clients, 20 s at most per phase
    python benchmarks/serve_bench.py --quick

Targets on a 2-core machine: >= 1000 single-row requests/s (50 clients), and >= 500k
batched predictions/s (``batch_predictions_per_s``: JSON columns, float32 text). Large
JSON bodies of flat columns are read by simdjson straight into number buffers
(``json_parser``); parsers that make a Python float of each number (orjson, json) spend
70-100 ns per number, 280k numbers in a 10k-row request, and stop near 150k/s here.
The rows form always goes that way (``batch_json_rows_*``); Arrow is the binary form.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlaas_jupyter.inference import payload

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "serve"
WIDTH = 28
NAME = "bench-mlp"
ARROW = "application/vnd.apache.arrow.stream"
OPT_NUMPY = payload.orjson.OPT_SERIALIZE_NUMPY if payload.orjson is not None else 0


def build_bundle(folder: Path) -> Path:
    """A 28-feature MLP bundle (manifest + ONNX), written once."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from mlaas_jupyter.train.bundle import BUNDLE_FORMAT

    if (folder / "manifest.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    sizes = [WIDTH, 64, 64, 1]
    nodes, weights, last = [], {}, "x"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        weights[f"w{i}"] = rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32)
        weights[f"b{i}"] = np.zeros(b, dtype=np.float32)
        nodes += [
            helper.make_node("MatMul", [last, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
        ]
        last = f"a{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [last], [f"r{i}"]))
            last = f"r{i}"
    weights["shape"] = np.array([-1], dtype=np.int64)
    nodes += [
        helper.make_node("Sigmoid", [last], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", WIDTH])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    features = [
        {"name": f"f{i}", "kind": "flat", "offset": i, "width": 1, "shift": 0.1 * i, "scale": 0.9}
        for i in range(WIDTH)
    ]
    manifest = {
        "bundle_format": BUNDLE_FORMAT,
        "name": NAME,
        "created": "2026-01-01T00:00:00Z",
        "task": "binary",
        "classes": ["background", "signal"],
        "tree": "Events",
        "inputs": {f"f{i}": "flat" for i in range(WIDTH)},
        "new_branches": [],
        "layout": {"normalisation": "standard", "width": WIDTH, "features": features},
        "backend": "torch",
        "onnx": "model.onnx",
        "metrics": {},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def start_server(models: Path, bundle: Path, token: str) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, MLAAS_TOKEN=token, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "mlaas_jupyter", "serve", "--models", str(models)]
    command += ["--port", "0", "--register", str(bundle)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "/mlaas/api/" in line:
            port = int(line.rsplit(":", 1)[1].split("/")[0])
            return process, port
    process.kill()
    raise RuntimeError("mlaas serve did not start")


def request(port: int, token: str, path: str, body: bytes, arrow: bool = False) -> bytes:
    kind = ARROW if arrow else "application/json"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: token {token}\r\n"
        f"Content-Type: {kind}\r\nAccept: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def arrow_body(data: np.ndarray[Any, Any]) -> bytes:
    """The columns form as an Arrow IPC stream (one float32 column per feature)."""
    import pyarrow as pa

    batch = pa.record_batch({f"f{i}": data[i] for i in range(len(data))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def _float32_text(values: np.ndarray[Any, Any]) -> str:
    """A float32 array as a JSON list, each number at float32 precision (NumPy's str of
    a float32 is the shortest text that reads back as the same float32)."""
    return "[" + ",".join(map(str, values)) + "]"


def columns_json(data: np.ndarray[Any, Any]) -> bytes:
    """The columns form, numbers at float32 precision (orjson's text when installed)."""
    columns = {f"f{i}": data[i] for i in range(len(data))}
    if payload.orjson is not None:
        return bytes(payload.orjson.dumps({"columns": columns}, option=OPT_NUMPY))
    parts = [f'"{name}":{_float32_text(values)}' for name, values in columns.items()]
    return ('{"columns":{' + ",".join(parts) + "}}").encode()


def rows_json(data: np.ndarray[Any, Any]) -> bytes:
    """The rows form, numbers at float32 precision."""
    names = [f"f{i}" for i in range(len(data))]
    rows = [dict(zip(names, row, strict=True)) for row in data.T]
    if payload.orjson is not None:
        return bytes(payload.orjson.dumps({"rows": rows}, option=OPT_NUMPY))
    text = ("{" + ",".join(f'"{k}":{v!s}' for k, v in row.items()) + "}" for row in rows)
    return ('{"rows":[' + ",".join(text) + "]}").encode()


def count_scores(body: bytes, arrow: bool) -> int:
    if not arrow:
        return len(json.loads(body)["scores"])
    import pyarrow as pa

    return int(pa.ipc.open_stream(pa.py_buffer(body)).read_all().num_rows)


def batch_phase(port: int, message: bytes, args: argparse.Namespace, arrow: bool) -> dict[str, Any]:
    asyncio.run(load(port, message, 1, 2, 30.0))  # warm-up
    lat, elapsed, body = asyncio.run(
        load(port, message, args.batch_clients, args.batch_requests, args.max_seconds)
    )
    assert count_scores(body, arrow) == args.batch_rows
    return {
        "requests": len(lat),
        "predictions_per_s": round(len(lat) * args.batch_rows / elapsed),
        "p50_ms": round(float(np.percentile(np.array(lat) * 1000, 50)), 1),
    }


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def load(
    port: int, payload: bytes, clients: int, total: int, seconds: float
) -> tuple[list[float], float, bytes]:
    """``total`` requests over ``clients`` keep-alive connections (or ``seconds``)."""
    latencies: list[float] = []
    remaining = [total]
    last = [b""]
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        try:
            while remaining[0] > 0 and time.perf_counter() < deadline:
                remaining[0] -= 1
                start = time.perf_counter()
                writer.write(payload)
                status, body = await read_response(reader)
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
                last[0] = body
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, time.perf_counter() - start, last[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20000, help="single-row requests")
    parser.add_argument("--batch-rows", type=int, default=10000)
    parser.add_argument("--batch-requests", type=int, default=60)
    parser.add_argument("--batch-clients", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--quick", action="store_true", help="2000 requests, 10 batches")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.batch_requests, args.max_seconds = 2000, 10, 10.0
    bundle = build_bundle(CACHE / "bundle")
    models = CACHE / f"models-{os.getpid()}"
    token = secrets.token_urlsafe(16)
    process, port = start_server(models, bundle, token)
    try:
        rng = np.random.default_rng(0)
        path = f"/mlaas/api/models/{NAME}/predict"
        row = {f"f{i}": float(v) for i, v in enumerate(rng.normal(size=WIDTH).astype(np.float32))}
        single = request(port, token, path, json.dumps({"rows": [row]}).encode())
        data = rng.normal(size=(WIDTH, args.batch_rows)).astype(np.float32)
        bodies = {
            "batch_json": columns_json(data),
            "batch_json_f64text": json.dumps(
                {"columns": {f"f{i}": data[i].tolist() for i in range(WIDTH)}}
            ).encode(),
            "batch_json_rows": rows_json(data),
        }
        asyncio.run(load(port, single, args.clients, 500, 5.0))  # warm-up
        lat, elapsed, body = asyncio.run(
            load(port, single, args.clients, args.requests, args.max_seconds)
        )
        assert len(json.loads(body)["scores"]) == 1
        lat_ms = np.array(lat) * 1000
        result: dict[str, Any] = {
            "cores": os.cpu_count(),
            "clients": args.clients,
            "single_row_requests": len(lat),
            "single_row_rps": round(len(lat) / elapsed),
            "p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
            "p99_ms": round(float(np.percentile(lat_ms, 99)), 2),
            "batch_rows": args.batch_rows,
        }
        for key, batch_body in bodies.items():
            measured = batch_phase(port, request(port, token, path, batch_body), args, False)
            short = "batch" if key == "batch_json" else key  # the headline keeps its name
            result[f"{key}_mb"] = round(len(batch_body) / 1e6, 2)
            result[f"{short}_predictions_per_s"] = measured["predictions_per_s"]
            result[f"{short}_p50_ms"] = measured["p50_ms"]
        arrow_message = request(port, token, path, arrow_body(data), arrow=True)
        arrow_batch = batch_phase(port, arrow_message, args, arrow=True)
        result["batch_arrow_predictions_per_s"] = arrow_batch["predictions_per_s"]
        result["batch_arrow_p50_ms"] = arrow_batch["p50_ms"]
        result["json_parser"] = "+".join(
            name
            for name, present in (
                ("simdjson", payload.simdjson is not None),
                ("orjson", payload.HAVE_ORJSON),
                ("json", True),
            )
            if present
        )
        result["note"] = "load generator in the same machine (shares the cores with the server)"
        print(json.dumps(result))
    finally:
        process.terminate()
        process.wait(30)
        import shutil

        shutil.rmtree(models, ignore_errors=True)


if __name__ == "__main__":
    main()
