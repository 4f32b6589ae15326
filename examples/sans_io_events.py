"""Lesson: the protocol layer is pure.

`Event` and the encoders do no I/O and need no event loop, so the wire format
can be produced, inspected and tested with plain synchronous code. The trio
layers only move these bytes.

Run: python examples/sans_io_events.py
"""

from __future__ import annotations

from trio_stream import Event, encode_comment, encode_preamble


def main() -> None:
    # The first bytes of a stream: a comment flushes the response headers
    # through proxies at once; `retry:` sets the client's reconnection delay.
    print(encode_preamble(retry=2000, comment="stream open"))
    # Events are validated when built and encoded once, whatever the fan-out.
    tick = Event.json({"symbol": "TRIO", "price": 101.5}, event="tick", id="1")
    print(tick.encode())
    # Multi-line data becomes several `data:` lines; a reader joins them with LF.
    print(Event("first line\r\nsecond line").encode())
    # Keepalives are comments: clients ignore them, proxies see traffic.
    print(encode_comment("keepalive"))
    try:
        Event("x", event="tick\ndata: injected")
    except ValueError as exc:
        print("rejected:", exc)


if __name__ == "__main__":
    main()
