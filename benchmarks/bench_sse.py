"""CPU cost of httpx_drain's SSE boundary scanner, relative to bare httpx iteration.

Feeds N small server-sent events (OpenAI chat-chunk sized, ~150 bytes) through
``SSEScanner.feed`` in two chunkings -- one event per chunk (what a chunked
HTTP/1.1 SSE response usually yields) and 4 KiB chunks -- and compares the CPU
time (``time.process_time``) with:

* ``loop``: just iterating the same list of chunks (subtracted, so the scanner
  cost is the cost of the ``feed`` calls alone);
* ``mock``: iterating an httpx response body of the same chunks served from
  memory by ``httpx.MockTransport`` (``iter_raw``: the cheapest possible httpx
  iteration, so the strictest baseline);
* ``socket``: iterating the same body received over a loopback TCP connection
  from a server in a child process (chunked transfer-encoding, one HTTP chunk
  per chunk; only this process's CPU is counted), i.e. real h11/httpcore work.

The ratio reported for a baseline is ``(bare + scanner) / bare``, from the
separately measured costs; ``direct`` columns time the baseline with ``feed``
called inside the loop, as a cross-check.  Every figure is the minimum over
``--repeat`` interleaved runs.  Nothing is asserted.

    python benchmarks/bench_sse.py [--events N] [--repeat R] [--json PATH] [--no-socket]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx

from httpx_drain._sse import DEFAULT_TERMINAL, SSEEvent, SSEScanner

CHUNK_4K = 4096


def make_events(n: int) -> list[bytes]:
    """OpenAI chat.completion.chunk events, ~150 bytes each, then ``data: [DONE]``."""
    words = [b"Hello", b" there", b",", b" how", b" can", b" I", b" help", b" you", b" today", b"?"]
    events = [
        b'data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1718000000,'
        b'"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
        % words[i % len(words)]
        for i in range(n)
    ]
    events.append(b"data: [DONE]\n\n")
    return events


def chunkings(events: list[bytes]) -> dict[str, list[bytes]]:
    body = b"".join(events)
    return {
        "1 event/chunk": events,
        "4 KiB chunks": [body[i : i + CHUNK_4K] for i in range(0, len(body), CHUNK_4K)],
    }


def custom_predicate(event: SSEEvent) -> bool:
    return event.data == "[DONE]"


MATCHERS: dict[str, Callable[[], SSEScanner]] = {
    "default": lambda: SSEScanner(DEFAULT_TERMINAL),
    "none": lambda: SSEScanner(None),
    "predicate": lambda: SSEScanner(custom_predicate),
}


def cpu(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.process_time()
    fn()
    return time.process_time() - start


# -- in-memory runs -------------------------------------------------------------------


def run_loop(chunks: list[bytes]) -> None:
    for _chunk in chunks:
        pass


def run_scan(chunks: list[bytes], make: Callable[[], SSEScanner]) -> SSEScanner:
    scanner = make()
    feed = scanner.feed
    for chunk in chunks:
        feed(chunk)
    return scanner


def sanity_check(loads: dict[str, list[bytes]], events: int) -> None:
    """Not timed: every matcher sees every event (and the terminal one) in every load."""
    for name, chunks in loads.items():
        for matcher, make in MATCHERS.items():
            scanner = run_scan(chunks, make)
            if scanner.events != events or scanner.terminal_seen != (matcher != "none"):
                raise SystemExit(f"scanner miscounted {name}/{matcher}: {scanner!r}")


class ListStream(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)


def mock_client(chunks: list[bytes]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=ListStream(chunks)
        )

    return httpx.Client(transport=httpx.MockTransport(handler))


def run_http(client: httpx.Client, url: str, make: Callable[[], SSEScanner] | None) -> int:
    n = 0
    with client.stream("GET", url) as response:
        if make is None:
            for _chunk in response.iter_raw():
                n += 1
        else:
            feed = make().feed
            for chunk in response.iter_raw():
                feed(chunk)
                n += 1
    return n


# -- loopback server ------------------------------------------------------------------


def serve(port_out: Any, bodies: dict[str, list[bytes]]) -> None:
    """Child process: answer every request with its body, one HTTP chunk per chunk."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    responses = {
        path: head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        for path, chunks in bodies.items()
    }
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port_out.send(sock.getsockname()[1])
        while True:
            conn, _ = sock.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(65536)
                    if not data:
                        break
                    request += data
                parts = request.split(b" ", 2)
                path = parts[1].decode() if len(parts) == 3 else ""
                conn.sendall(
                    responses.get(path, b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                )


# -- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--no-socket", action="store_true", help="skip the loopback baseline")
    args = parser.parse_args(argv)

    events = make_events(args.events)
    loads = chunkings(events)
    paths = {name: f"/{i}" for i, name in enumerate(loads)}
    event_size = sum(map(len, events[:-1])) / max(1, args.events)

    sanity_check(loads, args.events + 1)

    server = None
    base_url = ""
    if not args.no_socket:
        ctx = multiprocessing.get_context("spawn")
        port_in, port_out = ctx.Pipe(duplex=False)
        server = ctx.Process(
            target=serve, args=(port_out, {paths[n]: c for n, c in loads.items()}), daemon=True
        )
        server.start()
        base_url = f"http://127.0.0.1:{port_in.recv()}"

    best: dict[tuple[str, str], float] = {}

    def measure(key: tuple[str, str], fn: Callable[[], object]) -> None:
        t = cpu(fn)
        best[key] = min(best.get(key, float("inf")), t)

    default = MATCHERS["default"]
    try:
        with httpx.Client(timeout=60) as http:
            for _ in range(args.repeat):
                for name, chunks in loads.items():
                    measure((name, "loop"), partial(run_loop, chunks))
                    for matcher, make in MATCHERS.items():
                        measure((name, f"scan:{matcher}"), partial(run_scan, chunks, make))
                    with mock_client(chunks) as mock_http:
                        measure((name, "mock"), partial(run_http, mock_http, "http://mock/", None))
                        measure(
                            (name, "mock+scan"),
                            partial(run_http, mock_http, "http://mock/", default),
                        )
                    if base_url:
                        url = base_url + paths[name]
                        measure((name, "socket"), partial(run_http, http, url, None))
                        measure((name, "socket+scan"), partial(run_http, http, url, default))
    finally:
        if server is not None:
            server.terminate()
            server.join()

    rows: list[dict[str, Any]] = []
    for name, chunks in loads.items():
        nchunks = len(chunks)
        loop = best[(name, "loop")]
        mock = best[(name, "mock")]
        sock_t = best.get((name, "socket"))
        for matcher in MATCHERS:
            scan = max(0.0, best[(name, f"scan:{matcher}")] - loop)
            row: dict[str, Any] = {
                "chunking": name,
                "matcher": matcher,
                "chunks": nchunks,
                "events": args.events + 1,
                "scanner_s": scan,
                "scanner_ns_per_chunk": scan / nchunks * 1e9,
                "scanner_ns_per_event": scan / (args.events + 1) * 1e9,
                "mock_s": mock,
                "mock_ns_per_chunk": mock / nchunks * 1e9,
                "ratio_mock": (mock + scan) / mock,
                "ratio_mock_direct": None,
                "socket_s": sock_t,
                "socket_ns_per_chunk": None if sock_t is None else sock_t / nchunks * 1e9,
                "ratio_socket": None if sock_t is None else (sock_t + scan) / sock_t,
                "ratio_socket_direct": None,
            }
            if matcher == "default":
                row["ratio_mock_direct"] = best[(name, "mock+scan")] / mock
                if sock_t is not None:
                    row["ratio_socket_direct"] = best[(name, "socket+scan")] / sock_t
            rows.append(row)

    print_table(rows, args, event_size)
    if args.json:
        meta = {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "httpx": httpx.__version__,
            "events": args.events,
            "event_bytes": event_size,
            "repeat": args.repeat,
            "clock": "time.process_time, min over repeats",
            "http_iteration": "Response.iter_raw",
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=2)
            f.write("\n")
    return 0


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace, event_size: float) -> None:
    print(
        f"{args.events} events of ~{event_size:.0f} bytes, CPU time, best of {args.repeat}; "
        "ratio = (bare + scanner) / bare, [direct measurement]"
    )
    header = (
        f"{'chunking':14} {'matcher':9} {'chunks':>7} {'scan ns/chunk':>13} "
        f"{'mock ns/chunk':>13} {'ratio mock':>17} {'socket ns/chunk':>15} {'ratio socket':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        mock_direct = r["ratio_mock_direct"]
        sock_direct = r["ratio_socket_direct"]
        mock_col = fmt_ratio(r["ratio_mock"]) + (
            f" [{mock_direct:.3f}]" if mock_direct is not None else ""
        )
        sock_col = fmt_ratio(r["ratio_socket"]) + (
            f" [{sock_direct:.3f}]" if sock_direct is not None else ""
        )
        sock_ns = "-" if r["socket_ns_per_chunk"] is None else f"{r['socket_ns_per_chunk']:.0f}"
        print(
            f"{r['chunking']:14} {r['matcher']:9} {r['chunks']:>7} "
            f"{r['scanner_ns_per_chunk']:>13.0f} {r['mock_ns_per_chunk']:>13.0f} "
            f"{mock_col:>17} {sock_ns:>15} {sock_col:>17}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
