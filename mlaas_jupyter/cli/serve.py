"""``mlaas serve``: serve the models of a registry folder over HTTP (no Jupyter needed).

::

    mlaas serve --models ~/models --port 8765 --register runs/job-1/bundle
    curl -H "Authorization: token $MLAAS_TOKEN" -d '{"rows": [{...}]}' \\
        http://127.0.0.1:8765/mlaas/api/models/higgs-mlp/predict

The token is ``--token``, else ``$MLAAS_TOKEN``, else a random one printed at start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mlaas serve``."""
    parser.add_argument("--models", required=True, metavar="DIR", help="registry folder")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--token", help="API token (default: $MLAAS_TOKEN, else random)")
    parser.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="BUNDLE",
        help="register this bundle folder first (repeatable)",
    )
    parser.add_argument("--max-delay-ms", type=float, default=2.0, help="micro-batching window")
    parser.add_argument("--max-batch", type=int, default=4096, help="rows of one model call")
    parser.add_argument("--workers", type=int, default=2, help="threads running the models")
    parser.add_argument("--max-cached", type=int, default=4, help="models kept loaded")
    parser.add_argument("--verbose", action="store_true", help="log every request")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (SIGINT or SIGTERM)."""
    from ..web.standalone import bind, make_context, new_token, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.INFO if args.verbose else logging.WARNING)
    context = make_context(
        args.models,
        max_cached=args.max_cached,
        max_batch=args.max_batch,
        max_delay_ms=args.max_delay_ms,
        workers=args.workers,
    )
    for bundle in args.register:
        info = context.registry.register(bundle)
        print(f"registered {bundle} as {info.name!r} version {info.version}", flush=True)
    token = args.token or os.environ.get("MLAAS_TOKEN") or ""
    generated = not token
    token = token or new_token()
    sockets = bind(args.host, args.port)
    port = sockets[0].getsockname()[1]
    names = context.registry.names()
    print(
        f"mlaas serve: {len(names)} model(s) from {context.registry.directory} "
        f"at http://{args.host}:{port}/mlaas/api/",
        flush=True,
    )
    if generated:
        print(f"token: {token}", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(context, token, sockets, stop)

    asyncio.run(main())
    print("mlaas serve: stopped", file=sys.stderr)
    return 0
