"""Per-chunk CPU cost of the wrapper on a large body, against bare httpx and bare httpx2.

A 64 MiB chunked body in 1 KiB chunks (each chunk one 1 KiB SSE event, ``text/event-stream``,
no terminal event), read to its end with ``iter_raw()``, from three sources:

- **parse** (the figure the targets apply to): the real transport (httpx's ``HTTPTransport``
  and its httpcore pool, h11's chunk parsing, everything the client runs in production) over
  httpcore's in-memory network backend (``MockBackend``, 64 KiB reads), so no socket. On a
  machine shared with other work, the socket variant's CPU time swings by tens of percent with
  the server's scheduling (how many bytes each ``recv`` finds, how often the client sleeps);
  this one does not. Each round is a fresh process of one flavour, in which the three clients
  each open the whole body (one request each) and take turns reading 1 MiB of it, the order
  rotating at each turn (and the order they are made in, at each round), after two untimed
  turns: a client's CPU time is compared with bare's from the same process and the same
  minutes, and the fresh processes average out what one process's memory layout favours (the
  ratio scatters by about 2 % between processes).
  (Whole 64 MiB reads, each client in a process of its own, scattered by 5 % either side;
  within one process, a flavour measured after another came out 1-5 % slower; and a request
  per MiB added the wrapper's per-request cost to the per-chunk figure.)
- **socket**: the same bytes from RawServer in a child process over loopback (so
  ``time.process_time`` counts the client alone): a cross-check with the kernel in the loop.
- **memory**: the same chunks from an in-memory transport (no parsing at all): the cheapest
  possible baseline, so its ratio is an upper bound on the relative cost; read the absolute
  cost per chunk there.

Clients: bare; ours with ``sse=False`` (scanning off: the wrapper only counts bytes); ours with
the default ``sse=True`` (every chunk scanned for event boundaries). Runs are interleaved (the
order rotates each round) and repeated: the tables give the median CPU time per chunk of each
client, the median over rounds of its ratio to bare in the same round, and, as a cross-check,
the ratio of the minima.

    python -m benchmarks.bench_overhead [--mib 64] [--repeat 5] [--rounds 15] [--json out.json]
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from httpx_drain.testing import Raw, Scenario

from . import _common
from ._common import median
from ._servers import ServerProcess

CHUNK = 1024
EVENT = b"data: " + b"x" * (CHUNK - 8) + b"\n\n"
assert len(EVENT) == CHUNK
READ = 64 * 1024
#: The parse source's clients take turns reading this much of their bodies.
TURN = 1024 * 1024
#: ... after this many turns each, not timed.
WARM_MIB = 2
HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
)
SOURCES = ("parse", "socket", "memory")
CLIENTS = ("bare", "ours, scanning off", "ours, scanning on")


def framed_body(chunks: int) -> bytes:
    """``chunks`` SSE events framed as HTTP chunks, without the terminator."""
    return (b"%x\r\n%b\r\n" % (CHUNK, EVENT)) * chunks


def _flavours() -> list[tuple[str, Any, Any, Any]]:
    import httpcore
    import httpx

    import httpx_drain

    out: list[tuple[str, Any, Any, Any]] = [("httpx", httpx, httpcore, httpx_drain.DrainTransport)]
    try:
        import httpcore2
        import httpx2

        import httpx_drain.httpx2 as drain2
    except ImportError:  # pragma: no cover - Python < 3.11
        return out
    out.append(("httpx2", httpx2, httpcore2, drain2.DrainTransport))
    return out


def _parse_transport(lib: Any, core: Any, reads: list[bytes]) -> Any:
    """The library's own transport, its pool connecting to an in-memory network stream.

    ``connection: close`` makes each request open a new (in-memory) connection, which
    replays the whole response again.
    """
    transport = lib.HTTPTransport()
    transport._pool.close()
    transport._pool = core.ConnectionPool(network_backend=core.MockBackend(reads))
    return transport


def _reads(chunks: int) -> list[bytes]:
    """The response with ``chunks`` events, as the in-memory network returns it."""
    wire = HEAD + framed_body(chunks) + b"0\r\n\r\n"
    return [wire[i : i + READ] for i in range(0, len(wire), READ)]


def _child(flavour: str, mib: int, first: int = 0) -> None:
    """One parse round, in this (fresh) process: print each client's CPU seconds for reading
    one ``mib`` MiB body, the three bodies open at once and read 1 MiB at a time in turns.

    ``first``: the client made first (an index into CLIENTS), the others following in turn.
    """
    lib, core, drain = next(f[1:] for f in _flavours() if f[0] == flavour)
    # One body per client, as the target says: a request per MiB would add what the wrapper
    # costs per request (15-23 us, 0.2-0.3 % of reading a MiB) to what it costs per chunk.
    reads = _reads((mib + WARM_MIB) * TURN // CHUNK)
    clients = {}
    # The order the clients are made in rotates between rounds: two clients running the very
    # same code measured up to 1 % apart over 24-30 rounds, so that whatever part of such a
    # gap the order causes falls on every client alike.
    first %= len(CLIENTS)
    for label in CLIENTS[first:] + CLIENTS[:first]:
        inner = _parse_transport(lib, core, reads)
        transport = inner if label == "bare" else drain(inner, sse=label.endswith("on"))
        clients[label] = lib.Client(transport=transport, timeout=60)
    seconds = dict.fromkeys(clients, 0.0)
    with contextlib.ExitStack() as stack:
        bodies = {}
        for label, client in clients.items():
            response = stack.enter_context(client.stream("GET", "http://bench.invalid/"))
            bodies[label] = _Body(response.iter_raw())
        order = list(clients)
        for turn in range(mib + WARM_MIB):
            order.append(order.pop(0))
            for label in order:
                # The first turns warm up: imports, caches, specialised bytecode.
                elapsed = bodies[label].read_to((turn + 1) * TURN)
                if turn >= WARM_MIB:
                    seconds[label] += elapsed
        for body in bodies.values():
            body.expect_end((mib + WARM_MIB) * TURN)
    for client in clients.values():
        client.close()
    print(json.dumps(seconds))


class _Body:
    """A response body read in turns: CPU seconds per turn, and the bytes read so far."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.received = 0

    def read_to(self, total: int) -> float:
        """Read on until ``total`` bytes in all; the CPU seconds that took."""
        gc.collect()
        n = self.received
        started = time.process_time()
        for chunk in self._chunks:
            n += len(chunk)
            if n >= total:
                break
        elapsed = time.process_time() - started
        self.received = n
        return elapsed

    def expect_end(self, size: int) -> None:
        for chunk in self._chunks:
            self.received += len(chunk)
        if self.received != size:
            raise SystemExit(f"read {self.received} bytes, expected {size}")


def _parse_round(flavour: str, mib: int, first: int) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.bench_overhead", "--child"]
    command += [flavour, str(mib), str(first)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _memory_transport(lib: Any, chunks: int) -> Any:
    class Body(lib.SyncByteStream):  # type: ignore[misc]
        def __iter__(self) -> Iterator[bytes]:
            return iter([EVENT] * chunks)

    def handler(request: Any) -> Any:
        return lib.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=Body(),
            extensions={"http_version": b"HTTP/1.1"},
        )

    return lib.MockTransport(handler)


def _read_all(client: Any, url: str) -> int:
    n = 0
    with client.stream("GET", url) as response:
        for chunk in response.iter_raw():
            n += len(chunk)
    return n


def _cpu(fn: Callable[[], int], expected: int) -> float:
    gc.collect()
    started = time.process_time()
    n = fn()
    elapsed = time.process_time() - started
    if n != expected:
        raise SystemExit(f"read {n} bytes, expected {expected}")
    return elapsed


def measure(
    mib: int, repeat: int, sources: tuple[str, ...] = SOURCES, parse_rounds: int | None = None
) -> list[dict[str, Any]]:
    """Rows for each flavour, source and client: ``repeat`` reads of each body (``parse_rounds``
    fresh processes for the parse source, ``repeat`` if not given)."""
    chunks = mib * 1024 * 1024 // CHUNK
    size = chunks * CHUNK
    body = framed_body(chunks)
    rows: list[dict[str, Any]] = []
    with ServerProcess(Scenario(steps=[Raw(body)])) as server:
        for name, lib, _core, drain in _flavours():
            for source in sources:
                if source == "parse":
                    rounds = parse_rounds or repeat
                    times = _parse_times(name, mib, rounds)
                    rows += _rows(name, source, mib, chunks, rounds, times)
                    continue
                clients = {}
                for label in CLIENTS:
                    if source == "socket":
                        inner = lib.HTTPTransport()
                    else:
                        inner = _memory_transport(lib, chunks)
                    transport = inner if label == "bare" else drain(inner, sse=label.endswith("on"))
                    clients[label] = lib.Client(transport=transport, timeout=60)
                url = server.url if source == "socket" else "http://bench.invalid/"
                times = {label: [] for label in clients}
                for client in clients.values():
                    _read_all(client, url)  # warm up: connection, caches
                order = list(clients)
                for _ in range(repeat):
                    # Rotate the order, so that no client always runs first (or last).
                    order.append(order.pop(0))
                    for label in order:
                        client = clients[label]
                        times[label].append(_cpu(functools.partial(_read_all, client, url), size))
                for client in clients.values():
                    client.close()
                rows += _rows(name, source, mib, chunks, repeat, times)
    return rows


def _parse_times(flavour: str, mib: int, repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {label: [] for label in CLIENTS}
    for index in range(repeat):
        for label, seconds in _parse_round(flavour, mib, index).items():
            times[label].append(seconds)
    return times


def _rows(
    name: str, source: str, mib: int, chunks: int, repeat: int, times: dict[str, list[float]]
) -> list[dict[str, Any]]:
    bare = times["bare"]
    base = median(bare)
    rows = []
    for label, samples in times.items():
        cpu = median(samples)
        # Paired: each client against bare in the same round, which cancels the drift of a
        # machine shared with other work.
        paired = median([v / b for v, b in zip(samples, bare, strict=True)])
        rows.append(
            {
                "flavour": name,
                "source": source,
                "client": label,
                "mib": mib,
                "chunks": chunks,
                "repeat": repeat,
                "cpu_s": round(cpu, 4),
                "ns_per_chunk": round(cpu / chunks * 1e9, 1),
                "extra_ns_per_chunk": round((cpu - base) / chunks * 1e9, 1),
                "ratio": round(paired, 4),
                "ratio_of_minima": round(min(samples) / min(bare), 4),
            }
        )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    first = rows[0]
    print(
        f"Per-chunk CPU cost: {first['mib']} MiB in 1 KiB chunks, iter_raw(), "
        f"{first['repeat']} rounds (process_time, client only)"
    )
    print(
        f"{'flavour':<7} {'source':<7} {'client':<19} {'ns/chunk':>9} {'extra ns':>9} "
        f"{'ratio':>7} {'min ratio':>9}"
    )
    for r in rows:
        print(
            f"{r['flavour']:<7} {r['source']:<7} {r['client']:<19} {r['ns_per_chunk']:>9.0f} "
            f"{r['extra_ns_per_chunk']:>9.0f} {r['ratio']:>7.3f} {r['ratio_of_minima']:>9.3f}"
        )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        _child(args[1], int(args[2]), int(args[3]))
        return
    parser = _common.parser(__doc__)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, help="parse source's rounds (default: --repeat)")
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES))
    options = parser.parse_args(args)
    rows = measure(options.mib, options.repeat, tuple(options.sources), options.rounds)
    print_rows(rows)
    _common.write_json(rows, options.json)


if __name__ == "__main__":
    main()
