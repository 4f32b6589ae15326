"""Peer: sse-starlette + Starlette on Hypercorn's trio worker."""

from __future__ import annotations

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from ._contract import parse_args, report_ready
from ._starlette_app import create_app


async def main(host: str, port: int) -> None:
    """Serve the contract until killed."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.backlog = 4096
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(serve, create_app(), config)
        report_ready(int(binds[0].rsplit(":", 1)[1]))


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    trio.run(main, args.host, args.port)
