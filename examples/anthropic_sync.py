"""anthropic reads every stream to EOF: with us, EOF comes at message_stop.

The server below holds each chunked terminator back for 1 s. Bare, every request would wait
for it; with the transport the stream ends at `message_stop` and the terminator is drained in
the background, so the connection is still reused.
"""

from __future__ import annotations

import time

import anthropic

from httpx_drain.httpx2 import DrainTransport
from httpx_drain.testing import RawServer, anthropic_messages

with RawServer(anthropic_messages(events=3, terminator_delay=1.0)) as server:
    transport = DrainTransport()
    client = anthropic.Anthropic(
        base_url=server.url,
        api_key="sk-ant-example",
        http_client=anthropic.DefaultHttpxClient(transport=transport),
    )
    with client:
        started = time.perf_counter()
        with client.messages.stream(
            model="claude-example",
            max_tokens=64,
            messages=[{"role": "user", "content": "Say hello"}],
        ) as stream:
            text = "".join(stream.text_stream)
        elapsed = time.perf_counter() - started
    print(f"{text!r} in {elapsed * 1000:.0f} ms (the terminator came 1000 ms after the last event)")
