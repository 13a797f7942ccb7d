"""The ``httpx-drain`` command (also ``python -m httpx_drain``).

``httpx-drain demo`` streams N responses from an embedded replay server, stopping at
``data: [DONE]`` as the SDKs do, with and without the transport, and prints the TCP
connections each used.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

_DONE = "data: [DONE]"


def _duration(text: str) -> float:
    """Parse ``50ms``, ``1.5s`` or a bare number of seconds."""
    value = text.strip().lower()
    try:
        if value.endswith("ms"):
            return float(value[:-2]) / 1000
        return float(value.removesuffix("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 50ms or 0.05)") from None


def _stream_until_done(client: Any, url: str) -> None:
    # What the SDKs do: read events, stop at the terminal one, close the response.
    with client.stream("POST", url, json={"stream": True}) as response:
        for line in response.iter_lines():
            if line == _DONE:
                break


def _demo_row(label: str, make_client: Callable[[], Any], scenario: Any, n: int) -> dict[str, Any]:
    from .testing import RawServer

    with RawServer(scenario) as server:
        client = make_client()
        times = []
        with client:
            for _ in range(n):
                started = time.perf_counter()
                _stream_until_done(client, server.url + "/v1/chat/completions")
                times.append(time.perf_counter() - started)
        transport = getattr(client, "_transport", None)
        stats = getattr(transport, "stats", None)
        return {
            "client": label,
            "requests": server.facts.request_count,
            "connections": server.facts.connection_count,
            "kept": stats.connections_kept if stats is not None else None,
            "ms_per_request": statistics.median(times) * 1000,
        }


def demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    from .testing import openai_chat

    scenario = openai_chat(events=5, terminator_delay=args.terminator_delay)
    flavours: list[tuple[str, Any, Any]] = []
    import httpx

    from . import DrainTransport

    flavours.append(("httpx", httpx, DrainTransport))
    if importlib.util.find_spec("httpx2") is not None:
        import httpx2

        from .httpx2 import DrainTransport as DrainTransport2

        flavours.append(("httpx2", httpx2, DrainTransport2))

    print(
        f"{args.requests} streaming requests per client, stopping at `{_DONE}`; the server "
        f"sends the chunked terminator {args.terminator_delay * 1000:g} ms after it.\n"
    )
    rows = []
    for name, lib, transport_cls in flavours:
        for label, factory in (
            (f"{name} (bare)", lambda lib=lib: lib.Client()),
            (
                f"{name} + DrainTransport(mode={args.mode!r})",
                lambda lib=lib, cls=transport_cls: lib.Client(transport=cls(mode=args.mode)),
            ),
        ):
            rows.append(_demo_row(label, factory, scenario, args.requests))
    width = max(len(r["client"]) for r in rows)
    print(f"{'client':<{width}}  connections  kept  ms/request")
    for r in rows:
        kept = "-" if r["kept"] is None else str(r["kept"])
        print(
            f"{r['client']:<{width}}  {r['connections']:>11}  {kept:>4}  "
            f"{r['ms_per_request']:>10.2f}"
        )
    ours = [r for r in rows if r["kept"] is not None]
    fixed = all(r["connections"] == 1 for r in ours)
    if args.terminator_delay == 0:
        print("\nWith the transport every stream reused one connection." if fixed else "")
    return 0 if fixed or args.terminator_delay > 0 else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``httpx-drain`` command."""
    parser = argparse.ArgumentParser(
        prog="httpx-drain",
        description="Keep streaming HTTP/1.1 connections reusable under httpx and httpx2.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "demo", help="streams against an embedded replay server, with and without us"
    )
    p.add_argument("-n", "--requests", type=int, default=20, help="streams per client (20)")
    p.add_argument(
        "--terminator-delay",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="delay from the last event to the chunked terminator, e.g. 50ms (0)",
    )
    p.add_argument("--mode", choices=("background", "inline"), default="background")
    p.set_defaults(handler=demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``httpx-drain`` console script."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
