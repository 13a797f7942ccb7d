"""What one pending background drain costs: Python memory (tracemalloc), RSS, threads, tasks.

The server (child process) never sends the terminator, so every drain stays pending; the
transport's ``max_pending`` is raised to N so none is refused. The figures are the differences
between before the N requests and with the N drains pending, divided by N. A sync drain also
holds a worker thread (its stack is mapped lazily: RSS counts the pages touched).

    python -m benchmarks.bench_memory [--drains 64] [--json out.json]
"""

from __future__ import annotations

import gc
import os
import threading
import tracemalloc
from typing import Any

import anyio

from httpx_drain.testing import openai_chat

from . import _common
from ._servers import ServerProcess

NEVER = 3600.0
DONE = b"data: [DONE]"


def _rss() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return 0


def _measure() -> tuple[int, int, int]:
    gc.collect()
    return tracemalloc.get_traced_memory()[0], _rss(), threading.active_count()


def _sync_requests(lib: Any, transport: Any, url: str, n: int) -> None:
    client = lib.Client(transport=transport, timeout=30)
    for _ in range(n):
        with client.stream("POST", url, content=b"{}") as response:
            for chunk in response.iter_raw():
                if DONE in chunk:
                    break


async def _async_requests(lib: Any, transport: Any, url: str, n: int) -> None:
    client = lib.AsyncClient(transport=transport, timeout=30)
    for _ in range(n):
        async with client.stream("POST", url, content=b"{}") as response:
            async for chunk in response.aiter_raw():
                if DONE in chunk:
                    break


def _task_count() -> int:
    try:
        import asyncio

        return len(asyncio.all_tasks())
    except RuntimeError:
        import trio

        root = trio.lowlevel.current_root_task()
        assert root is not None
        return sum(len(nursery.child_tasks) for nursery in root.child_nurseries)


def run_sync(lib: Any, drain: Any, server: ServerProcess, n: int) -> dict[str, Any]:
    url = server.url
    # Warm up module caches with a throwaway transport (its one drain ends in 50 ms).
    warm = drain(deadline=0.05)
    _sync_requests(lib, warm, url, 1)
    warm.close()
    transport = drain(deadline=NEVER, max_pending=n)
    mem0, rss0, threads0 = _measure()
    _sync_requests(lib, transport, url, n)
    mem1, rss1, threads1 = _measure()
    pending = transport.stats.drains_started - transport.stats.drains_rejected
    # Stopping the server ends the pending drains (the connections are reset).
    server.stop()
    transport.close()
    return {
        "runtime": "sync",
        "pending": pending,
        "bytes_per_drain": (mem1 - mem0) // n,
        "rss_per_drain": (rss1 - rss0) // n,
        "threads": threads1 - threads0,
        "tasks": 0,
    }


def run_async(lib: Any, drain: Any, server: ServerProcess, n: int, backend: str) -> dict[str, Any]:
    url = server.url

    async def main() -> dict[str, Any]:
        warm = drain(deadline=0.05)
        await _async_requests(lib, warm, url, 1)
        await warm.aclose()
        transport = drain(deadline=NEVER, max_pending=n)
        mem0, rss0, threads0 = _measure()
        tasks0 = _task_count()
        await _async_requests(lib, transport, url, n)
        mem1, rss1, threads1 = _measure()
        tasks1 = _task_count()
        pending = transport.stats.drains_started - transport.stats.drains_rejected
        # Stopping the server ends the pending drains (the connections are reset).
        server.stop()
        await transport.aclose()
        return {
            "runtime": backend,
            "pending": pending,
            "bytes_per_drain": (mem1 - mem0) // n,
            "rss_per_drain": (rss1 - rss0) // n,
            "threads": threads1 - threads0,
            "tasks": tasks1 - tasks0,
        }

    return anyio.run(main, backend=backend)


def measure(drains: int) -> list[dict[str, Any]]:
    import httpx2

    import httpx_drain.httpx2 as drain2

    rows = []
    tracemalloc.start()
    try:
        for runtime in ("sync", "asyncio", "trio"):
            with ServerProcess(openai_chat(events=5, terminator_delay=NEVER)) as server:
                if runtime == "sync":
                    row = run_sync(httpx2, drain2.DrainTransport, server, drains)
                else:
                    row = run_async(httpx2, drain2.AsyncDrainTransport, server, drains, runtime)
            row["drains"] = drains
            rows.append(row)
    finally:
        tracemalloc.stop()
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"Pending background drains (httpx2), {rows[0]['drains']} held by a silent server")
    print(
        f"{'runtime':<8} {'pending':>7} {'KiB/drain':>10} {'RSS KiB/drain':>14} "
        f"{'threads':>8} {'tasks':>6}"
    )
    for r in rows:
        print(
            f"{r['runtime']:<8} {r['pending']:>7} {r['bytes_per_drain'] / 1024:>10.1f} "
            f"{r['rss_per_drain'] / 1024:>14.1f} {r['threads']:>8} {r['tasks']:>6}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--drains", type=int, default=64)
    args = parser.parse_args(argv)
    rows = measure(args.drains)
    print_rows(rows)
    _common.write_json(rows, args.json)


if __name__ == "__main__":
    main()
