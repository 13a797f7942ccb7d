"""openai sync SDK, sequential streams on loopback: bare vs each drain mode.

The server (in a child process; with ``--tls`` behind a TLS-terminating relay) sends the chunked
terminator ``D`` ms after ``data: [DONE]``. For each D and each client: connections the server
accepted, median and p99 per request, and the ratio to the bare SDK's median at D = 0 measured
in the same run. No assertions: targets are read off the table.

    python -m benchmarks.bench_modes [--requests 100] [--tls] [--json out.json]
"""

from __future__ import annotations

import math
import time
from typing import Any

from httpx_drain.testing import openai_chat

from . import _common
from ._common import median, ms, p99, sdk_client
from ._servers import CertificateAuthority, ServerProcess

DELAYS = (0.0, 0.005, 0.05)
KINDS = ("bare", "inline", "background")


def chat(client: Any) -> None:
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    for _chunk in stream:
        pass


def run(
    kind: str,
    delay: float,
    requests: int,
    *,
    tls: CertificateAuthority | None = None,
    rtt: float = 0.0,
) -> dict[str, Any]:
    """One client kind against one server: ``requests`` sequential streams."""
    import openai

    scenario = openai_chat(events=5, terminator_delay=delay)
    with ServerProcess(scenario, tls=tls, delay=rtt / 2) as server:
        verify = tls.client_context() if tls is not None else True
        client = sdk_client(openai, server.url, kind, verify=verify)
        times = []
        with client:
            for _ in range(requests):
                started = time.perf_counter()
                chat(client)
                times.append(time.perf_counter() - started)
        # After the client closed: every drain has ended.
        stats = None if kind == "bare" else client._client._transport.stats.snapshot()
        facts = server.facts()
    row: dict[str, Any] = {
        "client": kind,
        "tls": tls is not None,
        "delay_ms": delay * 1000,
        "rtt_ms": rtt * 1000,
        "requests": requests,
        "connections": facts.connections,
        "median_ms": ms(median(times)),
        "p99_ms": ms(p99(times)),
    }
    if stats is not None:
        row["connections_kept"] = stats.connections_kept
        row["drains_rejected"] = stats.drains_rejected
        row["deadline_exceeded"] = stats.deadline_exceeded
        row["handover_waits"] = stats.handover_waits
    if delay > 0:
        # The target: a connection draining for D is busy for D; requests every t ms need
        # ceil(D / t) of them in rotation, plus two of slack.
        row["connection_bound"] = math.ceil(delay * 1000 / row["median_ms"]) + 2
    else:
        row["connection_bound"] = 1
    return row


def warm_up() -> None:
    """A few throwaway requests: the SDK builds its models on first use."""
    run("bare", 0.0, 3)


def measure(requests: int, *, tls: CertificateAuthority | None) -> list[dict[str, Any]]:
    warm_up()
    rows = [run(kind, delay, requests, tls=tls) for delay in DELAYS for kind in KINDS]
    base = next(r for r in rows if r["client"] == "bare" and r["delay_ms"] == 0)["median_ms"]
    for r in rows:
        r["ratio_to_bare_d0"] = round(r["median_ms"] / base, 3)
    return rows


def print_rows(rows: list[dict[str, Any]], requests: int) -> None:
    print(f"openai sync SDK, {requests} sequential streams, loopback")
    print(
        f"{'TLS':>4} {'D':>6}  {'client':<11} {'conns':>5} {'bound':>5} {'median ms':>9} "
        f"{'p99 ms':>8} {'vs bare@0':>9}"
    )
    for r in rows:
        bound = "" if r["client"] == "bare" else r["connection_bound"]
        print(
            f"{'yes' if r['tls'] else 'no':>4} {r['delay_ms']:>4g}ms  {r['client']:<11} "
            f"{r['connections']:>5} {bound:>5} {r['median_ms']:>9.2f} {r['p99_ms']:>8.2f} "
            f"{r['ratio_to_bare_d0']:>8.2f}x"
        )


def main(argv: list[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--tls", action="store_true", help="through a TLS-terminating relay")
    args = parser.parse_args(argv)
    rows = measure(args.requests, tls=CertificateAuthority() if args.tls else None)
    print_rows(rows, args.requests)
    _common.write_json(rows, args.json)


if __name__ == "__main__":
    main()
