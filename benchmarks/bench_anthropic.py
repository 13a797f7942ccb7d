"""anthropic sync SDK, which reads every stream to EOF: a late terminator costs it in full.

The server (child process, loopback) sends the chunked terminator ``D`` after
``message_stop``. Bare, the SDK waits for it on every request; with our transport the stream
ends at ``message_stop`` and the tail is drained in the background (default settings).

    python -m benchmarks.bench_anthropic [--requests 20] [--json out.json]
"""

from __future__ import annotations

from typing import Any

from httpx_drain.testing import anthropic_messages

from . import _common
from ._common import median, ms, p99, sdk_client, time_calls
from ._servers import ServerProcess

DELAY = 1.0


def message(client: Any) -> None:
    stream = client.messages.create(
        model="claude-test",
        max_tokens=16,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )
    for _event in stream:
        pass


def run(kind: str, delay: float, requests: int) -> dict[str, Any]:
    import anthropic

    with ServerProcess(anthropic_messages(events=5, terminator_delay=delay)) as server:
        client = sdk_client(anthropic, server.url, kind)
        with client:
            times = time_calls(message, client, requests)
        # After the client closed: every drain has ended.
        stats = None if kind == "bare" else client._client._transport.stats.snapshot()
        facts = server.facts()
    row: dict[str, Any] = {
        "client": kind,
        "delay_ms": delay * 1000,
        "requests": requests,
        "connections": facts.connections,
        "median_ms": ms(median(times)),
        "p99_ms": ms(p99(times)),
    }
    if stats is not None:
        row["connections_kept"] = stats.connections_kept
        row["drains_rejected"] = stats.drains_rejected
        row["deadline_exceeded"] = stats.deadline_exceeded
    return row


def measure(requests: int, bare_requests: int) -> list[dict[str, Any]]:
    run("bare", 0.0, 2)  # warm up: the SDK builds its models on first use
    rows = [
        run("bare", 0.0, requests),
        run("bare", DELAY, bare_requests),
        run("background", 0.0, requests),
        run("background", DELAY, requests),
    ]
    ours0 = rows[2]["median_ms"]
    bare0 = rows[0]["median_ms"]
    for r in rows:
        r["above_own_d0_ms"] = round(
            r["median_ms"] - (bare0 if r["client"] == "bare" else ours0), 3
        )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print("anthropic sync SDK (reads to EOF), terminator D after message_stop, loopback")
    print(
        f"{'D':>6}  {'client':<11} {'n':>3} {'conns':>5} {'median ms':>9} {'p99 ms':>8} "
        f"{'vs own D=0':>10}"
    )
    for r in rows:
        print(
            f"{r['delay_ms']:>4g}ms  {r['client']:<11} {r['requests']:>3} {r['connections']:>5} "
            f"{r['median_ms']:>9.2f} {r['p99_ms']:>8.2f} {r['above_own_d0_ms']:>+9.1f}ms"
        )


def main(argv: list[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--bare-requests", type=int, default=5, help="bare at D: each waits D")
    args = parser.parse_args(argv)
    rows = measure(args.requests, args.bare_requests)
    print_rows(rows)
    _common.write_json(rows, args.json)


if __name__ == "__main__":
    main()
