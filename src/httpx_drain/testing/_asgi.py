"""Scenarios as ASGI apps, and the per-connection bookkeeping the hypercorn servers share."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TypeAlias

import anyio

from ._facts import ServerFacts
from ._scenario import (
    Chunk,
    Endless,
    Fin,
    Pause,
    Raw,
    RequestInfo,
    Reset,
    Scenario,
    ScenarioSource,
    Signal,
    Split,
    Terminator,
    Trickle,
    UnsupportedStep,
    WaitFor,
    resolve,
)

__all__ = [
    "ASGIApp",
    "ConnectionState",
    "Phase",
    "Receive",
    "RecordingMiddleware",
    "ResponseState",
    "ScenarioApp",
    "Scope",
    "Send",
    "Tracker",
    "check_asgi",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]


def check_asgi(scenario: Scenario) -> None:
    """Raise :class:`UnsupportedStep` if an ASGI server cannot replay ``scenario``."""
    if scenario.framing == "eof":
        raise UnsupportedStep("ASGI servers pick the framing; 'eof' framing needs RawServer")
    if scenario.status < 200:
        raise UnsupportedStep(
            f"hypercorn cannot end a response with status {scenario.status} (1xx is "
            "informational, not final); use RawServer"
        )
    declared = scenario.header("content-length")
    if declared is not None and declared != str(scenario.body_length()):
        raise UnsupportedStep(
            "h11 refuses a body that does not match its Content-Length; use RawServer"
        )
    finished = False
    for step in scenario.steps:
        if isinstance(step, Raw | Reset):
            raise UnsupportedStep(f"{type(step).__name__} needs RawServer (ASGI has no raw socket)")
        if isinstance(step, Terminator) and step.trailers:
            raise UnsupportedStep("hypercorn sends no HTTP/1.1 trailers; use RawServer")
        if finished and isinstance(step, Chunk | Split | Trickle | Endless | Terminator | Fin):
            raise UnsupportedStep(f"{step!r} after the terminator needs RawServer")
        if isinstance(step, Terminator) or (isinstance(step, Chunk) and step.terminator):
            finished = True
        if isinstance(step, Fin | Endless):
            break  # the rest is unreachable


class Phase(enum.Enum):
    RESPONDING = "responding"  # request read, response not fully handed to the server
    FINISHING = "finishing"  # the last body message is being sent
    DONE = "done"


class ResponseState:
    """One response in progress (HTTP/2 runs several at once on a connection)."""

    __slots__ = ("phase", "write_failed")

    def __init__(self) -> None:
        self.phase = Phase.RESPONDING
        self.write_failed = False


class ConnectionState:
    """One connection, seen from the wire (byte counts, write errors) and from ASGI."""

    __slots__ = ("closed", "index", "responses")

    def __init__(self, index: int) -> None:
        self.index = index
        self.closed = False
        self.responses: set[ResponseState] = set()

    @contextmanager
    def response(self) -> Iterator[ResponseState]:
        """Track one response from its request to its end."""
        state = ResponseState()
        self.responses.add(state)
        try:
            yield state
        finally:
            state.phase = Phase.DONE
            self.responses.discard(state)


class Tracker:
    """The connections of one server, and the app scopes to cancel when it stops."""

    def __init__(self, facts: ServerFacts, *, wire_level: bool = False) -> None:
        self.facts = facts
        self.wire_level = wire_level  # the server counts bytes on the wire, not the app
        self.stopping = False
        self._by_peer: dict[tuple[str, int], ConnectionState] = {}
        self._scopes: set[anyio.CancelScope] = set()
        self._stop_requested: anyio.Event | None = None

    def opened(self, peer: tuple[str, int]) -> ConnectionState:
        state = ConnectionState(self.facts.connection_opened(peer))
        self._by_peer[peer] = state
        return state

    def closed(self, state: ConnectionState) -> None:
        """The connection ended, or the client closed its side: record it once."""
        if not state.closed:
            state.closed = True
            self.facts.connection_closed(state.index)

    def lookup(self, scope: Scope) -> ConnectionState:
        """The connection a request came on; a new one for a peer never seen."""
        client = scope.get("client") or ("", 0)
        peer = (str(client[0]), int(client[1]))
        state = self._by_peer.get(peer)
        return state if state is not None else self.opened(peer)

    def bytes_written(self, state: ConnectionState, n: int) -> None:
        self.facts.bytes_written(state.index, n)

    def write_failed(self, state: ConnectionState) -> None:
        """A write to the client failed: early if a response was in progress."""
        unfinished = [r for r in state.responses if r.phase is not Phase.DONE]
        for response in unfinished:
            response.write_failed = True
        if unfinished:
            self.client_left(state)

    def response_completed(self, conn: ConnectionState, response: ResponseState) -> None:
        """Count the response before its last message goes out; see ServerFacts."""
        response.phase = Phase.FINISHING
        self.facts.response_completed(conn.index)

    def response_sent(
        self, conn: ConnectionState, response: ResponseState, *, failed: bool
    ) -> None:
        """The last message went out: take the count back if writing it failed."""
        response.phase = Phase.DONE
        if failed or response.write_failed:
            self.facts.response_failed(conn.index)

    def client_left(self, state: ConnectionState) -> None:
        if not self.stopping:
            self.facts.client_closed_early(state.index)

    # Stopping. Everything below runs in the event loop of the server.

    def arm(self) -> anyio.Event:
        """Create the event :meth:`stop` sets, in the server's event loop."""
        self._stop_requested = anyio.Event()
        return self._stop_requested

    def stop(self) -> None:
        """Abort every running app (a step blocked on a gate, an endless stream)."""
        self.stopping = True
        if self._stop_requested is not None:
            self._stop_requested.set()
        for scope in self._scopes:
            scope.cancel()

    @contextmanager
    def app_scope(self) -> Iterator[anyio.CancelScope]:
        with anyio.CancelScope() as scope:
            if self.stopping:
                scope.cancel()
            self._scopes.add(scope)
            try:
                yield scope
            finally:
                self._scopes.discard(scope)


class ScenarioApp:
    """An ASGI app that replays a scenario and records what it saw in ``facts``.

    Supports the steps ASGI can express: body messages, pauses, gates, the end of the body;
    ``Fin`` returns mid-body, which makes hypercorn close the connection without a
    terminator. :class:`UnsupportedStep` is raised for the others, at construction for a
    fixed scenario. Used on its own (under another server) it counts connections by client
    address and bytes as body bytes, and never sees a connection close.
    """

    def __init__(
        self,
        scenario: ScenarioSource,
        facts: ServerFacts | None = None,
        *,
        tracker: Tracker | None = None,
    ) -> None:
        if isinstance(scenario, Scenario):
            check_asgi(scenario)
        self._source = scenario
        self._tracker = tracker if tracker is not None else Tracker(facts or ServerFacts())
        self.facts = self._tracker.facts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        conn = self._tracker.lookup(scope)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        request_index = self.facts.request_received(conn.index)
        info = RequestInfo(
            method=str(scope["method"]),
            path=_target(scope),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=bytes(body),
            connection_index=conn.index,
            request_index=request_index,
        )
        try:
            scenario = resolve(self._source, info)
            check_asgi(scenario)
        except Exception as exc:
            self.facts.error(exc)
            raise
        await _Replay(scenario, conn, self._tracker, send).run(receive)


class _Replay:
    """One response of a scenario, as ASGI messages."""

    def __init__(
        self, scenario: Scenario, conn: ConnectionState, tracker: Tracker, send: Send
    ) -> None:
        self._scenario = scenario
        self._conn = conn
        self._tracker = tracker
        self._send = send
        self._response = ResponseState()
        self._ended = False  # the message with more_body=False went out
        self._body_sent = 0
        self._length = scenario.body_length() if scenario.framing == "content-length" else None

    async def run(self, receive: Receive) -> None:
        with self._conn.response() as self._response, self._tracker.app_scope():
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._watch, receive, tasks.cancel_scope)
                try:
                    await self._message(
                        {
                            "type": "http.response.start",
                            "status": self._scenario.status,
                            "headers": self._headers(),
                        }
                    )
                    await self._steps()
                except _SendFailed:
                    pass  # recorded as an error; the response ends here
                tasks.cancel_scope.cancel()

    def _headers(self) -> list[tuple[bytes, bytes]]:
        scenario = self._scenario
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in scenario.headers]
        if scenario.framing == "content-length" and scenario.header("content-length") is None:
            headers.append((b"content-length", str(scenario.body_length()).encode()))
        if scenario.connection_close and scenario.header("connection") is None:
            headers.append((b"connection", b"close"))
        return headers

    async def _watch(self, receive: Receive, replay: anyio.CancelScope) -> None:
        # hypercorn delivers http.disconnect when the client leaves, and also after every
        # complete response: only a disconnect while the body is being produced is early.
        while (await receive())["type"] != "http.disconnect":
            pass  # pragma: no cover - after the body, servers send only http.disconnect
        if self._response.phase is Phase.RESPONDING:
            self._tracker.client_left(self._conn)
            replay.cancel()

    async def _steps(self) -> None:
        for step in self._scenario.steps:
            if isinstance(step, Chunk):
                await self._body(step.data, more=not step.terminator)
            elif isinstance(step, Split):
                for piece in step.pieces():
                    await self._body(piece)
            elif isinstance(step, Trickle):
                for offset in range(0, len(step.data), step.size):
                    if offset:
                        await anyio.sleep(step.interval)
                    await self._body(step.data[offset : offset + step.size])
            elif isinstance(step, Pause):
                await anyio.sleep(step.seconds)
            elif isinstance(step, WaitFor):
                await step.gate.wait_async()
            elif isinstance(step, Signal):
                step.gate.set()
            elif isinstance(step, Terminator):
                await self._body(b"", more=False)
            elif isinstance(step, Fin):
                return  # hypercorn closes a connection whose app returned mid-body
            elif isinstance(step, Endless):
                while True:
                    await self._body(step.data)
                    await anyio.sleep(step.interval)  # a checkpoint even at 0 s
        if not self._ended:
            await self._body(b"", more=False)

    async def _message(self, message: Message) -> None:
        try:
            await self._send(message)
        except Exception as exc:
            # hypercorn drops, silently, what an app sends to a client that has gone (the
            # disconnect reaches _watch): an exception is the server refusing this message,
            # which the checks above should have caught. The scenario's fault, not the client's.
            self._tracker.facts.error(exc)
            raise _SendFailed from exc

    async def _body(self, data: bytes, *, more: bool = True) -> None:
        if not data and more:
            return  # an empty message would add nothing
        before, self._body_sent = self._body_sent, self._body_sent + len(data)
        # The last byte the client waits for: the end of the body, or the Content-Length-th.
        last_byte = not more or (
            self._length is not None and before < self._length <= self._body_sent
        )
        counted_here = last_byte and self._response.phase is Phase.RESPONDING
        if counted_here:
            # Counted first: the client may have read the last byte before send returns.
            self._tracker.response_completed(self._conn, self._response)
        try:
            await self._message({"type": "http.response.body", "body": data, "more_body": more})
        except _SendFailed:
            if counted_here:
                self._tracker.response_sent(self._conn, self._response, failed=True)
            raise
        if not self._tracker.wire_level:
            self._tracker.bytes_written(self._conn, len(data))
        if counted_here:
            self._tracker.response_sent(self._conn, self._response, failed=False)
        self._ended = not more


class _SendFailed(Exception):
    """The server refused to send an ASGI message (recorded in the facts' errors)."""


class RecordingMiddleware:
    """Wraps any ASGI app so that a server records requests and responses for it."""

    def __init__(self, app: ASGIApp, tracker: Tracker) -> None:
        self._app = app
        self._tracker = tracker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        tracker = self._tracker
        conn = tracker.lookup(scope)
        tracker.facts.request_received(conn.index)
        with conn.response() as response, tracker.app_scope():

            async def receive_recorded() -> Message:
                message = await receive()
                if message["type"] == "http.disconnect" and response.phase is Phase.RESPONDING:
                    tracker.client_left(conn)
                return message

            async def send_recorded(message: Message) -> None:
                last = message["type"] == "http.response.body" and not message.get("more_body")
                if last:
                    tracker.response_completed(conn, response)
                try:
                    await send(message)
                except Exception:
                    # The server refused the message (it drops, silently, what goes to a client
                    # that has gone): the app's fault, which it sees raised; not an early close.
                    if last:
                        tracker.response_sent(conn, response, failed=True)
                    raise
                if message["type"] == "http.response.body" and not tracker.wire_level:
                    tracker.bytes_written(conn, len(message.get("body", b"")))
                if last:
                    tracker.response_sent(conn, response, failed=False)

            await self._app(scope, receive_recorded, send_recorded)


def _target(scope: Scope) -> str:
    raw = scope.get("raw_path") or str(scope.get("path", "/")).encode("utf-8")
    path = bytes(raw).decode("latin-1")
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return f"{path}?{query}" if query else path


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
