"""Plain httpx and httpx2 clients, sync and async."""

from __future__ import annotations

import asyncio

import httpx

from httpx_drain import AsyncDrainTransport, DrainTransport
from httpx_drain.testing import RawServer, openai_chat


def read_until_done(client: httpx.Client, url: str) -> None:
    with client.stream("GET", url) as response:
        for line in response.iter_lines():
            if line == "data: [DONE]":
                break  # what the SDKs do: stop at the last event, close at once


async def aread_until_done(client: httpx.AsyncClient, url: str) -> None:
    async with client.stream("GET", url) as response:
        async for line in response.aiter_lines():
            if line == "data: [DONE]":
                break


async def main(url: str) -> None:
    async with httpx.AsyncClient(transport=AsyncDrainTransport()) as client:
        for _ in range(3):
            await aread_until_done(client, url)


with RawServer(openai_chat(events=3)) as server:
    with httpx.Client(transport=DrainTransport()) as client:
        for _ in range(3):
            read_until_done(client, server.url)
    asyncio.run(main(server.url))
    print(f"6 streams over {server.facts.connection_count} connection(s)")
    assert server.facts.connection_count == 2  # one per client
