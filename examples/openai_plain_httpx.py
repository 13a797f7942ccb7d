"""openai still accepts a plain httpx.Client: use httpx_drain.DrainTransport then."""

from __future__ import annotations

import httpx
import openai

from httpx_drain import DrainTransport
from httpx_drain.testing import RawServer, openai_chat

with RawServer(openai_chat(events=3)) as server:
    client = openai.OpenAI(
        base_url=server.url + "/v1",
        api_key="sk-example",
        http_client=httpx.Client(transport=DrainTransport()),
    )
    with client:
        for _ in range(5):
            for _chunk in client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                pass
    print(f"5 streams over {server.facts.connection_count} connection(s)")
    assert server.facts.connection_count == 1
