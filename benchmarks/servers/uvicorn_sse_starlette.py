"""Peer: sse-starlette + Starlette on uvicorn (uvloop event loop, httptools parser)."""

from __future__ import annotations

import socket

import uvicorn
import uvloop

from ._contract import parse_args, report_ready
from ._starlette_app import create_app

_BACKLOG = 4096


async def main(host: str, port: int) -> None:
    """Serve the contract until killed."""
    config = uvicorn.Config(
        create_app(),
        loop="none",
        http="httptools",
        ws="none",
        lifespan="on",
        log_level="warning",
        access_log=False,
        backlog=_BACKLOG,
    )
    # Bind first so the port is known; connections queue in the backlog until
    # uvicorn accepts them a moment later.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    report_ready(sock.getsockname()[1])
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    uvloop.run(main(args.host, args.port))
