"""Sans-IO pieces of the raw server: response plans and request parsing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeAlias

import h11

from ._gate import Gate
from ._scenario import (
    Chunk,
    Endless,
    Fin,
    Pause,
    Raw,
    RequestInfo,
    Reset,
    Scenario,
    Signal,
    Split,
    Step,
    Terminator,
    Trickle,
    WaitFor,
)

__all__ = [
    "Close",
    "Op",
    "Open",
    "Plan",
    "Repeat",
    "RequestParser",
    "Send",
    "Sleep",
    "Wait",
    "chunk",
    "plan",
    "terminator",
]


@dataclass(frozen=True)
class Send:
    """One write. ``completes``: the response's last byte is in it."""

    data: bytes
    completes: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Wait:
    gate: Gate


@dataclass(frozen=True)
class Open:
    gate: Gate


@dataclass(frozen=True)
class Close:
    """End the connection: FIN, or RST with ``reset``. ``completes`` for EOF framing."""

    reset: bool = False
    completes: bool = False


@dataclass(frozen=True)
class Repeat:
    """Write ``data`` again and again, ``interval`` seconds apart, until the peer goes."""

    data: bytes
    interval: float


Op: TypeAlias = Send | Sleep | Wait | Open | Close | Repeat


@dataclass(frozen=True)
class Plan:
    """What to do, in order, to replay one response. ``closes``: it ends the connection."""

    ops: tuple[Op, ...]
    closes: bool


def chunk(data: bytes) -> bytes:
    """``data`` framed as one chunk."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def terminator(trailers: Sequence[tuple[str, str]] = ()) -> bytes:
    """The last chunk with its trailer section."""
    fields = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in trailers)
    return b"0\r\n" + fields + b"\r\n"


def plan(scenario: Scenario) -> Plan:
    """Turn a scenario into the exact writes, waits and closes that replay it."""
    return _Planner(scenario).plan()


def _ends_body(step: Step) -> bool:
    return isinstance(step, Terminator) or (isinstance(step, Chunk) and step.terminator)


class _Planner:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.chunked = scenario.framing == "chunked"
        declared = scenario.header("content-length")
        # The length whose last byte completes a content-length response, when known.
        self.length: int | None = None
        if scenario.framing == "content-length":
            if declared is None:
                self.length = scenario.body_length()
            elif declared.isdigit():
                self.length = int(declared)
        self.add_length_header = scenario.framing == "content-length" and declared is None
        self.ops: list[Op] = []
        self.body_sent = 0
        self.done = False  # the last byte of the response has been planned

    def plan(self) -> Plan:
        scenario = self.scenario
        head = _head(scenario, self.length if self.add_length_header else None)
        self.done = self.length == 0
        self.ops.append(Send(head, completes=self.done))
        for step in scenario.steps:
            if isinstance(step, Fin | Reset):
                eof_end = scenario.framing == "eof" and isinstance(step, Fin) and not self.done
                self.ops.append(Close(reset=isinstance(step, Reset), completes=eof_end))
                return Plan(tuple(self.ops), closes=True)  # nothing after it reaches the client
            if isinstance(step, Endless):
                data = chunk(step.data) if self.chunked else step.data
                self.ops.append(Repeat(data, step.interval))
                return Plan(tuple(self.ops), closes=True)  # ends when the client leaves
            self.step(step)
        if self.chunked and not any(_ends_body(step) for step in scenario.steps):
            self.ops.append(Send(terminator(), completes=not self.done))
        elif scenario.framing == "eof":
            self.ops.append(Close(completes=not self.done))
            return Plan(tuple(self.ops), closes=True)
        return Plan(tuple(self.ops), closes=False)

    def step(self, step: Step) -> None:
        if isinstance(step, Chunk):
            self.body(step.data, last=step.terminator)
        elif isinstance(step, Split):
            for piece in step.pieces():
                self.body(piece)
        elif isinstance(step, Trickle):
            for offset in range(0, len(step.data), step.size):
                if offset:
                    self.ops.append(Sleep(step.interval))
                self.body(step.data[offset : offset + step.size])
        elif isinstance(step, Pause):
            self.ops.append(Sleep(step.seconds))
        elif isinstance(step, WaitFor):
            self.ops.append(Wait(step.gate))
        elif isinstance(step, Signal):
            self.ops.append(Open(step.gate))
        elif isinstance(step, Terminator):
            self.ops.append(Send(terminator(step.trailers), completes=not self.done))
            self.done = True
        elif isinstance(step, Raw):
            if step.data:
                self.ops.append(Send(step.data))
        else:  # pragma: no cover - Fin, Reset and Endless are handled by plan()
            raise TypeError(f"not a step: {step!r}")

    def body(self, data: bytes, *, last: bool = False) -> None:
        if not data and not last:
            return  # an empty chunk would read as the terminator
        if self.chunked:
            wire = (chunk(data) if data else b"") + (terminator() if last else b"")
            self.ops.append(Send(wire, completes=last and not self.done))
            self.done = self.done or last
            return
        before = self.body_sent
        self.body_sent += len(data)
        completes = self.length is not None and before < self.length <= self.body_sent
        self.ops.append(Send(data, completes=completes))
        self.done = self.done or completes


def _head(scenario: Scenario, content_length: int | None) -> bytes:
    try:
        reason = HTTPStatus(scenario.status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {scenario.status} {reason}".rstrip(" ")]
    lines += [f"{name}: {value}" for name, value in scenario.headers]
    if scenario.framing == "chunked" and scenario.header("transfer-encoding") is None:
        lines.append("transfer-encoding: chunked")
    if content_length is not None and scenario.framing == "content-length":
        lines.append(f"content-length: {content_length}")
    if scenario.connection_close and scenario.header("connection") is None:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class RequestParser:
    """Reads whole requests (head and body) from a byte stream, with h11.

    The raw server writes its responses by hand, so a fresh h11 connection parses each
    request and hands what follows it (a pipelined request) to the next one.
    """

    def __init__(self) -> None:
        self._h11 = h11.Connection(h11.SERVER)
        self._request: h11.Request | None = None
        self._body = bytearray()

    @property
    def pending(self) -> bool:
        """Whether part of a request has been received."""
        data, _ = self._h11.trailing_data
        return bool(data) or self._request is not None

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed its side."""
        self._h11.receive_data(data)

    def next_request(
        self, connection_index: int, request_index: int
    ) -> tuple[RequestInfo, bool] | None:
        """The next complete request and whether the client keeps the connection alive.

        ``None`` until a request is complete. Raises ``EOFError`` at a clean end of stream and
        ``h11.RemoteProtocolError`` on a malformed request or an end of stream inside one.
        """
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.ConnectionClosed):
                raise EOFError
            if isinstance(event, h11.Request):
                self._request = event
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage) and self._request is not None:
                request, body = self._request, bytes(self._body)
                self._next_cycle()
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
                info = RequestInfo(
                    method=request.method.decode("ascii"),
                    path=request.target.decode("latin-1"),
                    headers=headers,
                    body=body,
                    connection_index=connection_index,
                    request_index=request_index,
                )
                return info, _keep_alive(request)

    def _next_cycle(self) -> None:
        # h11 would insist on a response before the next request: start a new parser instead.
        leftover, closed = self._h11.trailing_data
        self._h11 = h11.Connection(h11.SERVER)
        self._request = None
        self._body = bytearray()
        if leftover:
            self._h11.receive_data(leftover)
        if closed:
            self._h11.receive_data(b"")


def _keep_alive(request: h11.Request) -> bool:
    tokens = {
        token.strip().lower()
        for name, value in request.headers
        if name == b"connection"
        for token in value.split(b",")
    }
    if request.http_version == b"1.0":
        return b"keep-alive" in tokens
    return b"close" not in tokens
