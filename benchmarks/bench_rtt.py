"""A 20 ms round trip: the openai sync SDK through a delaying relay, bare vs ours.

The relay (127.0.0.1, child process) delays each direction by 10 ms and stands in for the TCP
handshake's round trip (see ``_servers.py``); behind it a TLS-terminating relay and the replay
server. Bare, every stream pays TCP + TLS handshakes (3 round trips in all with TLS 1.3, 2
without); with our transport (background mode, defaults) a reused connection pays one.

    python -m benchmarks.bench_rtt [--requests 20] [--json out.json]
"""

from __future__ import annotations

from typing import Any

from . import _common, bench_modes
from ._servers import CertificateAuthority

RTT = 0.02


def measure(requests: int) -> list[dict[str, Any]]:
    bench_modes.warm_up()
    ca = CertificateAuthority()
    rows = []
    for tls in (ca, None):
        bare = bench_modes.run("bare", 0.0, requests, tls=tls, rtt=RTT)
        ours = bench_modes.run("background", 0.0, requests, tls=tls, rtt=RTT)
        speedup = round(bare["median_ms"] / ours["median_ms"], 2)
        bare["speedup"] = 1.0
        ours["speedup"] = speedup
        rows += [bare, ours]
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    first = rows[0]
    print(
        f"openai sync SDK, {first['requests']} sequential streams, "
        f"{first['rtt_ms']:g} ms round trip (relay)"
    )
    print(f"{'TLS':>4}  {'client':<11} {'conns':>5} {'median ms':>9} {'p99 ms':>8} {'speed-up':>8}")
    for r in rows:
        print(
            f"{'yes' if r['tls'] else 'no':>4}  {r['client']:<11} {r['connections']:>5} "
            f"{r['median_ms']:>9.2f} {r['p99_ms']:>8.2f} {r['speedup']:>7.2f}x"
        )


def main(argv: list[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)
    rows = measure(args.requests)
    print_rows(rows)
    _common.write_json(rows, args.json)


if __name__ == "__main__":
    main()
