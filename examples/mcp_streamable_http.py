"""The mcp streamable-HTTP client over httpx2 with the draining transport.

mcp 2.x takes an ``httpx2.AsyncClient``: give it one with ``AsyncDrainTransport``. The server
here is a local MCPServer app served by the replay package's hypercorn server.
"""

from __future__ import annotations

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer

from httpx_drain.httpx2 import AsyncDrainTransport
from httpx_drain.testing import AsyncHypercornServer

server = MCPServer("example")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def client(url: str) -> None:
    http_client = httpx2.AsyncClient(transport=AsyncDrainTransport(), follow_redirects=True)
    async with (
        http_client,
        streamable_http_client(url, http_client=http_client) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for i in range(3):
            result = await session.call_tool("add", {"a": i, "b": 1})
            print("add ->", result.content[0].text)  # type: ignore[union-attr]


async def main() -> None:
    app = server.streamable_http_app()
    # The app's session manager needs its lifespan; run it around the local server.
    async with server.session_manager.run(), AsyncHypercornServer(app=app) as http:
        await client(http.url + "/mcp")
        print(f"3 calls over {http.facts.connection_count} connection(s)")


anyio.run(main)
