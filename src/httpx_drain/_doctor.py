"""``httpx-drain doctor``: probe a streaming endpoint, with and without the transport.

Three passes of ``probes`` requests each, one client per pass:

``read_to_end``
    The bare client reads every body to its end. Measures the endpoint: status, HTTP
    version, keep-alive headers, events, whether events arrive split across reads, and when
    the chunked terminator arrives after the terminal event (a timer on the raw stream).
``bare``
    The bare client stops at the terminal event and closes the response, as the SDKs do.
``drain``
    The same through ``AsyncDrainTransport()`` (defaults). Each request waits for the previous
    drain to finish, so the pass shows whether the transport *can* keep the connection; how
    soon an application sends its next request is its own business (see the recommendation).

Connections are counted client-side from httpcore's ``trace`` extension: one
``connection.connect_tcp.complete`` event per TCP connection opened, whatever the local port,
proxy or TLS. Everything printed goes through :mod:`._redact`.
"""

from __future__ import annotations

import dataclasses
import math
import ssl
import statistics
import textwrap
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import anyio
import httpx

from . import AsyncDrainTransport
from ._policy import DEFAULT_BACKGROUND_DEADLINE, DEFAULT_DEADLINE
from ._redact import SENSITIVE_HEADERS, redact_headers, redact_text, redact_url
from ._sse import SSEEvent, SSEScanner

__all__ = [
    "JSON_VERSION",
    "Finding",
    "Options",
    "Probe",
    "ProbePass",
    "Recommendation",
    "Report",
    "Target",
    "render_text",
    "run",
]

#: Bumped when a key of the ``--json`` output changes meaning or goes away.
JSON_VERSION = 1

# Response headers worth showing: framing and keep-alive, and who is in the way.
_SHOWN_HEADERS = (
    "connection",
    "keep-alive",
    "content-type",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "server",
    "via",
)
_EXCERPT = 300  # characters of an error body shown
_INSTANT = 0.001  # a terminator this close to the last event arrives with it, in practice


@dataclass(frozen=True)
class Target:
    """The request to probe with. ``about`` says where it comes from, for the report."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    about: str = ""

    def secrets(self) -> list[str]:
        """Credential values this request carries, to scrub from anything printed."""
        found = []
        for name, value in self.headers:
            if name.lower() in SENSITIVE_HEADERS:
                found.append(value)
                found += value.split()[1:]  # the token of "Bearer <token>"
        return found


@dataclass(frozen=True)
class Options:
    """How to probe."""

    probes: int = 10
    timeout: float = 30.0
    terminator_timeout: float = 2.0
    http2: bool = False
    verify: ssl.SSLContext | bool = True
    proxy: str | None = None


@dataclass
class Probe:
    """One request.

    ``end``: ``"end"`` (the body ended: chunked terminator, length, or close), ``"stopped"``
    (the client stopped at the terminal event), ``"no_terminator"`` (the server closed after
    the terminal event without ending the body), ``"truncated"`` (the body failed before the
    terminal event), ``"timeout"`` (no terminator within the timeout), ``"http_error"``,
    ``"not_streaming"`` or ``"error"`` (the request failed). ``delay``: seconds from the
    terminal event to the end of the body.
    """

    status: int | None = None
    http_version: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: int = 0
    split_events: int = 0
    terminal: str | None = None
    end: str = "error"
    delay: float | None = None
    error: str | None = None
    excerpt: str | None = None

    @property
    def streamed(self) -> bool:
        """A successful event-stream response (whatever happened to its end)."""
        return self.end not in ("http_error", "not_streaming", "error")

    def as_json(self) -> dict[str, Any]:
        """Stable keys; ``delay_ms``: terminal event to the end of the body."""
        return {
            "status": self.status,
            "http_version": self.http_version,
            "end": self.end,
            "events": self.events,
            "split_events": self.split_events,
            "terminal_event": self.terminal,
            "delay_ms": None if self.delay is None else round(self.delay * 1000, 3),
            "error": self.error,
        }


@dataclass
class ProbePass:
    """One client's requests and the TCP connections it opened for them."""

    key: str
    label: str
    probes: list[Probe] = field(default_factory=list)
    connections: int = 0
    stats: dict[str, int] | None = None

    def as_json(self) -> dict[str, Any]:
        """Stable keys."""
        return {
            "label": self.label,
            "requests": len(self.probes),
            "connections": self.connections,
            "failed": sum(not p.streamed for p in self.probes),
            "stats": self.stats,
            "probes": [p.as_json() for p in self.probes],
        }


@dataclass(frozen=True)
class Finding:
    """One conclusion. ``problem``: something the transport cannot fix (non-zero exit)."""

    id: str
    severity: Literal["ok", "info", "problem"]
    message: str


@dataclass(frozen=True)
class Recommendation:
    """Settings for ``DrainTransport``: ``code`` to paste; ``back_to_back`` for requests sent
    sooner after a stream ends than its terminator arrives (``None``: ``code`` covers them)."""

    mode: str
    deadline: float | None
    code: str
    back_to_back: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class Report:
    """Everything the doctor found."""

    target: Target
    options: Options
    passes: dict[str, ProbePass]
    findings: list[Finding]
    recommendation: Recommendation | None
    server: dict[str, int] | None = None  # what the embedded server saw

    @property
    def exit_code(self) -> int:
        """1 when a finding is a problem the transport cannot fix, else 0."""
        return int(any(f.severity == "problem" for f in self.findings))

    @property
    def measure(self) -> ProbePass:
        """The pass that read every body to its end."""
        return self.passes["read_to_end"]

    def delays(self) -> list[float]:
        """Seconds from the terminal event to the end of the body, per probe that had both."""
        return [p.delay for p in self.measure.probes if p.delay is not None]

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` output. Keys are stable (see :data:`JSON_VERSION`)."""
        measure = self.measure.probes
        streamed = [p for p in measure if p.streamed]
        delays = self.delays()
        first = streamed[0] if streamed else (measure[0] if measure else None)
        rec = self.recommendation
        return {
            "version": JSON_VERSION,
            "request": {
                "method": self.target.method,
                "url": redact_url(self.target.url),
                "headers": [list(h) for h in redact_headers(self.target.headers)],
                "body_bytes": len(self.target.body or b""),
                "about": self.target.about,
            },
            "probes": self.options.probes,
            "status": sorted({p.status for p in measure if p.status is not None}),
            "http_version": first.http_version if first else None,
            "headers": {name: _values(measure, name) for name in _SHOWN_HEADERS},
            "events": {
                "per_stream": _median_int([p.events for p in streamed]),
                "terminal_event": next((p.terminal for p in streamed if p.terminal), None),
                "split_events": sum(p.split_events for p in streamed),
                "streams_with_split_events": sum(p.split_events > 0 for p in streamed),
            },
            "terminator": {
                "arrived": sum(p.end == "end" and p.terminal is not None for p in measure),
                "missing": sum(p.end == "no_terminator" for p in measure),
                "timed_out": sum(p.end == "timeout" for p in measure),
                "timeout_s": self.options.terminator_timeout,
                "delay_ms": _summary_ms(delays),
            },
            "clients": {key: p.as_json() for key, p in self.passes.items()},
            "server": self.server,
            "findings": [
                {"id": f.id, "severity": f.severity, "message": f.message} for f in self.findings
            ],
            "verdict": self.verdict().id,
            "recommendation": None
            if rec is None
            else {
                "mode": rec.mode,
                "deadline": rec.deadline,
                "code": rec.code,
                "back_to_back": rec.back_to_back,
                "notes": list(rec.notes),
            },
            "exit_code": self.exit_code,
        }

    def verdict(self) -> Finding:
        """The headline: the first problem, else the first ``ok`` finding."""
        for severity in ("problem", "ok", "info"):
            for finding in self.findings:
                if finding.severity == severity:
                    return finding
        return Finding("unknown", "info", "nothing to report")


def _values(probes: list[Probe], name: str) -> list[str]:
    seen: dict[str, None] = {}
    for probe in probes:
        if name in probe.headers:
            seen[probe.headers[name]] = None
    return list(seen)


def _median_int(values: list[int]) -> int | None:
    return int(statistics.median(values)) if values else None


def _summary_ms(delays: list[float]) -> dict[str, float] | None:
    if not delays:
        return None
    return {
        "min": round(min(delays) * 1000, 3),
        "median": round(statistics.median(delays) * 1000, 3),
        "max": round(max(delays) * 1000, 3),
    }


# Probing.


class _Tracer:
    """Counts TCP connections from httpcore's trace events."""

    def __init__(self) -> None:
        self.connections = 0

    async def __call__(self, name: str, info: Mapping[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            self.connections += 1


def _describe(event: SSEEvent | None) -> str | None:
    if event is None:
        return None  # pragma: no cover - the scanner sets terminal_event with terminal_seen
    if event.event != "message":
        return f"event: {event.event}"
    return f"data: {event.data[:40]}"


async def _probe(
    client: httpx.AsyncClient,
    target: Target,
    options: Options,
    tracer: _Tracer,
    *,
    stop_at_terminal: bool,
) -> Probe:
    probe = Probe()
    secrets = target.secrets()
    with anyio.move_on_after(options.timeout) as overall:
        try:
            async with client.stream(
                target.method,
                target.url,
                headers=list(target.headers),
                content=target.body,
                extensions={"trace": tracer},
            ) as response:
                await _read(response, probe, options, secrets, stop_at_terminal=stop_at_terminal)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            probe.error = redact_text(f"{type(exc).__name__}: {exc}", secrets)
            if probe.end == "error" and probe.status is not None:
                # The body failed: before the terminal event, or after it: a server that
                # closed without the terminator, or one that kept it back past --timeout.
                if not probe.terminal:
                    probe.end = "truncated"
                elif isinstance(exc, httpx.TimeoutException):
                    probe.end = "timeout"
                else:
                    probe.end = "no_terminator"
    if overall.cancelled_caught:
        probe.end = "timeout" if probe.terminal else "error"
        probe.error = f"no complete answer within {options.timeout:g} s (--timeout)"
    return probe


async def _read(
    response: httpx.Response,
    probe: Probe,
    options: Options,
    secrets: list[str],
    *,
    stop_at_terminal: bool,
) -> None:
    probe.status = response.status_code
    probe.http_version = response.http_version
    probe.headers = {
        name: response.headers[name] for name in _SHOWN_HEADERS if name in response.headers
    }
    content_type = response.headers.get("content-type", "")
    if response.status_code >= 400 or not content_type.startswith("text/event-stream"):
        probe.end = "http_error" if response.status_code >= 400 else "not_streaming"
        excerpt = b""
        async for chunk in response.aiter_bytes():
            excerpt += chunk
            if len(excerpt) >= _EXCERPT * 4:
                break
        text = excerpt.decode("utf-8", "replace").strip()
        probe.excerpt = redact_text(" ".join(text.split())[:_EXCERPT], secrets)
        return
    scanner = SSEScanner()
    split_at = -1  # index of the last event counted as split
    terminal_at: float | None = None
    # No deadline until the terminal event; then --terminator-timeout for the rest.
    with anyio.CancelScope() as wait:
        async for chunk in response.aiter_bytes():
            now = time.perf_counter()
            scanner.feed(chunk)
            probe.events = scanner.events
            # A read that ends inside an event: the consumer got part of it.
            if scanner.partial_size and scanner.events != split_at:
                split_at = scanner.events
                probe.split_events += 1
            if terminal_at is None and scanner.terminal_seen:
                terminal_at = now
                probe.terminal = _describe(scanner.terminal_event)
                if stop_at_terminal:
                    probe.end = "stopped"
                    return
                wait.deadline = anyio.current_time() + options.terminator_timeout
        probe.end = "end"
        if terminal_at is not None:
            probe.delay = time.perf_counter() - terminal_at
    if wait.cancelled_caught:
        probe.end = "timeout"


async def _wait_drained(transport: AsyncDrainTransport, limit: float) -> None:
    # A drain is over once it is counted under one of its outcomes.
    stats = transport.stats
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        snap = stats.snapshot()
        finished = (
            snap.connections_kept
            + snap.deadline_exceeded
            + snap.max_bytes_exceeded
            + snap.drain_errors
            + snap.drains_rejected
        )
        if finished >= snap.drains_started:
            return
        await anyio.sleep(0.001)


Progress = Callable[[str], None]


async def _run_pass(
    probe_pass: ProbePass,
    make_client: Callable[[], httpx.AsyncClient],
    target: Target,
    options: Options,
    progress: Progress,
    *,
    stop_at_terminal: bool,
    between: Callable[[], Awaitable[None]] | None = None,
    stop_early: bool = False,
) -> None:
    tracer = _Tracer()
    progress(f"  {probe_pass.label:<54} ")
    async with make_client() as client:
        for _ in range(options.probes):
            probe = await _probe(client, target, options, tracer, stop_at_terminal=stop_at_terminal)
            probe_pass.probes.append(probe)
            progress("." if probe.streamed and probe.end != "timeout" else "x")
            if stop_early and not probe.streamed:
                break  # an error or a plain response: no point asking again (and paying for it)
            if between is not None:
                await between()
    probe_pass.connections = tracer.connections
    progress(f" {_plural(tracer.connections, 'connection')}\n")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _deadline_for(delays: list[float]) -> float | None:
    """The background deadline for terminators this late: ``None`` when the default covers it."""
    if not delays or max(delays) * 1.5 <= DEFAULT_BACKGROUND_DEADLINE:
        return None
    return _round_up(max(delays) * 1.5, 0.5)


async def _probe_all(target: Target, options: Options, progress: Progress) -> dict[str, ProbePass]:
    def transport_options() -> dict[str, Any]:
        return {"verify": options.verify, "http2": options.http2, "proxy": options.proxy}

    timeout = httpx.Timeout(options.timeout)

    def bare() -> httpx.AsyncClient:
        # An explicit transport, like the one wrapped below: httpx then ignores proxy
        # variables in both clients alike (it does so whenever transport= is given).
        return httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(**transport_options()), timeout=timeout
        )

    measure = ProbePass("read_to_end", "httpx, reads each body to its end")
    await _run_pass(
        measure, bare, target, options, progress, stop_at_terminal=False, stop_early=True
    )
    if not measure.probes or not measure.probes[0].streamed:
        return {"read_to_end": measure}
    passes = {
        "read_to_end": measure,
        "bare": ProbePass("bare", "httpx, stops at the terminal event (as SDKs do)"),
    }
    await _run_pass(passes["bare"], bare, target, options, progress, stop_at_terminal=True)

    # The transport as the recommendation will have it: the doctor checks its own advice.
    delays = [p.delay for p in measure.probes if p.delay is not None]
    deadline = _deadline_for(delays)
    drain_transport = AsyncDrainTransport(deadline=deadline, **transport_options())
    settings = "" if deadline is None else f"deadline={deadline:g}"
    label = f"httpx + DrainTransport({settings}), stops at the terminal event"
    passes["drain"] = ProbePass("drain", label)

    def ours() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=drain_transport, timeout=timeout)

    # Wait for each drain only when terminators do arrive: a drain waiting for one that
    # never comes would only run into its deadline, once per request.
    limit = drain_transport.policy.deadline + 0.25 if delays else 0.0

    async def settle() -> None:
        await _wait_drained(drain_transport, limit)

    await _run_pass(
        passes["drain"], ours, target, options, progress, stop_at_terminal=True, between=settle
    )
    passes["drain"].stats = drain_transport.stats.snapshot().as_dict()
    return passes


# Conclusions.


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def _round_up(seconds: float, step: float) -> float:
    return round(math.ceil(seconds / step - 1e-9) * step, 3)


def _findings(passes: dict[str, ProbePass], options: Options) -> list[Finding]:
    measure = passes["read_to_end"]
    everything = [p for pp in passes.values() for p in pp.probes]
    found = _failures(everything)
    streamed = [p for p in measure.probes if p.streamed]
    if streamed:
        found += _endings(measure, everything, options)
        found += _shape(streamed)
        found += _comparison(passes, found)
    return found


def _failures(everything: list[Probe]) -> list[Finding]:
    found = []
    failed = [p for p in everything if p.end == "error"]
    if failed:
        found.append(
            Finding(
                "request_failed",
                "problem",
                f"{len(failed)} of {len(everything)} requests failed: {failed[0].error}",
            )
        )
    errors = [p for p in everything if p.end == "http_error"]
    if errors:
        statuses = ", ".join(str(s) for s in sorted({p.status for p in errors if p.status}))
        excerpt = f": {errors[0].excerpt[:120]}" if errors[0].excerpt else ""
        found.append(
            Finding("server_error", "problem", f"the server answered HTTP {statuses}{excerpt}")
        )
    plain = [p for p in everything if p.end == "not_streaming"]
    if plain:
        kind = plain[0].headers.get("content-type", "no content-type")
        found.append(
            Finding(
                "not_streaming",
                "problem",
                f"the response is not an event stream ({kind}): nothing streams, nothing to "
                "drain (does the request ask for stream: true?)",
            )
        )
    return found


def _endings(measure: ProbePass, everything: list[Probe], options: Options) -> list[Finding]:
    """How the bodies end, and whether the server keeps connections at all."""
    found = []
    streamed = [p for p in measure.probes if p.streamed]
    http2 = any(p.http_version == "HTTP/2" for p in streamed)
    if http2:
        found.append(
            Finding(
                "http2",
                "ok",
                "HTTP/2: a stream closed early is cancelled (RST_STREAM) and the connection "
                "stays open; there is nothing to drain, and DrainTransport does not get in the way",
            )
        )
    truncated = [p for p in everything if p.end == "truncated"]
    if truncated:
        found.append(
            Finding(
                "truncated",
                "problem",
                f"{len(truncated)} of {len(everything)} streams were cut off before their "
                f"terminal event ({truncated[0].error}); with DrainTransport they raise "
                "IncompleteStreamError",
            )
        )
    missing = [p for p in streamed if p.end == "no_terminator"]
    if missing:
        found.append(
            Finding(
                "no_terminator",
                "problem" if len(missing) == len(streamed) else "info",
                f"in {len(missing)} of {len(streamed)} streams the server closed the connection "
                "after the terminal event without the chunked terminator: there is no "
                "connection to reuse. DrainTransport makes that a clean end of stream instead "
                "of a RemoteProtocolError",
            )
        )
    timed_out = [p for p in streamed if p.end == "timeout"]
    if timed_out:
        found.append(
            Finding(
                "terminator_timeout",
                "problem" if len(timed_out) == len(streamed) else "info",
                f"in {len(timed_out)} of {len(streamed)} streams the terminator did not arrive "
                f"within {options.terminator_timeout:g} s of the terminal event: a drain cannot "
                "keep such a connection",
            )
        )
    n = len(measure.probes)
    if all("close" in p.headers.get("connection", "").lower() for p in streamed):
        found.append(
            Finding(
                "connection_close",
                "problem",
                "every response says Connection: close: the server ends each connection, "
                "there is nothing to reuse",
            )
        )
    elif n > 1 and measure.connections >= n and not (missing or timed_out or truncated or http2):
        found.append(
            Finding(
                "no_keep_alive",
                "problem",
                f"even reading every body to its end took {measure.connections} connections "
                f"for {n} requests: the server (or a proxy) closes them",
            )
        )
    if not any(p.terminal for p in streamed) and not (timed_out or truncated):
        found.append(
            Finding(
                "no_terminal_event",
                "info",
                "no terminal event the transport knows (data: [DONE], message_stop, "
                "response.completed, ...): clients read such streams to their end and keep "
                "the connection; if yours has a last event, pass terminal=",
            )
        )
    return found


def _shape(streamed: list[Probe]) -> list[Finding]:
    """How the events arrive, and how late the terminator comes."""
    found = []
    split = sum(p.split_events for p in streamed)
    if split:
        found.append(
            Finding(
                "split_events",
                "info",
                f"{split} events arrived split across reads (in "
                f"{sum(p.split_events > 0 for p in streamed)} of {len(streamed)} streams): "
                "harmless for the SDKs, which buffer lines; align_events=True hands a parser "
                "of your own whole events only",
            )
        )
    delays = [p.delay for p in streamed if p.delay is not None]
    if delays and max(delays) > DEFAULT_BACKGROUND_DEADLINE:
        found.append(
            Finding(
                "slow_terminator",
                "info",
                f"the terminator arrives up to {_ms(max(delays))} after the terminal event, "
                f"later than the default deadline ({DEFAULT_BACKGROUND_DEADLINE:g} s)",
            )
        )
    return found


def _comparison(passes: dict[str, ProbePass], found: list[Finding]) -> list[Finding]:
    """The SDK pattern without and with the transport."""
    bare, drain = passes.get("bare"), passes.get("drain")
    if bare is None or drain is None or not bare.probes:
        return []  # pragma: no cover - _probe_all runs all three passes once one streamed
    b, d, k = bare.connections, drain.connections, len(bare.probes)
    if k < 2:
        return [Finding("one_request", "info", "one request per client cannot show reuse: -n 2")]
    if b <= 1:
        message = f"{_plural(b, 'connection')} for {k} streams without the transport"
        return [Finding("already_reused", "ok", message + ": nothing to fix")]
    if d < b:
        message = f"{b} connections for {k} streams without the transport, {d} with DrainTransport"
        return [Finding("fixed", "ok", message)]
    if any(f.severity == "problem" for f in found):
        return []  # explained already
    return [
        Finding(
            "not_fixed",
            "problem",
            f"DrainTransport did not keep the connection ({d} connections for {k} streams; "
            f"drain counters: {_stats_line(drain.stats)})",
        )
    ]


def _stats_line(stats: dict[str, int] | None) -> str:
    if not stats:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in stats.items() if v)


def _recommend(passes: dict[str, ProbePass], findings: list[Finding]) -> Recommendation | None:
    ids = {f.id for f in findings}
    if "drain" not in passes or ids & {"request_failed", "server_error", "not_streaming"}:
        return None
    plain = Recommendation("background", None, "DrainTransport()")
    if any(f.severity == "problem" for f in findings) or "http2" in ids:
        return plain  # harmless, and it turns broken endings into clean or typed ones
    notes = []
    if "split_events" in ids:
        notes.append("align_events=True if your own code parses events chunk by chunk")
    delays = [p.delay for p in passes["read_to_end"].probes if p.delay is not None]
    if not delays:
        return dataclasses.replace(plain, notes=tuple(notes))
    worst = max(delays)
    deadline = _deadline_for(delays)
    if deadline is not None:
        notes.append(
            f"the terminator arrives up to {_ms(worst)} after the terminal event: a background "
            f"drain waits up to {deadline:g} s for it"
        )
        code = f"DrainTransport(deadline={deadline:g})"
        return Recommendation("background", deadline, code, None, tuple(notes))
    back_to_back: str | None = None
    if worst <= _INSTANT:
        notes.append("the terminator arrives with the terminal event: close() consumes it at once")
    elif worst * 1.5 <= DEFAULT_DEADLINE:
        back_to_back = 'DrainTransport(mode="inline")'
    elif worst * 1.5 <= 0.5:
        back_to_back = f'DrainTransport(mode="inline", deadline={_round_up(worst * 1.5, 0.01):g})'
    if worst > _INSTANT:
        note = (
            f"requests sent sooner than {_ms(worst)} after a stream ends find its connection "
            "still draining and open another"
        )
        if back_to_back is not None:
            note += f"; {back_to_back} keeps one at the cost of up to {_ms(worst)} per request"
        notes.append(note)
    return Recommendation("background", None, "DrainTransport()", back_to_back, tuple(notes))


def run(
    target: Target,
    options: Options,
    progress: IO[str] | None = None,
    server: Callable[[], dict[str, int]] | None = None,
) -> Report:
    """Probe ``target`` and conclude. ``progress`` gets a line per pass as it goes.

    ``server`` reports what an embedded server saw, once the probing is done.
    """

    def say(text: str) -> None:
        if progress is not None:
            progress.write(text)
            progress.flush()

    passes = anyio.run(_probe_all, target, options, say, backend="asyncio")
    findings = _findings(passes, options)
    return Report(
        target=target,
        options=options,
        passes=passes,
        findings=findings,
        recommendation=_recommend(passes, findings),
        server=server() if server is not None else None,
    )


# The report for people.


def render_text(report: Report) -> str:
    """The report as a short table, for a terminal."""
    target = report.target
    lines = [f"{'request':<12}{target.method} {redact_url(target.url)}"]
    if target.about:
        lines.append(f"{'':<12}{target.about}")
    shown = redact_headers(target.headers)
    if shown:
        lines.append(f"{'':<12}" + ", ".join(f"{k}: {v}" for k, v in shown))
    lines.append("")
    lines += _render_response(report)
    lines.append("")
    lines += _render_clients(report)
    lines.append("")
    lines += _render_verdict(report)
    return "\n".join(lines)


def _render_response(report: Report) -> list[str]:
    measure = report.measure.probes
    streamed = [p for p in measure if p.streamed]
    first = streamed[0] if streamed else (measure[0] if measure else None)
    if first is None or first.status is None:
        return []
    statuses = "/".join(str(s) for s in sorted({p.status for p in measure if p.status}))
    if first.http_version == "HTTP/2":
        framing = ""  # frames, not a header, end an HTTP/2 body
    elif "transfer-encoding" in first.headers:
        framing = first.headers["transfer-encoding"]
    elif "content-length" in first.headers:
        framing = f"content-length {first.headers['content-length']}"
    else:
        framing = "no length (the body ends when the server closes)"
    content_type = first.headers.get("content-type", "no content-type")
    framing = f", {framing}" if framing else ""
    lines = [f"{'response':<12}{statuses} {content_type}, {first.http_version}{framing}"]
    keep = ", ".join(
        f"{name.title()}: {' | '.join(_values(measure, name)) or 'absent'}"
        for name in ("connection", "keep-alive")
    )
    lines.append(f"{'keep-alive':<12}{keep}")
    via = [
        f"{n}: {' | '.join(_values(measure, n))}" for n in ("server", "via") if _values(measure, n)
    ]
    if via:
        lines.append(f"{'served by':<12}{', '.join(via)}")
    if not streamed:
        if first.excerpt:
            lines.append(f"{'body':<12}{first.excerpt}")
        return lines
    data = report.as_json()
    events = data["events"]
    last = events["terminal_event"] or "no terminal event"
    split = events["split_events"] or "none"
    lines.append(
        f"{'events':<12}{events['per_stream']} per stream, last: {last}; {split} split across reads"
    )
    with_terminal = [p for p in streamed if p.terminal]
    close_delimited = framing.endswith("(the body ends when the server closes)")
    if with_terminal and close_delimited:
        # No framing, so no terminator: what ended each body was the server closing.
        closed = report.delays()
        summary = "none: without a length, each body ended when the server closed"
        if closed:
            summary += f" ({_ms(statistics.median(closed))} after the terminal event, median)"
        lines.append(f"{'terminator':<12}{summary}")
    elif with_terminal:
        term = data["terminator"]
        summary = f"{term['arrived']} of {len(with_terminal)} arrived"
        if term["missing"]:
            summary += f", {term['missing']} missing (the server closed instead)"
        if term["timed_out"]:
            summary += f", {term['timed_out']} not within {report.options.terminator_timeout:g} s"
        delays = report.delays()
        if delays:
            summary += (
                f"; after the terminal event: min {_ms(min(delays))}, "
                f"median {_ms(statistics.median(delays))}, max {_ms(max(delays))}"
            )
        lines.append(f"{'terminator':<12}{summary}")
    return lines


def _render_clients(report: Report) -> list[str]:
    rows = [report.passes[k] for k in ("bare", "drain", "read_to_end") if k in report.passes]
    width = max(len(p.label) for p in rows)
    lines = [f"{'client':<{width}}  connections  requests"]
    for row in rows:
        line = f"{row.label:<{width}}  {row.connections:>11}  {len(row.probes):>8}"
        if row.stats is not None and row.stats.get("streams_cancelled"):
            line += f"  ({row.stats['streams_cancelled']} HTTP/2 streams cancelled)"
        elif row.stats is not None:
            line += f"  ({row.stats.get('connections_kept', 0)} kept by drains)"
        lines.append(line)
    if report.server is not None:
        lines.append(
            f"(the embedded server saw {_plural(report.server['connections'], 'connection')} "
            f"for {_plural(report.server['requests'], 'request')})"
        )
    return lines


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=100,
        initial_indent=f"{label:<12}",
        subsequent_indent=" " * 14,
        break_on_hyphens=False,
    )


def _render_verdict(report: Report) -> list[str]:
    verdict = report.verdict()
    lines = _wrapped("verdict", f"{verdict.id}: {verdict.message}")
    for finding in report.findings:
        if finding is not verdict and finding.severity != "ok":
            lines += _wrapped("", f"{finding.severity}: {finding.message}")
    rec = report.recommendation
    if rec is not None:
        lines.append(f"{'use':<12}{rec.code}")
        for note in rec.notes:
            lines += _wrapped("", note)
    lines.append(f"{'exit code':<12}{report.exit_code}")
    return lines
