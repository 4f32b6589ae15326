"""Lesson: when the client goes away, the model stops - and you still know the cost.

``ChatRelay`` serves an OpenAI-compatible ``/v1/chat/completions`` from any
upstream (here the embedded ``LocalTokenSource``: no network, no weights; an
``OpenAIUpstream("http://host/v1")`` works the same). Each answer runs in the
response's nursery; a watcher sees the client disconnect and cancels it at
once, which closes the upstream request. Every answer ends with a
``GenerationResult``: status, tokens delivered, usage, time to first token.

Run:  python examples/llm_relay_cancel.py --port 8000
      curl -N localhost:8000/v1/chat/completions -d '{"stream": true, "messages":
        [{"role": "user", "content": "hi"}]}'      (press Ctrl-C half-way)
Test: python examples/llm_relay_cancel.py --port 0 --self-test
"""

from __future__ import annotations

import argparse
import contextlib
import json
from functools import partial

import trio

from trio_stream import ChatRelay, GenerationResult, LocalTokenSource, open_event_source, serve

REQUEST = {
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [{"role": "user", "content": "Why stream tokens?"}],
}


async def ask(url: str, stop_after: int | None) -> str:
    text = ""
    # POST with a JSON body: what EventSource cannot do. One answer, so no
    # reconnect when the server ends the body.
    async with open_event_source(
        f"{url}/v1/chat/completions", method="POST", json=REQUEST, reconnect_on_close=False
    ) as source:
        async for event in source:
            if event.data == "[DONE]":
                break
            chunk = json.loads(event.data)
            for choice in chunk["choices"]:
                text += choice["delta"].get("content") or ""
            if stop_after is not None and len(text.split()) >= stop_after:
                break  # leaving the block closes the connection: a Stop button
    return text


def show(result: GenerationResult) -> None:
    usage = result.usage.as_dict() if result.usage else None
    print(
        f"  answer {result.id[:8]}: status={result.status} "
        f"delivered_tokens={result.delivered_tokens} usage={usage}"
    )


async def self_test(url: str, results: trio.MemoryReceiveChannel[GenerationResult]) -> None:
    full = await ask(url, stop_after=None)
    print("full answer:", full[:60], "...")
    finished = await results.receive()
    assert finished.status == "finished", finished.status
    assert finished.usage is not None  # the upstream reported usage at the end

    partial_text = await ask(url, stop_after=5)
    print("stopped after:", repr(partial_text))
    # The relay's on_result fires when the server has cancelled the answer.
    cancelled = await results.receive()
    assert cancelled.status == "cancelled", cancelled.status
    assert 0 < cancelled.delivered_tokens < finished.delivered_tokens
    print(
        f"self-test ok: the stopped answer was cancelled upstream after "
        f"{cancelled.delivered_tokens} of {finished.delivered_tokens} tokens"
    )


async def main(args: argparse.Namespace) -> None:
    # A bounded channel for the results: send_nowait never blocks the relay,
    # and when nobody reads (serving forever) old results are not kept.
    send_result, results = trio.open_memory_channel[GenerationResult](16)

    def on_result(result: GenerationResult) -> None:
        show(result)  # billing and metrics hook: called once per answer
        with contextlib.suppress(trio.WouldBlock):  # nobody collects them: drop
            send_result.send_nowait(result)

    source = LocalTokenSource(tokens_per_second=100.0 if args.self_test else 20.0)
    relay = ChatRelay(source, on_result=on_result, keepalive_interval=15.0)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve, relay.app(), host=args.host, port=args.port))
        print(f"OpenAI-compatible endpoint on {url}/v1/chat/completions")
        if args.self_test:
            with trio.fail_after(20):  # a safety bound, not a wait
                await self_test(url, results)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--self-test", action="store_true", help="ask twice, then exit")
    try:
        trio.run(main, parser.parse_args())
    except* KeyboardInterrupt:  # Ctrl-C: the nurseries have cleaned up on the way out
        print("stopped")
