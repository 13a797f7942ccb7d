"""openai (sync) over httpx2 with the draining transport: N streams, one connection."""

from __future__ import annotations

import openai

from httpx_drain.httpx2 import DrainTransport
from httpx_drain.testing import RawServer, openai_chat

with RawServer(openai_chat(events=3)) as server:  # a local stand-in for the API
    transport = DrainTransport()
    client = openai.OpenAI(
        base_url=server.url + "/v1",
        api_key="sk-example",
        http_client=openai.DefaultHttpxClient(transport=transport),
    )
    with client:
        for _ in range(5):
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Say hello"}],
                stream=True,
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    print(f"{text!r}: 5 streams over {server.facts.connection_count} connection(s)")
    assert server.facts.connection_count == 1
