"""openai (async) over httpx2: runs on asyncio; AsyncDrainTransport works on trio too."""

from __future__ import annotations

import asyncio

import openai

from httpx_drain.httpx2 import AsyncDrainTransport
from httpx_drain.testing import RawServer, openai_chat


async def main(url: str) -> None:
    client = openai.AsyncOpenAI(
        base_url=url + "/v1",
        api_key="sk-example",
        http_client=openai.DefaultAsyncHttpxClient(transport=AsyncDrainTransport()),
    )
    async with client:
        for _ in range(5):
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Say hello"}],
                stream=True,
            )
            async for _chunk in stream:
                pass


with RawServer(openai_chat(events=3)) as server:
    asyncio.run(main(server.url))
    print(f"5 streams over {server.facts.connection_count} connection(s)")
    assert server.facts.connection_count == 1
