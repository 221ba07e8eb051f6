"""A rank of a data-parallel training (the rank's side of :mod:`._ddp_process`):
``python -m mlaas_jupyter.train._ddp_rank FD`` runs this.

It meets the other ranks (rank 0 hosts a ``torch.distributed.TCPStore`` and its
supervisor tells the others where), agrees with them on the devices (NCCL when every
rank has a GPU of its own, else gloo on the CPU), trains (:mod:`._ddp_fit`) and sends
its result or its error. A thread watches the socket to the supervisor: when it closes
(the supervisor died) or says stop, the rank exits at once.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import traceback
from typing import Any

from ..errors import MlaasError, TrainingError
from ._ddp_process import pack_error

EXIT_STOPPED = 3  # the supervisor went away or said stop


def _watch(conn: Any, finished: threading.Event) -> None:
    """Exit when the supervisor says stop or goes away (unless the rank has finished)."""
    with contextlib.suppress(EOFError, OSError):
        while conn.recv()[0] != "stop":
            pass
    if not finished.is_set():
        os._exit(EXIT_STOPPED)


def _rendezvous(conn: Any, arguments: dict[str, Any]) -> Any:
    """The store all ranks meet at: rank 0 starts it on a free port and tells its
    supervisor, which tells the other ranks' supervisors."""
    import torch.distributed as dist

    rank, world = arguments["rank"], arguments["world"]
    timeout = datetime.timedelta(seconds=arguments["timeout"])
    if rank == 0:
        store = dist.TCPStore(
            arguments["store_host"], 0, world, is_master=True, timeout=timeout,
            wait_for_workers=False,
        )  # fmt: skip
        conn.send(("store", store.port))
        return store
    message = conn.recv()
    if message[0] == "stop":
        os._exit(EXIT_STOPPED)
    if message[0] != "store":
        raise TrainingError(f"data-parallel rank {rank}: unexpected message {message[0]!r}")
    return dist.TCPStore(message[1], int(message[2]), world, is_master=False, timeout=timeout)


def _devices(store: Any, arguments: dict[str, Any]) -> tuple[str, str]:
    """``(device, process group backend)``: each rank's own GPU and NCCL when every rank
    has one (two ranks on one GPU do not count), else the CPU and gloo."""
    import torch

    rank, world = arguments["rank"], arguments["world"]
    requested = arguments["spec_device"]
    mine, index = "", 0
    if requested != "cpu" and torch.cuda.is_available():
        index = arguments["local_rank"]
        if index < torch.cuda.device_count():
            properties = torch.cuda.get_device_properties(index)
            mine = f"{socket.gethostname()}/{getattr(properties, 'uuid', index)}"
    store.set(f"gpu/{rank}", mine)
    gpus = [store.get(f"gpu/{r}").decode() for r in range(world)]
    if all(gpus) and len(set(gpus)) == world:
        torch.cuda.set_device(index)
        return f"cuda:{index}", "nccl"
    if requested == "cuda":
        have = len({g for g in gpus if g})
        raise TrainingError(
            f"training.device is cuda, but the {world} ranks have {have} GPU(s) of their "
            "own: use device: auto (gloo on the CPU), or as many workers as GPUs"
        )
    return "cpu", "gloo"


def _run(conn: Any, arguments: dict[str, Any], finished: threading.Event) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    # one thread per rank unless asked: ranks sharing a machine must not oversubscribe it
    torch.set_num_threads(arguments["threads"])
    store = _rendezvous(conn, arguments)
    threading.Thread(target=_watch, args=(conn, finished), daemon=True).start()
    device, backend = _devices(store, arguments)
    dist.init_process_group(
        backend,
        store=store,
        rank=arguments["rank"],
        world_size=arguments["world"],
        timeout=datetime.timedelta(seconds=arguments["timeout"]),
    )
    from ._ddp_fit import run_rank

    return run_rank(arguments, device, backend, lambda event: conn.send(("event", event)))


def main(fd: int) -> int:
    # a terminal's Ctrl-C reaches the whole process group: the supervisor decides
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = multiprocessing.connection.Connection(fd)
    try:
        arguments = conn.recv()
    except (EOFError, OSError):
        return EXIT_STOPPED
    finished = threading.Event()
    code = 0
    try:
        result = _run(conn, arguments, finished)
        finished.set()
        conn.send(("result", result))
    except BaseException as error:
        finished.set()
        if not isinstance(error, MlaasError):
            traceback.print_exc()
        with contextlib.suppress(OSError):
            conn.send(pack_error(error, traceback.format_exc()))
        code = 1
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
    return code


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
