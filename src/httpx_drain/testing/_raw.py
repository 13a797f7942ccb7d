"""Raw-socket replay servers: byte-exact, every step supported."""

from __future__ import annotations

import contextlib
import enum
import select
import selectors
import socket
import struct
import threading
import time

import anyio
import h11

from ._base import AsyncServing, ThreadedServing, listening_socket
from ._gate import Gate
from ._scenario import RequestInfo, ScenarioSource, resolve
from ._wire import Close, Open, Plan, Repeat, RequestParser, Send, Sleep, Wait, plan

try:
    from anyio import wait_readable, wait_writable
except ImportError:  # pragma: no cover - anyio < 4.7
    from anyio import wait_socket_readable as wait_readable  # type: ignore[assignment,no-redef,unused-ignore]
    from anyio import wait_socket_writable as wait_writable  # type: ignore[assignment,no-redef,unused-ignore]

__all__ = ["AsyncRawServer", "RawServer"]

_RECV_SIZE = 65536
# l_onoff=1, l_linger=0: close() discards unsent data and sends RST instead of FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)


class _Outcome(enum.Enum):
    READABLE = "readable"  # the client sent bytes, closed or reset
    TIMEOUT = "timeout"
    GATE = "gate"
    STOP = "stop"


def _peer(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getpeername()[:2]
    return str(host), int(port)


def _end(sock: socket.socket, *, reset: bool) -> None:
    """Close ``sock`` with a FIN, or with an RST when ``reset``."""
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        else:
            # FIN first: close() alone would send RST if unread request bytes were pending.
            sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # already reset by the peer
    sock.close()


# Threaded server.


class _Connection:
    """One accepted socket, served by its own thread."""

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.index = index
        self.parser = RequestParser()
        self.eof = False  # the client closed or reset its side
        # A socket pair to interrupt select(): gates opening and the server stopping write to it.
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._closed = False

    def wake(self) -> None:
        # Full: a wake-up is pending anyway. Closed: nobody is left to wake.
        with contextlib.suppress(OSError):
            self.wake_w.send(b"\0")

    def abort(self) -> None:
        """Unblock the serving thread, from another thread: its recv/send fail at once."""
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)
        self.wake()

    def close(self, *, reset: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.selector.close()
            _end(self.sock, reset=reset)
            self.wake_r.close()
            self.wake_w.close()


class RawServer(ThreadedServing):
    """A raw-socket server replaying a scenario byte for byte, in background threads.

    Every step is supported. One thread accepts connections and one thread serves each of
    them; :meth:`close` (or leaving the ``with`` block) unblocks and joins all of them::

        with RawServer(Scenario(steps=[Chunk(b"data: 1\\n\\n")])) as srv:
            httpx.get(srv.url)
    """

    def __init__(self, scenario: ScenarioSource, *, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self._source = scenario
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._threads: list[threading.Thread] = []
        self._closed = False

    def start(self) -> RawServer:
        """Bind, listen and start accepting. Returns the server."""
        if self._listener is not None:
            raise RuntimeError("RawServer already started")
        self._listener = listening_socket(self.host, blocking=False)
        self._port = int(self._listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"RawServer-{self._port}-accept", daemon=True
        )
        self._accept_thread.start()
        return self

    def __enter__(self) -> RawServer:
        return self.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, abort every connection and join every thread.

        Steps blocked on a gate or a pause end at once; the client sees the connection close.
        Raises ``RuntimeError`` if a thread is still alive after ``timeout`` seconds.
        """
        with self._lock:
            if self._closed or self._listener is None:
                self._closed = True
                return
            self._closed = True
            self._stopping.set()
        assert self._wake_w is not None
        assert self._accept_thread is not None
        deadline = time.monotonic() + timeout
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        self._accept_thread.join(timeout)
        # The accept thread is gone, so no connection can be added behind our back.
        with self._lock:
            connections, threads = list(self._connections), list(self._threads)
        for conn in connections:
            conn.abort()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        alive = [t.name for t in [self._accept_thread, *threads] if t.is_alive()]
        if alive:
            raise RuntimeError(f"RawServer threads did not stop: {alive}")

    # Accepting.

    def _accept_loop(self) -> None:
        assert self._listener is not None
        assert self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._listener:
                        self._accept()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return  # the client gave up before we got to it
        try:
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = _peer(sock)
        except OSError:
            sock.close()
            return
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                return
            conn = _Connection(sock, self.facts.connection_opened(peer))
            thread = threading.Thread(
                target=self._serve,
                args=(conn,),
                name=f"RawServer-{self._port}-conn-{conn.index}",
                daemon=True,
            )
            self._connections.append(conn)
            self._threads.append(thread)
        thread.start()

    # Serving one connection.

    def _serve(self, conn: _Connection) -> None:
        try:
            self._converse(conn)
        except Exception as exc:
            if not self._stopping.is_set():
                self.facts.error(exc)
        finally:
            conn.close()
            self.facts.connection_closed(conn.index)

    def _converse(self, conn: _Connection) -> None:
        # No idle limit before the first request: keep_alive_timeout counts from a response
        # (a fresh connection closed before a slow client sends would fail its request).
        timeout: float | None = None
        served = 0
        while True:
            parsed = self._read_request(conn, served, timeout)
            if parsed is None:
                return
            info, client_keeps_alive = parsed
            self.facts.request_received(conn.index)
            served += 1
            scenario = resolve(self._source, info)
            response = plan(scenario)
            if not self._play(conn, response) or response.closes:
                return
            if scenario.connection_close or not client_keeps_alive:
                return
            timeout = scenario.keep_alive_timeout

    def _read_request(
        self, conn: _Connection, served: int, timeout: float | None
    ) -> tuple[RequestInfo, bool] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                parsed = conn.parser.next_request(conn.index, served)
            except (EOFError, h11.RemoteProtocolError):
                return None  # closed between requests, or garbage: just hang up
            if parsed is not None:
                return parsed
            if self._block(conn, deadline) is not _Outcome.READABLE:
                return None  # idle for keep_alive_timeout, or stopping
            self._receive(conn)

    def _play(self, conn: _Connection, response: Plan) -> bool:
        """Replay one response; return whether the connection is still usable."""
        for op in response.ops:
            if not self._client_still_there(conn):
                return False
            if isinstance(op, Send):
                if op.completes:
                    # Counted first: the client may have read the last byte before send returns.
                    self.facts.response_completed(conn.index)
                if not self._send(conn, op.data):
                    if op.completes:
                        self.facts.response_failed(conn.index)
                    return self._client_left(conn)
            elif isinstance(op, Sleep):
                if not self._idle(conn, time.monotonic() + op.seconds):
                    return False
            elif isinstance(op, Wait):
                if not self._idle(conn, None, op.gate):
                    return False
            elif isinstance(op, Open):
                op.gate.set()
            elif isinstance(op, Close):
                if op.completes:
                    self.facts.response_completed(conn.index)
                conn.close(reset=op.reset)
                return False
            elif isinstance(op, Repeat):
                while self._send(conn, op.data):
                    if op.interval:
                        if not self._idle(conn, time.monotonic() + op.interval):
                            return False
                    elif not self._client_still_there(conn):
                        return False
                return self._client_left(conn)
        return True

    def _send(self, conn: _Connection, data: bytes) -> bool:
        # Counted first, like completions: the client may read the bytes before send returns.
        self.facts.bytes_written(conn.index, len(data))
        view = memoryview(data)
        while view:
            try:
                sent = conn.sock.send(view)
            except OSError:
                self.facts.bytes_written(conn.index, -len(view))
                return False
            view = view[sent:]
        return True

    def _receive(self, conn: _Connection) -> None:
        if conn.eof:
            return  # pragma: no cover - defensive: every caller checks eof first
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except OSError:
            data = b""  # reset by the client, or shut down by close()
        if not data:
            conn.eof = True
        conn.parser.feed(data)

    def _client_left(self, conn: _Connection) -> bool:
        if not self._stopping.is_set():
            self.facts.client_closed_early(conn.index)
        return False

    def _client_still_there(self, conn: _Connection) -> bool:
        """Check, without blocking, that the client has not left mid-response."""
        if self._stopping.is_set():
            return False
        if not conn.eof and select.select([conn.sock], [], [], 0)[0]:
            self._receive(conn)
        return not conn.eof or self._client_left(conn)

    def _idle(self, conn: _Connection, deadline: float | None, gate: Gate | None = None) -> bool:
        """Wait mid-response, watching for the client leaving; return whether to go on."""
        while True:
            if conn.eof:
                return self._client_left(conn)
            outcome = self._block(conn, deadline, gate)
            if outcome is _Outcome.STOP:
                return False
            if outcome is not _Outcome.READABLE:
                return True
            self._receive(conn)

    def _block(
        self, conn: _Connection, deadline: float | None, gate: Gate | None = None
    ) -> _Outcome:
        unsubscribe = gate.subscribe(conn.wake) if gate is not None else None
        try:
            while True:
                if self._stopping.is_set():
                    return _Outcome.STOP
                if gate is not None and gate.is_set():
                    return _Outcome.GATE
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return _Outcome.TIMEOUT
                readable = False
                for key, _ in conn.selector.select(remaining):
                    if key.fileobj is conn.wake_r:
                        _drain(conn.wake_r)
                    else:
                        readable = True
                if readable:
                    return _Outcome.READABLE
        finally:
            if unsubscribe is not None:
                unsubscribe()


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass  # BlockingIOError: drained


# Async server.


class _AsyncConnection:
    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.index = index
        self.parser = RequestParser()
        self.eof = False


class AsyncRawServer(AsyncServing):
    """:class:`RawServer` running in the current event loop (asyncio or trio), byte-exact::

        async with AsyncRawServer(scenario) as srv:
            await client.get(srv.url)

    Wait on ``srv.facts`` with the ``*_async`` methods: the blocking ones would block the
    loop this server runs in.
    """

    def __init__(self, scenario: ScenarioSource, *, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self._source = scenario
        self._listener: socket.socket | None = None
        self._scope: anyio.CancelScope | None = None
        self._stopping = False

    async def __aenter__(self) -> AsyncRawServer:
        if self._listener is not None:
            raise RuntimeError("AsyncRawServer already started")
        self._listener = listening_socket(self.host, blocking=False)
        self._port = int(self._listener.getsockname()[1])
        await self._start_serving(self._run)
        return self

    def _listening_socket(self) -> socket.socket | None:
        return self._listener

    def close(self) -> None:
        """Stop the server: cancel the accept loop, every connection and blocked step.

        Call it from the event loop the server runs in; the ``async with`` exit waits for
        everything to finish.
        """
        self._stopping = True
        if self._scope is not None:
            self._scope.cancel()

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # A scope of our own: cancelling the task group would cancel the `async with` body too.
        with anyio.CancelScope() as self._scope:
            async with anyio.create_task_group() as connections:
                task_status.started()
                await self._accept_loop(connections)

    async def _accept_loop(self, connections: anyio.abc.TaskGroup) -> None:
        assert self._listener is not None
        while True:
            await wait_readable(self._listener)
            try:
                sock, _ = self._listener.accept()
            except OSError:
                continue
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer = _peer(sock)
            except OSError:
                sock.close()
                continue
            conn = _AsyncConnection(sock, self.facts.connection_opened(peer))
            connections.start_soon(self._serve, conn)

    async def _serve(self, conn: _AsyncConnection) -> None:
        try:
            await self._converse(conn)
        except Exception as exc:
            if not self._stopping:
                self.facts.error(exc)
        finally:
            if conn.sock.fileno() != -1:
                _end(conn.sock, reset=False)
            self.facts.connection_closed(conn.index)

    async def _converse(self, conn: _AsyncConnection) -> None:
        timeout: float | None = None  # as in the sync server: the limit starts after a response
        served = 0
        while True:
            parsed = await self._read_request(conn, served, timeout)
            if parsed is None:
                return
            info, client_keeps_alive = parsed
            self.facts.request_received(conn.index)
            served += 1
            scenario = resolve(self._source, info)
            response = plan(scenario)
            if not await self._play(conn, response) or response.closes:
                return
            if scenario.connection_close or not client_keeps_alive:
                return
            timeout = scenario.keep_alive_timeout

    async def _read_request(
        self, conn: _AsyncConnection, served: int, keep_alive: float | None
    ) -> tuple[RequestInfo, bool] | None:
        deadline = None if keep_alive is None else anyio.current_time() + keep_alive
        while True:
            try:
                parsed = conn.parser.next_request(conn.index, served)
            except (EOFError, h11.RemoteProtocolError):
                return None
            if parsed is not None:
                return parsed
            if await self._block(conn, deadline) is not _Outcome.READABLE:
                return None
            self._receive(conn)

    async def _play(self, conn: _AsyncConnection, response: Plan) -> bool:
        for op in response.ops:
            if not self._client_still_there(conn):
                return False
            if isinstance(op, Send):
                if op.completes:
                    self.facts.response_completed(conn.index)
                if not await self._send(conn, op.data):
                    if op.completes:
                        self.facts.response_failed(conn.index)
                    return self._client_left(conn)
            elif isinstance(op, Sleep):
                if not await self._idle(conn, anyio.current_time() + op.seconds):
                    return False
            elif isinstance(op, Wait):
                if not await self._idle(conn, None, op.gate):
                    return False
            elif isinstance(op, Open):
                op.gate.set()
            elif isinstance(op, Close):
                if op.completes:
                    self.facts.response_completed(conn.index)
                _end(conn.sock, reset=op.reset)
                return False
            elif isinstance(op, Repeat):
                while await self._send(conn, op.data):
                    # Sleeping even for 0 s is a checkpoint: stop() can cancel an endless stream.
                    if not await self._idle(conn, anyio.current_time() + op.interval):
                        return False
                return self._client_left(conn)
        return True

    async def _send(self, conn: _AsyncConnection, data: bytes) -> bool:
        self.facts.bytes_written(conn.index, len(data))
        view = memoryview(data)
        while view:
            try:
                sent = conn.sock.send(view)
            except BlockingIOError:
                await wait_writable(conn.sock)
                continue
            except OSError:
                self.facts.bytes_written(conn.index, -len(view))
                return False
            view = view[sent:]
        return True

    def _receive(self, conn: _AsyncConnection) -> None:
        if conn.eof:
            return  # pragma: no cover - defensive: play stops as soon as eof is seen
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except BlockingIOError:
            return  # nothing after all
        except OSError:
            data = b""
        if not data:
            conn.eof = True
        conn.parser.feed(data)

    def _client_left(self, conn: _AsyncConnection) -> bool:
        if not self._stopping:
            self.facts.client_closed_early(conn.index)
        return False

    def _client_still_there(self, conn: _AsyncConnection) -> bool:
        if self._stopping:
            return False
        self._receive(conn)  # non-blocking socket: returns at once when there is nothing
        return not conn.eof or self._client_left(conn)

    async def _idle(
        self, conn: _AsyncConnection, deadline: float | None, gate: Gate | None = None
    ) -> bool:
        while True:
            if conn.eof:
                return self._client_left(conn)
            outcome = await self._block(conn, deadline, gate)
            if outcome is not _Outcome.READABLE:
                return True
            self._receive(conn)

    async def _block(
        self, conn: _AsyncConnection, deadline: float | None, gate: Gate | None = None
    ) -> _Outcome:
        if gate is not None and gate.is_set():
            return _Outcome.GATE
        outcome = _Outcome.TIMEOUT
        timeout = None if deadline is None else max(0.0, deadline - anyio.current_time())
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as race:

                async def readable() -> None:
                    nonlocal outcome
                    await wait_readable(conn.sock)
                    outcome = _Outcome.READABLE
                    race.cancel_scope.cancel()

                async def opened(gate: Gate) -> None:
                    nonlocal outcome
                    await gate.wait_async()
                    outcome = _Outcome.GATE
                    race.cancel_scope.cancel()

                race.start_soon(readable)
                if gate is not None:
                    race.start_soon(opened, gate)
        return outcome
