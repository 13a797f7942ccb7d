"""64 concurrent async streams, asyncio and trio: connections opened against the pool size.

Each round starts 64 streams at once (OpenAI-style chat completions, the terminator right after
``data: [DONE]``, the consumer stopping at ``[DONE]`` as the SDKs do); rounds follow each other.
httpx's default pool keeps at most 20 idle connections (``max_keepalive_connections``) of 100
(``max_connections``): bare, every stream costs a connection; with our transport, a round reuses
what the pool kept of the last one. A last row raises the keep-alive limit to 64. ``kept``:
drains that ended the body; ``rejected``: closes past ``max_pending`` (16) drains in flight.

    python -m benchmarks.bench_concurrency [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from httpx_drain.testing import openai_chat

from . import _common
from ._servers import ServerProcess

STREAMS = 64
DONE = b"data: [DONE]"


def _flavours() -> list[tuple[str, Any, Any]]:
    import httpx

    import httpx_drain

    out: list[tuple[str, Any, Any]] = [("httpx", httpx, httpx_drain.AsyncDrainTransport)]
    try:
        import httpx2

        import httpx_drain.httpx2 as drain2
    except ImportError:  # pragma: no cover - Python < 3.11
        return out
    out.append(("httpx2", httpx2, drain2.AsyncDrainTransport))
    return out


async def _stream(client: Any, url: str) -> None:
    async with client.stream("POST", url, content=b"{}") as response:
        async for chunk in response.aiter_raw():
            if DONE in chunk:
                break


async def _rounds(lib: Any, transport: Any, url: str, rounds: int) -> float:
    async with lib.AsyncClient(transport=transport, timeout=30) as client:
        started = time.perf_counter()
        for _ in range(rounds):
            async with anyio.create_task_group() as tg:
                for _ in range(STREAMS):
                    tg.start_soon(_stream, client, url)
        return time.perf_counter() - started


def run(flavour: tuple[str, Any, Any], backend: str, kind: str, rounds: int) -> dict[str, Any]:
    name, lib, drain = flavour
    keepalive = 64 if kind == "ours, keep-alive 64" else None
    limits = lib.Limits(max_connections=100, max_keepalive_connections=keepalive or 20)
    with ServerProcess(openai_chat(events=5)) as server:
        inner = lib.AsyncHTTPTransport(limits=limits)
        transport = inner if kind == "bare" else drain(inner)
        elapsed = anyio.run(_rounds, lib, transport, server.url, rounds, backend=backend)
        facts = server.facts()
    row: dict[str, Any] = {
        "flavour": name,
        "backend": backend,
        "client": kind,
        "streams": STREAMS,
        "rounds": rounds,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "connections": facts.connections,
        "requests": facts.requests,
        "ms_per_round": round(elapsed / rounds * 1000, 1),
    }
    if kind != "bare":
        stats = transport.stats.snapshot()
        row["connections_kept"] = stats.connections_kept
        row["drains_rejected"] = stats.drains_rejected
    return row


def measure(rounds: int) -> list[dict[str, Any]]:
    rows = []
    for flavour in _flavours():
        for backend in ("asyncio", "trio"):
            for kind in ("bare", "ours", "ours, keep-alive 64"):
                rows.append(run(flavour, backend, kind, rounds))
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    first = rows[0]
    print(
        f"{first['streams']} concurrent async streams x {first['rounds']} rounds; "
        "pool: max_connections / max_keepalive_connections"
    )
    print(
        f"{'flavour':<7} {'backend':<8} {'client':<20} {'pool':>7} {'conns':>6} {'kept':>5} "
        f"{'rejected':>8} {'ms/round':>9}"
    )
    for r in rows:
        pool = f"{r['max_connections']}/{r['max_keepalive_connections']}"
        print(
            f"{r['flavour']:<7} {r['backend']:<8} {r['client']:<20} {pool:>7} "
            f"{r['connections']:>6} {r.get('connections_kept', '-'):>5} "
            f"{r.get('drains_rejected', '-'):>8} {r['ms_per_round']:>9.1f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rows = measure(args.rounds)
    print_rows(rows)
    _common.write_json(rows, args.json)


if __name__ == "__main__":
    main()
