"""openai sync SDK, sequential streams on loopback: bare vs each drain mode.

The server (in a child process; with ``--tls`` behind a TLS-terminating relay) sends the chunked
terminator ``D`` ms after ``data: [DONE]``. For each D and each client: connections the server
accepted, median and p99 per request, the median time per request the caller's thread spent
off the CPU (waiting for the server, the GIL or the scheduler: a figure the machine's drift in
speed leaves alone), and the ratio to the bare SDK's median at D = 0 measured in the runs just
before and after (see :func:`measure`). No assertions: targets are read off the table.

    python -m benchmarks.bench_modes [--requests 100] [--rounds 3] [--extra-rounds 0] [--tls]
        [--json out.json]
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from httpx_drain.testing import openai_chat

from . import _common
from ._common import median, ms, p99, sdk_client, time_calls
from ._servers import CertificateAuthority, ServerProcess

DELAYS = (0.0, 0.005, 0.05)
KINDS = ("bare", "inline", "background")
#: Seconds between two runs on one server: longer than the largest D.
_SETTLE = 0.1


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
    """One client kind against a server of its own: ``requests`` sequential streams."""
    with _server(delay, tls, rtt) as server:
        return _block(kind, delay, requests, server, tls, rtt)


def _server(delay: float, tls: CertificateAuthority | None, rtt: float = 0.0) -> ServerProcess:
    return ServerProcess(openai_chat(events=5, terminator_delay=delay), tls=tls, delay=rtt / 2)


def _block(
    kind: str,
    delay: float,
    requests: int,
    server: ServerProcess,
    tls: CertificateAuthority | None,
    rtt: float = 0.0,
) -> dict[str, Any]:
    """A fresh client (an empty pool) of ``kind`` sends ``requests`` streams to ``server``."""
    import openai

    verify = tls.client_context() if tls is not None else True
    before = server.facts().connections
    client = sdk_client(openai, server.url, kind, verify=verify)
    off_cpu: list[float] = []
    with client:
        times = time_calls(chat, client, requests, off_cpu)
    # After the client closed: every drain has ended. The pause lets the server send what it
    # still holds for a client that left (a bare client's terminators) before the next run.
    time.sleep(_SETTLE)
    stats = None if kind == "bare" else client._client._transport.stats.snapshot()
    row: dict[str, Any] = {
        "client": kind,
        "tls": tls is not None,
        "delay_ms": delay * 1000,
        "rtt_ms": rtt * 1000,
        "requests": requests,
        "connections": server.facts().connections - before,
        "median_ms": ms(median(times)),
        "p99_ms": ms(p99(times)),
        "off_cpu_ms": ms(median(off_cpu)),
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


#: The runs the time target compares, given ``extra_rounds`` more: background at the largest D,
#: and, as a control, the bare SDK at that D, which behaves as at D = 0 (it closes each
#: connection at once), so its ratio shows how far the method itself strays from 1.
TARGET = (("background", DELAYS[-1]), ("bare", DELAYS[-1]))


def measure(
    requests: int, *, tls: CertificateAuthority | None, rounds: int = 1, extra_rounds: int = 0
) -> list[dict[str, Any]]:
    """Every client kind at every D, ``rounds`` times, each run between two bare D = 0 runs.

    The machine's speed drifts by tens of percent within seconds, more than the differences
    measured. So one server process per D serves every round, each run gets a fresh client
    (an empty pool, as a new process would have), and each run is bracketed by two runs of
    the bare SDK at D = 0: its ratio is its median over the mean of theirs, a second or so
    apart. A figure is the median over rounds of its runs' medians (or ratios). The
    :data:`TARGET` runs then get ``extra_rounds`` more rounds of their own, bracketed alike:
    one five-round ratio moves by about 0.1 on a shared machine, as much as the target's
    margin.
    """
    warm_up()
    base = ("bare", 0.0)
    configs = [(kind, delay) for delay in DELAYS for kind in KINDS]
    others = [c for c in configs if c != base]
    samples: dict[tuple[str, float], list[dict[str, Any]]] = {c: [] for c in configs}
    ratios: dict[tuple[str, float], list[float]] = {c: [] for c in configs}
    with contextlib.ExitStack() as stack:
        servers = {d: stack.enter_context(_server(d, tls)) for d in DELAYS}

        def sample(config: tuple[str, float]) -> dict[str, Any]:
            row = _block(*config, requests, servers[config[1]], tls)
            samples[config].append(row)
            return row

        def bracketed(config: tuple[str, float], previous: dict[str, Any]) -> dict[str, Any]:
            """Run ``config`` then bare at D = 0; record its ratio; return that bare run."""
            row = sample(config)
            following = sample(base)
            bracket = (previous["median_ms"] + following["median_ms"]) / 2
            ratios[config].append(row["median_ms"] / bracket)
            return following

        order = list(others)
        for _ in range(rounds):
            previous = sample(base)
            for config in order:
                previous = bracketed(config, previous)
            order.append(order.pop(0))  # no client always runs first, or right after another
        if extra_rounds:
            previous = sample(base)
            for _ in range(extra_rounds):
                for config in TARGET:
                    previous = bracketed(config, previous)
    rows = []
    for config in configs:
        runs = samples[config]
        row = dict(runs[0])
        for key in ("connections", "median_ms", "p99_ms", "off_cpu_ms", "connection_bound"):
            row[key] = median([r[key] for r in runs])
        row["rounds"] = len(runs) if config != base else rounds
        row["connections_max"] = max(r["connections"] for r in runs)
        row["rounds_within_bound"] = sum(r["connections"] <= r["connection_bound"] for r in runs)
        row["ratio_to_bare_d0"] = round(median(ratios[config]), 3) if config != base else 1.0
        rows.append(row)
    return rows


def print_rows(rows: list[dict[str, Any]], requests: int) -> None:
    print(
        f"openai sync SDK, {requests} sequential streams, loopback; medians of each row's "
        "rounds, 'ok' the rounds within the connection bound"
    )
    print(
        f"{'TLS':>4} {'D':>6}  {'client':<11} {'rounds':>6} {'conns':>5} {'bound':>5} {'ok':>5} "
        f"{'median ms':>9} {'p99 ms':>8} {'off-CPU':>7} {'vs bare@0':>9}"
    )
    for r in rows:
        bare = r["client"] == "bare"
        bound = "" if bare else f"{r['connection_bound']:g}"
        ok = "" if bare else f"{r['rounds_within_bound']}/{r['rounds']}"
        print(
            f"{'yes' if r['tls'] else 'no':>4} {r['delay_ms']:>4g}ms  {r['client']:<11} "
            f"{r['rounds']:>6} {r['connections']:>5g} {bound:>5} {ok:>5} {r['median_ms']:>9.2f} "
            f"{r['p99_ms']:>8.2f} {r['off_cpu_ms']:>7.2f} {r['ratio_to_bare_d0']:>8.2f}x"
        )


def main(argv: list[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--extra-rounds", type=int, default=0, help="more rounds for the time target's runs"
    )
    parser.add_argument("--tls", action="store_true", help="through a TLS-terminating relay")
    args = parser.parse_args(argv)
    tls = CertificateAuthority() if args.tls else None
    rows = measure(args.requests, tls=tls, rounds=args.rounds, extra_rounds=args.extra_rounds)
    print_rows(rows, args.requests)
    _common.write_json(rows, args.json)


if __name__ == "__main__":
    main()
