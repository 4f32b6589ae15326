"""Stream-level SSE lines that are not events: comments and the ``retry:`` preamble."""

from __future__ import annotations

__all__ = ["encode_comment", "encode_preamble"]


def encode_comment(text: str = "") -> bytes:
    """Encode an SSE comment (``: text``), one comment line per line of ``text``.

    Clients ignore comments; servers send them as keepalives so that proxies
    and load balancers do not close an idle stream, and once at the start of a
    response so that the headers are flushed at once.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(f": {line}\n" if line else ":\n" for line in text.split("\n")).encode()


def encode_preamble(retry: int | None = None, comment: str = "") -> bytes:
    """The first bytes of a stream: a comment (flushes headers) and an optional ``retry:``.

    ``retry`` is the client's reconnection delay in milliseconds. The trailing
    blank line ends the block; as it carries no data, no event is dispatched.
    """
    if retry is not None and (isinstance(retry, bool) or not isinstance(retry, int) or retry < 0):
        raise ValueError("retry must be a non-negative int (milliseconds)")
    out = encode_comment(comment)
    if retry is not None:
        out += b"retry: %d\n" % retry
    return out + b"\n"
