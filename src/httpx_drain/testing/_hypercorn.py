"""Hypercorn replay servers: a real ASGI server, in a thread or in the current event loop.

hypercorn's ``serve()`` hides its connections, so these servers run hypercorn's own
per-connection ``TCPServer`` from a small accept loop of theirs: that is where a connection
opening and closing, and every byte written to it, gets recorded.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import anyio.abc
import anyio.from_thread

from ._asgi import ASGIApp, ConnectionState, RecordingMiddleware, ScenarioApp, Tracker
from ._base import AsyncServing, ReplayServer, ThreadedServing, listening_socket
from ._scenario import Scenario, ScenarioSource

if TYPE_CHECKING:
    import trustme
    from hypercorn.config import Config

__all__ = ["AsyncHypercornServer", "HypercornServer"]

_LOG = logging.getLogger("httpx_drain.testing.hypercorn")
_FOREVER = 24 * 3600.0  # "never" for hypercorn's keep-alive timer, which wants a number
_GRACE = 5.0  # seconds for aborted connections to finish their handlers on stop


def _peer(address: Any) -> tuple[str, int]:
    return str(address[0]), int(address[1])


class _CountingWriter:
    """An asyncio ``StreamWriter`` stand-in that records bytes written and write failures."""

    def __init__(self, writer: asyncio.StreamWriter, conn: ConnectionState, tracker: Tracker):
        self._writer = writer
        self._conn = conn
        self._tracker = tracker

    def write(self, data: bytes) -> None:
        if self._writer.transport.is_closing():
            # asyncio drops writes to a closing transport without a word.
            self._tracker.write_failed(self._conn)
        else:
            self._tracker.bytes_written(self._conn, len(data))
        self._writer.write(data)

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, RuntimeError):
            self._tracker.write_failed(self._conn)
            raise

    def abort(self) -> None:
        self._writer.transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


class _WatchedReader:
    """An asyncio ``StreamReader`` stand-in that records the client closing its side.

    hypercorn keeps a connection the client closed until its keep-alive timer fires, so its
    end is only visible here, where the end of the stream is read.
    """

    def __init__(self, reader: asyncio.StreamReader, conn: ConnectionState, tracker: Tracker):
        self._reader = reader
        self._conn = conn
        self._tracker = tracker

    async def read(self, n: int = -1) -> bytes:
        try:
            data = await self._reader.read(n)
        except OSError:
            self._tracker.closed(self._conn)
            raise
        if not data:
            self._tracker.closed(self._conn)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class _CountingStream:
    """A trio stream stand-in that records bytes written and write failures."""

    def __init__(self, stream: Any, conn: ConnectionState, tracker: Tracker) -> None:
        self.inner = stream
        self._conn = conn
        self._tracker = tracker

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        import trio

        # Counted first: the client may have read the bytes before send_all returns.
        self._tracker.bytes_written(self._conn, len(data))
        try:
            await self.inner.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._tracker.bytes_written(self._conn, -len(data))
            self._tracker.write_failed(self._conn)
            raise

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        import trio

        try:
            data: bytes | bytearray = await self.inner.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._tracker.closed(self._conn)
            raise
        if not data:
            # hypercorn keeps a connection the client closed until its keep-alive timer fires.
            self._tracker.closed(self._conn)
        return data

    def __getattr__(self, name: str) -> Any:
        # hypercorn tells TLS from plain streams by do_handshake raising AttributeError.
        return getattr(self.inner, name)


async def _serve_asyncio(
    *,
    app: Any,
    config: Config,
    sock: socket.socket,
    tracker: Tracker,
    ssl_context: ssl.SSLContext | None,
    task_status: anyio.abc.TaskStatus[None],
) -> None:
    from hypercorn.asyncio.tcp_server import TCPServer
    from hypercorn.asyncio.worker_context import WorkerContext

    loop = asyncio.get_running_loop()
    context = WorkerContext(None)
    handlers: set[asyncio.Task[Any]] = set()
    writers: set[_CountingWriter] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        conn = tracker.opened(_peer(writer.get_extra_info("peername")))
        counting = _CountingWriter(writer, conn, tracker)
        writers.add(counting)
        try:
            watched = _WatchedReader(reader, conn, tracker)
            await TCPServer(app, loop, config, context, {}, cast(Any, watched), cast(Any, counting))
        finally:
            writers.discard(counting)
            tracker.closed(conn)
            handlers.discard(task)

    stop = tracker.arm()
    server = await asyncio.start_server(on_connection, sock=sock, ssl=ssl_context)
    try:
        task_status.started()
        await stop.wait()
    finally:
        with anyio.CancelScope(shield=True):
            tracker.stop()
            server.close()
            await context.terminated.set()
            for writer in list(writers):
                writer.abort()  # a send blocked on a client that does not read ends now
            if handlers:
                await asyncio.wait(set(handlers), timeout=_GRACE)
            for task in list(handlers):
                task.cancel()
            if handlers:
                await asyncio.wait(set(handlers))
            await server.wait_closed()


async def _serve_trio(
    *,
    app: Any,
    config: Config,
    sock: socket.socket,
    tracker: Tracker,
    ssl_context: ssl.SSLContext | None,
    task_status: anyio.abc.TaskStatus[None],
) -> None:
    import trio
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext

    context = WorkerContext(None)
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    streams: set[_CountingStream] = set()
    all_closed = trio.Event()

    async def on_connection(stream: trio.SocketStream) -> None:
        conn = tracker.opened(_peer(stream.socket.getpeername()))
        inner: trio.abc.Stream = stream
        if ssl_context is not None:
            inner = trio.SSLStream(stream, ssl_context, server_side=True, https_compatible=True)
        counting = _CountingStream(inner, conn, tracker)
        streams.add(counting)
        try:
            await TCPServer(app, config, context, {}, cast(Any, counting))
        finally:
            streams.discard(counting)
            tracker.closed(conn)
            if tracker.stopping and not streams:
                all_closed.set()

    stop = tracker.arm()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, on_connection, [listener])
        task_status.started()
        try:
            await stop.wait()
        finally:
            with trio.CancelScope(shield=True):
                tracker.stop()
                await context.terminated.set()
                # hypercorn shields its writes: only closing the stream ends a blocked one.
                for counting in list(streams):
                    await trio.aclose_forcefully(counting.inner)
                with trio.move_on_after(_GRACE):
                    if streams:
                        await all_closed.wait()
            nursery.cancel_scope.cancel()


async def _serve(
    app: Any,
    config: Config,
    sock: socket.socket,
    tracker: Tracker,
    ssl_context: ssl.SSLContext | None,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        serve: Callable[..., Awaitable[None]] = _serve_trio
    else:
        serve = _serve_asyncio
    await serve(
        app=app,
        config=config,
        sock=sock,
        tracker=tracker,
        ssl_context=ssl_context,
        task_status=task_status,
    )


class _HypercornBase(ReplayServer):
    def __init__(
        self,
        scenario: ScenarioSource | None,
        *,
        app: ASGIApp | None,
        host: str,
        http2: bool,
        tls: bool,
        keep_alive_timeout: float | None,
    ) -> None:
        super().__init__(host)
        if (scenario is None) == (app is None):
            raise TypeError("pass either a scenario or app=, not both")
        self._tracker = Tracker(self.facts, wire_level=True)
        asgi: ASGIApp
        if scenario is not None:
            asgi = ScenarioApp(scenario, tracker=self._tracker)
            if keep_alive_timeout is None and isinstance(scenario, Scenario):
                keep_alive_timeout = scenario.keep_alive_timeout
        else:
            assert app is not None
            asgi = RecordingMiddleware(app, self._tracker)
        self.app = asgi
        self._tls = tls or http2
        self._config = self._build_config(http2, keep_alive_timeout)
        self._ca: trustme.CA | None = None
        self._server_context: ssl.SSLContext | None = None
        self._client_context: ssl.SSLContext | None = None
        if self._tls:
            self._setup_tls()
        self._sock: socket.socket | None = None

    @property
    def scheme(self) -> str:
        return "https" if self._tls else "http"

    @property
    def ca(self) -> trustme.CA:
        """The trustme CA that signed the server certificate (TLS servers only)."""
        if self._ca is None:
            raise RuntimeError("this server does not use TLS")
        return self._ca

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the server certificate (TLS servers only)."""
        if self._client_context is None:
            raise RuntimeError("this server does not use TLS")
        return self._client_context

    def _build_config(self, http2: bool, keep_alive_timeout: float | None) -> Config:
        from hypercorn.config import Config

        config = Config()
        config.keep_alive_timeout = _FOREVER if keep_alive_timeout is None else keep_alive_timeout
        config.keep_alive_max_requests = 2**31  # never close a connection for its age
        config.include_server_header = False
        config.include_date_header = False
        config.alpn_protocols = ["h2", "http/1.1"] if http2 else ["http/1.1"]
        # Through logging, which pytest captures, rather than straight to stderr.
        config.errorlog = _LOG
        return config

    def _setup_tls(self) -> None:
        import trustme

        self._ca = trustme.CA()
        cert = self._ca.issue_cert(self.host, "localhost")
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server)
        server.set_alpn_protocols(self._config.alpn_protocols)
        client = ssl.create_default_context()
        self._ca.configure_trust(client)
        self._server_context, self._client_context = server, client

    def _listen(self) -> socket.socket:
        if self._sock is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._sock = listening_socket(self.host, blocking=False)
        self._port = int(self._sock.getsockname()[1])
        return self._sock

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        from hypercorn.app_wrappers import ASGIWrapper

        assert self._sock is not None
        wrapped = ASGIWrapper(cast(Any, self.app))
        await _serve(
            wrapped,
            self._config,
            self._sock,
            self._tracker,
            self._server_context,
            task_status=task_status,
        )


class HypercornServer(ThreadedServing, _HypercornBase):
    """A hypercorn server in a background thread, replaying a scenario or serving an app.

    ``HypercornServer(scenario)`` replays a scenario (steps ASGI cannot express raise
    :class:`UnsupportedStep` here); ``HypercornServer(app=asgi_app)`` serves any ASGI app
    and records what it can. ``backend`` is the event loop hypercorn runs on. ``http2=True``
    (or ``tls=True`` for HTTP/1.1) serves HTTPS with a trustme certificate: give clients
    ``srv.ssl_context``. ``keep_alive_timeout`` defaults to the scenario's, else never.
    ``srv.app`` is the ASGI app actually served. hypercorn gets no lifespan events.
    """

    def __init__(
        self,
        scenario: ScenarioSource | None = None,
        *,
        app: ASGIApp | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
        http2: bool = False,
        tls: bool = False,
        keep_alive_timeout: float | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(
            scenario,
            app=app,
            host=host,
            http2=http2,
            tls=tls,
            keep_alive_timeout=keep_alive_timeout,
        )
        self._backend = backend
        self._stack = ExitStack()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._future: Future[None] | None = None

    def start(self) -> HypercornServer:
        """Bind, start hypercorn's event loop thread, and wait until it accepts."""
        sock = self._listen()
        try:
            self._portal = self._stack.enter_context(
                anyio.from_thread.start_blocking_portal(self._backend)
            )
            self._future, _ = self._portal.start_task(self._serve)
        except BaseException:
            self._stack.close()
            sock.close()
            raise
        return self

    def __enter__(self) -> HypercornServer:
        return self.start()

    def close(self, timeout: float = 10.0) -> None:
        """Abort every connection and running step, stop hypercorn and join its thread."""
        portal, future = self._portal, self._future
        if portal is None or future is None:
            return
        self._portal = self._future = None
        try:
            portal.call(self._tracker.stop)
            future.result(timeout)
        finally:
            self._stack.close()
            assert self._sock is not None
            self._sock.close()


class AsyncHypercornServer(AsyncServing, _HypercornBase):
    """:class:`HypercornServer` running in the current event loop (asyncio or trio)::

        async with AsyncHypercornServer(scenario) as srv:
            await client.get(srv.url)

    Wait on ``srv.facts`` with the ``*_async`` methods.
    """

    def __init__(
        self,
        scenario: ScenarioSource | None = None,
        *,
        app: ASGIApp | None = None,
        http2: bool = False,
        tls: bool = False,
        keep_alive_timeout: float | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(
            scenario,
            app=app,
            host=host,
            http2=http2,
            tls=tls,
            keep_alive_timeout=keep_alive_timeout,
        )

    async def __aenter__(self) -> AsyncHypercornServer:
        self._listen()
        await self._start_serving(self._serve)
        return self

    def _listening_socket(self) -> socket.socket | None:
        return self._sock

    def close(self) -> None:
        """Stop the server; call it from its event loop. ``async with`` exit waits for it."""
        self._tracker.stop()
