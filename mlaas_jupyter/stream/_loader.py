"""Entry point of the loader process (see :mod:`._process`): ``python -m`` runs this."""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import sys

from ._process import _serve


def main(fd: int) -> None:
    # the training loop comes first: the loader only needs what is left of the cores
    with contextlib.suppress(OSError):
        os.nice(int(os.environ.get("MLAAS_LOADER_NICE", "5")))
    conn = multiprocessing.connection.Connection(fd)
    with contextlib.suppress(EOFError, OSError):  # the parent went away
        _serve(conn, conn.recv())


if __name__ == "__main__":
    main(int(sys.argv[1]))
