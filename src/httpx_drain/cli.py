"""The ``httpx-drain`` command (also ``python -m httpx_drain``).

``httpx-drain doctor [URL]`` probes a streaming endpoint (an embedded replay server without a
URL) with and without the transport and says what it found and which settings to use.
``httpx-drain replay`` serves a replay-server scenario until stopped. ``httpx-drain demo``
streams N responses from an embedded replay server, stopping at ``data: [DONE]`` as the SDKs
do, with and without the transport, and prints the TCP connections each used.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import signal
import ssl
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["build_parser", "main"]

_DONE = "data: [DONE]"
_OPENAI_URL = "https://api.openai.com/v1"
_ANTHROPIC_URL = "https://api.anthropic.com"
_OPENAI_MODEL = "gpt-4o-mini"
_ANTHROPIC_MODEL = "claude-haiku-4-5"
_PROMPT = "Say hello."
# The embedded server of `doctor` without a URL: a terminator shortly after [DONE], as a
# server or proxy that writes it separately sends it.
_EMBEDDED_DELAY = 0.01
# Where the SDKs send each scenario (the replay server answers any path).
_PATHS = {
    "openai-chat": "/v1/chat/completions",
    "openai-responses": "/v1/responses",
    "openai-assistants": "/v1/threads/runs",
    "anthropic-messages": "/v1/messages",
    "generic-sse": "/events",
}


def _duration(text: str) -> float:
    """Parse ``50ms``, ``1.5s`` or a bare number of seconds."""
    value = text.strip().lower()
    try:
        seconds = (
            float(value[:-2]) / 1000 if value.endswith("ms") else float(value.removesuffix("s"))
        )
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 50ms or 0.05)") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (negative)")
    return seconds


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError("a header is 'Name: value'")
    return name.strip(), value.strip()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


# demo


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


# replay


class _Terminated(Exception):
    """SIGTERM arrived."""


@contextmanager
def _until_stopped() -> Iterator[None]:
    """Turn SIGTERM into an exception, so the ``with`` blocks it passes through clean up."""

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _replay_scenario(args: argparse.Namespace) -> Any:
    from .testing import Chunk, Fin, Reset, Split, Terminator, preset

    scenario = preset(
        args.scenario,
        events=args.events,
        event_delay=args.event_delay,
        terminator_delay=args.terminator_delay,
    )
    steps = list(scenario.steps)
    if args.truncate:
        # Cut the last event in half and close: a stream that ends before its terminal event.
        last = max(i for i, step in enumerate(steps) if isinstance(step, Chunk))
        cut = steps[last]
        assert isinstance(cut, Chunk)
        steps = [*steps[:last], Chunk(cut.data[: len(cut.data) // 2]), Fin()]
    elif args.no_terminator or args.reset:
        end = Fin() if args.no_terminator else Reset()
        steps = [end if isinstance(step, Terminator) else step for step in steps]
    if args.split:
        # Each event in two chunks, cut in its middle, as some proxies forward them.
        steps = [
            Split(step.data, [len(step.data) // 2])
            if isinstance(step, Chunk) and len(step.data) > 1
            else step
            for step in steps
        ]
    changes: dict[str, Any] = {"steps": steps, "connection_close": args.connection_close}
    if args.status is not None:
        changes["status"] = args.status
    if args.keep_alive_timeout is not None:
        changes["keep_alive_timeout"] = args.keep_alive_timeout
    return dataclasses.replace(scenario, **changes)


def _describe_replay(args: argparse.Namespace) -> str:
    faults = [
        flag
        for flag, on in (
            ("no terminator (FIN)", args.no_terminator),
            ("reset (RST)", args.reset),
            ("truncated before the last event", args.truncate),
            ("events split across chunks", args.split),
            ("Connection: close", args.connection_close),
        )
        if on
    ]
    if args.status is not None:
        faults.append(f"status {args.status}")
    if args.keep_alive_timeout is not None:
        faults.append(f"keep-alive timeout {_ms(args.keep_alive_timeout)}")
    text = (
        f"{args.scenario}, {args.events} events, terminator "
        f"{_ms(args.terminator_delay)} after the last event"
    )
    return text + (f"; {', '.join(faults)}" if faults else "")


def replay(args: argparse.Namespace) -> int:
    """Serve a scenario until Ctrl-C or SIGTERM; returns the exit code."""
    from ._redact import redact_url
    from .testing import HypercornServer, RawServer, RequestInfo, UnsupportedStep

    try:
        scenario = _replay_scenario(args)
        if args.backend == "hypercorn":
            from .testing._asgi import check_asgi

            check_asgi(scenario)
    except (UnsupportedStep, ValueError) as exc:
        print(f"httpx-drain replay: {exc}", file=sys.stderr)
        return 2

    def log(request: RequestInfo) -> Any:
        if not args.quiet:
            print(
                f"connection {request.connection_index} request {request.request_index}: "
                f"{request.method} {redact_url(request.path)}",
                file=sys.stderr,
                flush=True,
            )
        return scenario

    server: RawServer | HypercornServer = (
        RawServer(log, host=args.host)
        if args.backend == "raw"
        else HypercornServer(log, host=args.host)
    )
    try:
        with _until_stopped(), _fixed_port(args.port), server:
            # The URL alone on stdout, first, for scripts; the rest on stderr.
            print(server.url, flush=True)
            print(
                f"replaying {_describe_replay(args)} on {args.backend} at {server.url}\n"
                f"  openai: base_url={server.url}/v1   anthropic: base_url={server.url}\n"
                f"  try: httpx-drain doctor {server.url}{_PATHS.get(args.scenario, '/')} -X POST\n"
                "Ctrl-C to stop.",
                file=sys.stderr,
                flush=True,
            )
            while True:
                time.sleep(3600)  # until a signal's exception ends the block
    except (KeyboardInterrupt, _Terminated):
        pass
    except BrokenPipeError:
        raise  # stdout closed (piped into `head`): main() ends quietly
    except OSError as exc:
        print(
            f"httpx-drain replay: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    facts = server.facts
    # The server raises what went wrong while serving only when its block ends normally, and
    # this one ends by a signal: report it here, or a broken replay would exit 0.
    if facts.errors:
        more = f" (and {len(facts.errors) - 1} more)" if len(facts.errors) > 1 else ""
        print(
            f"httpx-drain replay: the server failed while serving: {facts.errors[0]!r}{more}",
            file=sys.stderr,
        )
        return 1
    print(
        f"served {_plural(facts.request_count, 'request')} on "
        f"{_plural(facts.connection_count, 'connection')}"
        f" ({facts.early_disconnects} closed early by the client)",
        file=sys.stderr,
    )
    return 0


@contextmanager
def _fixed_port(port: int) -> Iterator[None]:
    """Make the replay servers started in this block listen on ``port`` instead of any port.

    They pick a free port for tests; a person wants one to type. (A ``port=`` argument on
    the servers would make this unnecessary.)
    """
    if not port:
        yield
        return
    import socket

    from .testing import _hypercorn, _raw

    def listening_socket(host: str, *, blocking: bool = True) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(blocking)
        except BaseException:
            sock.close()
            raise
        return sock

    name = "listening_socket"  # each module's own import of _base.listening_socket
    modules = (_raw, _hypercorn)
    saved = [vars(module)[name] for module in modules]
    for module in modules:
        setattr(module, name, listening_socket)
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            setattr(module, name, original)


# doctor


def _join(base: str, path: str) -> str:
    return base if base.rstrip("/").endswith(path) else base.rstrip("/") + path


def _target(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The request to probe, and an error message for the user (exit 2) if there is one."""
    from ._doctor import Target

    headers: list[tuple[str, str]] = []
    body: bytes | None = None
    vendor = "openai" if args.openai else "anthropic" if args.anthropic else None
    if args.data is not None:
        try:
            body = _read_data(args.data)
        except OSError as exc:
            return None, f"--data {args.data}: {exc.strerror or exc}"
    if vendor == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        base = args.url or os.environ.get("OPENAI_BASE_URL") or _OPENAI_URL
        url = _join(base, "/chat/completions")
        model = args.model or _OPENAI_MODEL
        headers = [("content-type", "application/json"), ("accept", "text/event-stream")]
        if key:
            headers.append(("authorization", f"Bearer {key}"))
        if body is None:
            payload = {
                "model": model,
                "messages": [{"role": "user", "content": _PROMPT}],
                "stream": True,
                "max_completion_tokens": 16,
            }
            body = json.dumps(payload).encode()
        about = f"OpenAI chat completions, model {model}, streaming"
        missing = None if key or _has(args.header, "authorization") else "OPENAI_API_KEY"
    elif vendor == "anthropic":
        key = os.environ.get("ANTHROPIC_API_KEY")
        base = args.url or os.environ.get("ANTHROPIC_BASE_URL") or _ANTHROPIC_URL
        url = _join(base, "/v1/messages")
        model = args.model or _ANTHROPIC_MODEL
        headers = [
            ("content-type", "application/json"),
            ("accept", "text/event-stream"),
            ("anthropic-version", "2023-06-01"),
        ]
        if key:
            headers.append(("x-api-key", key))
        if body is None:
            payload = {
                "model": model,
                "max_tokens": 16,
                "messages": [{"role": "user", "content": _PROMPT}],
                "stream": True,
            }
            body = json.dumps(payload).encode()
        about = f"Anthropic messages, model {model}, streaming"
        missing = None if key or _has(args.header, "x-api-key") else "ANTHROPIC_API_KEY"
    else:
        url = args.url
        about = ""
        missing = None
        if body is not None and _looks_like_json(body):
            headers.append(("content-type", "application/json"))
    if missing is not None:
        return None, f"--{vendor} needs {missing} in the environment (or -H with the key)"
    if not _valid_url(url):
        return None, "not an http(s) URL (the URL is not repeated here: it may hold a key)"
    for name, value in args.header:
        headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
        headers.append((name, value))
    method = (args.request or ("POST" if body is not None else "GET")).upper()
    return Target(method=method, url=url, headers=tuple(headers), body=body, about=about), None


def _valid_url(url: str) -> bool:
    import httpx

    try:
        parsed = httpx.URL(url)
        urllib.parse.urlsplit(url)
    except (httpx.InvalidURL, ValueError):
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def _has(headers: list[tuple[str, str]], name: str) -> bool:
    return any(k.lower() == name for k, _ in headers)


def _looks_like_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _read_data(data: str) -> bytes:
    # As curl: @file reads a file, @- standard input.
    if data.startswith("@"):
        if data == "@-":
            return sys.stdin.buffer.read()
        with open(data[1:], "rb") as f:
            return f.read()
    return data.encode()


def doctor(args: argparse.Namespace) -> int:
    """Probe an endpoint and report; returns the exit code."""
    from . import _doctor

    parser: argparse.ArgumentParser = args.parser
    embedded = args.url is None and not (args.openai or args.anthropic)
    verify: ssl.SSLContext | bool = True
    if args.insecure:
        verify = False
    elif args.cacert:
        try:
            verify = ssl.create_default_context(cafile=args.cacert)
        except (OSError, ssl.SSLError) as exc:
            parser.error(f"--cacert {args.cacert}: {exc}")
    if args.http2 and importlib.util.find_spec("h2") is None:
        parser.error("--http2 needs the h2 package (pip install 'httpx[http2]')")
    options = _doctor.Options(
        probes=args.requests,
        timeout=args.timeout,
        terminator_timeout=args.terminator_timeout,
        http2=args.http2,
        verify=verify,
        proxy=args.proxy,
    )
    progress = None if args.quiet else sys.stderr
    try:
        if embedded:
            return _doctor_embedded(args, options, progress)
        target, error = _target(args)
        if error is not None:
            print(f"httpx-drain doctor: {error}", file=sys.stderr)
            return 2
        if progress is not None:
            print(f"probing {target.method} {_redacted(target.url)}", file=progress)
        return _doctor_report(args, _doctor.run(target, options, progress))
    except KeyboardInterrupt:
        return 130


def _redacted(url: str) -> str:
    from ._redact import redact_url

    return redact_url(url)


def _doctor_embedded(args: argparse.Namespace, options: Any, progress: Any) -> int:
    from . import _doctor
    from .testing import RawServer, openai_chat

    with RawServer(openai_chat(events=5, terminator_delay=_EMBEDDED_DELAY)) as server:
        payload = {
            "model": _OPENAI_MODEL,
            "messages": [{"role": "user", "content": _PROMPT}],
            "stream": True,
        }
        target = _doctor.Target(
            method="POST",
            url=server.url + "/v1/chat/completions",
            headers=(("content-type", "application/json"),),
            body=json.dumps(payload).encode(),
            about=(
                "embedded replay server (no URL given): openai-chat, chunked terminator "
                f"{_ms(_EMBEDDED_DELAY)} after data: [DONE]"
            ),
        )
        if progress is not None:
            print(f"probing the embedded replay server at {server.url}", file=progress)

        def seen() -> dict[str, int]:
            facts = server.facts
            return {"connections": facts.connection_count, "requests": facts.request_count}

        report = _doctor.run(target, options, progress, server=seen)
    return _doctor_report(args, report)


def _doctor_report(args: argparse.Namespace, report: Any) -> int:
    from . import _doctor

    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        if not args.quiet:
            print(file=sys.stderr)
        print(_doctor.render_text(report))
    code: int = report.exit_code
    return code


# The parser.


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``httpx-drain`` command."""
    from .testing import PRESETS

    parser = argparse.ArgumentParser(
        prog="httpx-drain",
        description="Keep streaming HTTP/1.1 connections reusable under httpx and httpx2.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "doctor",
        help="probe a streaming endpoint with and without the transport",
        description=(
            "Probe a streaming endpoint N times per client: bare httpx reading each body to "
            "its end, bare httpx stopping at the terminal event as the SDKs do, and httpx + "
            "DrainTransport; report the connections each used, the HTTP version, keep-alive "
            "headers, when the chunked terminator arrives, and the settings to use. Without a "
            "URL it probes an embedded replay server. Exit code 0: fine, or fixed by the "
            "transport; 1: a problem the transport cannot fix; 2: usage."
        ),
        epilog=(
            "examples:  httpx-drain doctor  |  httpx-drain doctor --openai  |  "
            "httpx-drain doctor https://llm.internal/v1/chat/completions -H 'Authorization: "
            'Bearer ...\' -d \'{"model": "m", "stream": true, "messages": [...]}\'. '
            "Credential headers are never printed."
        ),
    )
    p.add_argument(
        "url",
        nargs="?",
        metavar="URL",
        help="the endpoint; with --openai/--anthropic, the base URL (default: the vendor's)",
    )
    p.add_argument("-n", "--requests", type=_positive, default=10, help="requests per client (10)")
    p.add_argument("-X", "--request", metavar="METHOD", help="method (GET, or POST with --data)")
    p.add_argument(
        "-H",
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="request header, repeatable",
    )
    p.add_argument(
        "-d", "--data", metavar="DATA", help="request body; @file reads a file, @- stdin"
    )
    vendor = p.add_mutually_exclusive_group()
    vendor.add_argument(
        "--openai",
        action="store_true",
        help="a streaming chat completion (POST /chat/completions, key from OPENAI_API_KEY; "
        "base URL from OPENAI_BASE_URL)",
    )
    vendor.add_argument(
        "--anthropic",
        action="store_true",
        help="a streaming message (POST /v1/messages, key from ANTHROPIC_API_KEY; base URL "
        "from ANTHROPIC_BASE_URL)",
    )
    p.add_argument(
        "--model",
        help=f"model for --openai ({_OPENAI_MODEL}) or --anthropic ({_ANTHROPIC_MODEL})",
    )
    p.add_argument(
        "--timeout",
        type=_duration,
        default=30.0,
        metavar="DURATION",
        help="cap on each request, and on each read (30s)",
    )
    p.add_argument(
        "--terminator-timeout",
        type=_duration,
        default=2.0,
        metavar="DURATION",
        help="how long to wait for the terminator after the terminal event (2s)",
    )
    p.add_argument("--http2", action="store_true", help="offer HTTP/2 (needs h2)")
    p.add_argument("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument("--cacert", metavar="FILE", help="CA certificates to verify the server with")
    p.add_argument(
        "--proxy",
        metavar="URL",
        help="proxy to go through (proxy environment variables are ignored, as httpx does "
        "for a client given a transport)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=doctor, parser=p)

    p = commands.add_parser(
        "replay",
        help="serve a replay-server scenario until stopped",
        description=(
            "Serve a streaming scenario on 127.0.0.1 for every request, until Ctrl-C or "
            "SIGTERM. Prints the base URL on stdout, then a line per request on stderr."
        ),
    )
    p.add_argument(
        "--scenario",
        choices=list(PRESETS),
        default="openai-chat",
        help="the preset to serve (openai-chat)",
    )
    p.add_argument("--events", type=_positive, default=5, help="content events (5)")
    p.add_argument(
        "--terminator-delay",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="delay from the last event to the chunked terminator, e.g. 50ms (0)",
    )
    p.add_argument(
        "--event-delay", type=_duration, default=0.0, metavar="DURATION", help="between events (0)"
    )
    ending = p.add_mutually_exclusive_group()
    ending.add_argument(
        "--no-terminator", action="store_true", help="close (FIN) instead of the terminator"
    )
    ending.add_argument(
        "--reset", action="store_true", help="reset (RST) instead of the terminator"
    )
    ending.add_argument(
        "--truncate", action="store_true", help="close in the middle of the last event"
    )
    p.add_argument("--split", action="store_true", help="split each event across two chunks")
    p.add_argument(
        "--connection-close",
        action="store_true",
        help="send Connection: close and close after each response",
    )
    p.add_argument(
        "--keep-alive-timeout",
        type=_duration,
        metavar="DURATION",
        help="close a connection idle this long after a response",
    )
    p.add_argument("--status", type=int, help="response status (200)")
    p.add_argument(
        "--backend",
        choices=("raw", "hypercorn"),
        default="raw",
        help="raw sockets (every fault) or hypercorn (a real ASGI server) (raw)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (any free one)")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per request")
    p.set_defaults(handler=replay)

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
    try:
        return handler(args)
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as command-line tools do.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, sys.stdout.fileno())
            finally:
                os.close(devnull)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
