"""Per-chunk cost in instructions, which a machine shared with other work cannot blur.

The per-chunk CPU times of ``bench_overhead`` scatter by ±10 % on a busy machine, more than
the 3-5 % being measured. This counts the instructions the client executes instead, with
valgrind's cachegrind: the same in-memory-stream source as ``bench_overhead`` (httpx's or
httpx2's own transport, httpcore's pool and h11's chunk parsing over ``MockBackend``), read
once with ``N1`` and once with ``N2`` 1 KiB chunks; the difference divided by ``N2 - N1``
cancels start-up and imports. The hash seed is fixed, so a count repeats exactly, for one
installation: moved to another directory, the same code counts up to 1 % more or less,
because the paths' lengths change the allocator's state after start-up, and the scanner's
1 KiB copy takes glibc's slow path (above its 1032-byte per-thread cache), whose cost depends
on that state. So each count is also made with that cache raised to 4 KiB
(``GLIBC_TUNABLES=glibc.malloc.tcache_max=4096``), which takes most of that spread away
(about 200 instructions a chunk remain): the figure to compare between versions of the code.
Needs ``valgrind`` on PATH (skipped, saying so, without it); about 20 s a count pair.

The same way, per request (:func:`measure_requests`): the openai sync SDK's streams on
loopback TCP, bare at D = 0 and ours in background mode at D = 0 and D = 50 ms, each counted
over ``REQUESTS[1] - REQUESTS[0]`` requests. Under valgrind a request takes about twenty times
as long, so the server's D is stretched to :data:`TRAIL` requests (what D = 50 ms is at 2.5
ms a request, the bare SDK's time on loopback here), and the drains' deadline with it: as
many drains are pending at once as at D = 50 ms natively, the pool holds as many
connections, and the count is what the time target's ratio is made of, less the machine's
drift (a native time would bring it back in). So is the time after which the watcher thread
takes over from requests. The kernel's work is not counted: the bare SDK's connect and close
are mostly that, so the ratio leans against us.

    python -m benchmarks.bench_instructions [--json out.json]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any

from httpx_drain import DEFAULT_BACKGROUND_DEADLINE
from httpx_drain.testing import openai_chat

from . import _common

SIZES = (1024, 5120)
CLIENTS = ("bare", "ours, scanning off", "ours, scanning on")
#: The allocator settings each per-chunk count is made with (extra environment variables).
ALLOCATORS: dict[str, dict[str, str]] = {
    "default": {},
    "tcache 4 KiB": {"GLIBC_TUNABLES": "glibc.malloc.tcache_max=4096"},
}


def _child(flavour: str, client: str, chunks: int) -> None:
    """Read ``chunks`` events through one client (run under valgrind by :func:`measure`)."""
    from . import bench_overhead as overhead

    for name, lib, core, drain in overhead._flavours():
        if name != flavour:
            continue
        inner = overhead._parse_transport(lib, core, overhead._reads(chunks))
        transport = inner if client == "bare" else drain(inner, sse=client.endswith("on"))
        with lib.Client(transport=transport) as c:
            n = overhead._read_all(c, "http://bench.invalid/")
        if n != chunks * overhead.CHUNK:
            raise SystemExit(f"read {n} bytes, expected {chunks * overhead.CHUNK}")


def _instructions(flavour: str, client: str, chunks: int, allocator: str) -> int:
    return _count(["--child", flavour, client, str(chunks)], ALLOCATORS[allocator])[0]


def _count(args: list[str], extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    """Instructions this module's ``main(args)`` executes under cachegrind, and its stderr."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.bench_instructions",
        *args,
    ]
    # A fixed hash seed: with a random one, set and dict layouts (and so the counts) move by a
    # few hundred instructions a chunk from run to run, as much as the margins being measured.
    env = {**os.environ, "PYTHONHASHSEED": "0", **(extra_env or {})}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    match = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{result.stderr}")
    return int(match.group(1).replace(",", "")), result.stderr


#: Requests after the warm-up in the two runs whose difference is counted, per client.
REQUESTS = (20, 120)
#: Requests before those: the SDK builds its models, and the pool fills at D = 50 ms.
WARM_UP = 30
#: The D of the time target (seconds), and how many requests it lasts: at 2.5 ms a request.
DELAY = 0.05
TRAIL = 20


def _request_child(url: str, kind: str, requests: int, stretch: float) -> None:
    """``WARM_UP`` then ``requests`` streams through one openai client (under valgrind), the
    drains' times stretched ``stretch`` times."""
    import openai

    from httpx_drain import _background

    from ._common import sdk_client
    from .bench_modes import chat

    # Requests are ~50 ms apart under valgrind: unstretched, the watcher would take the
    # transport for quiet between any two and end the drains that requests end natively.
    _background._QUIET *= stretch
    transport = {} if kind == "bare" else {"deadline": DEFAULT_BACKGROUND_DEADLINE * stretch}
    client = sdk_client(openai, url, kind, **transport)
    with client:
        for _ in range(WARM_UP):
            chat(client)
        started = time.perf_counter()
        for _ in range(requests):
            chat(client)
        seconds = (time.perf_counter() - started) / requests
        print(f"seconds per request: {seconds}", file=sys.stderr)


def measure_requests() -> list[dict[str, Any]]:
    """Instructions per openai request: bare at D = 0, ours at D = 0 and at D = 50 ms
    (stretched to :data:`TRAIL` requests under valgrind); [] without valgrind."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts")
        return []
    from . import bench_modes
    from ._servers import ServerProcess

    rows: list[dict[str, Any]] = []
    with bench_modes._server(0.0, None) as server:
        per_request, slow, connections = _per_request(server, "bare", 1.0)
        rows.append(_request_row("bare", 0.0, 0.0, per_request, connections))
        per_request, _slow, connections = _per_request(server, "background", 1.0)
        rows.append(_request_row("background", 0.0, 0.0, per_request, connections))
    stretched = TRAIL * slow
    stretch = stretched / DELAY
    with ServerProcess(openai_chat(events=5, terminator_delay=stretched)) as server:
        per_request, _slow, connections = _per_request(server, "background", stretch)
        rows.append(_request_row("background", DELAY, stretched, per_request, connections))
    bare = rows[0]["instructions_per_request"]
    for row in rows:
        row["ratio"] = round(row["instructions_per_request"] / bare, 4)
        row["stretch"] = round(stretch, 1)
    return rows


def _per_request(server: Any, kind: str, stretch: float) -> tuple[float, float, int]:
    """Instructions per request of ``kind`` against ``server``, seconds a request took under
    valgrind, and the connections the server saw in the longer run."""
    small, large = REQUESTS
    counts, slow = [], 0.0
    for n in REQUESTS:
        before = server.facts().connections
        count, stderr = _count(["--requests", server.url, kind, str(n), str(stretch)])
        connections = server.facts().connections - before
        counts.append(count)
        match = re.search(r"seconds per request: ([\d.e-]+)", stderr)
        slow = float(match.group(1)) if match else 0.0
    return (counts[1] - counts[0]) / (large - small), slow, connections


def _request_row(
    kind: str, delay: float, stretched: float, per_request: float, connections: int
) -> dict[str, Any]:
    return {
        "client": kind,
        "delay_ms": delay * 1000,
        "valgrind_delay_ms": round(stretched * 1000, 1),
        "instructions_per_request": round(per_request),
        "connections": connections,
        "run_requests": WARM_UP + REQUESTS[1],
    }


def measure() -> list[dict[str, Any]]:
    """Instructions per chunk of each client, per flavour; [] without valgrind."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts")
        return []
    from . import bench_overhead as overhead

    rows: list[dict[str, Any]] = []
    small, large = SIZES
    for allocator in ALLOCATORS:
        for flavour, *_ in overhead._flavours():
            per_chunk = {}
            for client in CLIENTS:
                counts = [_instructions(flavour, client, n, allocator) for n in SIZES]
                per_chunk[client] = (counts[1] - counts[0]) / (large - small)
            bare = per_chunk["bare"]
            for client, value in per_chunk.items():
                rows.append(
                    {
                        "allocator": allocator,
                        "flavour": flavour,
                        "client": client,
                        "instructions_per_chunk": round(value),
                        "extra_per_chunk": round(value - bare),
                        "ratio": round(value / bare, 4),
                    }
                )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print("Per-chunk instructions (cachegrind), 1 KiB chunks, in-memory stream")
    print(
        f"{'allocator':<12} {'flavour':<7} {'client':<19} {'instr/chunk':>11} {'extra':>7} "
        f"{'ratio':>7}"
    )
    for r in rows:
        print(
            f"{r['allocator']:<12} {r['flavour']:<7} {r['client']:<19} "
            f"{r['instructions_per_chunk']:>11} {r['extra_per_chunk']:>7} {r['ratio']:>7.3f}"
        )


def print_request_rows(rows: list[dict[str, Any]]) -> None:
    print(
        "Per-request instructions (cachegrind), openai sync SDK, loopback TCP, "
        f"D stretched {rows[0]['stretch']:g}x to {TRAIL} requests under valgrind"
    )
    print(f"{'client':<11} {'D (ms)':>6} {'run at':>8} {'instr/request':>13} {'ratio':>6} conns")
    for r in rows:
        print(
            f"{r['client']:<11} {r['delay_ms']:>6g} {r['valgrind_delay_ms']:>8g} "
            f"{r['instructions_per_request']:>13} {r['ratio']:>6.3f} {r['connections']:>5}"
        )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        _child(args[1], args[2], int(args[3]))
        return
    if args[:1] == ["--requests"]:
        _request_child(args[1], args[2], int(args[3]), float(args[4]))
        return
    parser = _common.parser(__doc__)
    options = parser.parse_args(args)
    rows = measure()
    if rows:
        print_rows(rows)
    request_rows = measure_requests()
    if request_rows:
        print_request_rows(request_rows)
    _common.write_json({"chunks": rows, "requests": request_rows}, options.json)


if __name__ == "__main__":
    main()
