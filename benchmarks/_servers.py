"""Replay servers for the benchmarks, in a child process, optionally behind TLS and a delay.

The client under test must own its process: ``time.process_time`` counts every thread of a
process and the GIL serialises them, so a server (or relay) running in the client's process
would be billed to the client and would slow it down. :class:`ServerProcess` starts a
:class:`~httpx_drain.testing.RawServer` in a child process and, in front of it, as asked:

- a TLS-terminating relay (``tls=True``): RawServer speaks plain TCP only, so the relay
  accepts TLS with a trustme certificate and forwards the plain bytes to it, one upstream
  connection per client connection (the server's connection count is the client's);
- a delaying relay (``delay=0.01``): forwards bytes both ways, each direction ``delay``
  seconds late, in order; in front of the TLS relay, so TLS handshakes pay the round trips
  too. The kernel completes a client's TCP handshake before any relay sees the connection, so
  the relay holds the first bytes of each connection one extra round trip (``2 * delay``),
  where a real network would have spent it on SYN / SYN-ACK.

Scenarios cross the process boundary by pickling: gates cannot, so hold a terminator with a
long :class:`~httpx_drain.testing.Pause` instead (the server's close cuts it short).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing
import os
import ssl
import tempfile
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from httpx_drain.testing import RawServer, Scenario

__all__ = ["CertificateAuthority", "ServerFacts", "ServerProcess"]

HOST = "127.0.0.1"
_READ = 65536


@dataclass(frozen=True)
class ServerFacts:
    """What the child's RawServer saw, copied across the pipe."""

    connections: int
    requests: int
    early_disconnects: int
    closed: int
    bytes_sent: int


class CertificateAuthority:
    """A trustme CA and a certificate for 127.0.0.1, with a client context trusting it."""

    def __init__(self) -> None:
        import trustme

        self._ca = trustme.CA()
        cert = self._ca.issue_cert(HOST, "localhost")
        #: Key and chain, PEM: picklable, for the child's server context.
        self.server_pem = cert.private_key_and_cert_chain_pem.bytes()

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self._ca.configure_trust(ctx)
        return ctx


def _server_context(pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain wants a file; it is read at once, so the file can go straight after.
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx


# Relays (child process).


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await writer.wait_closed()


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    first_extra: float = 0.0,
) -> None:
    """Copy ``reader`` to ``writer``, each piece ``delay`` seconds late, in order; then close.

    The first piece is ``first_extra`` seconds later still (what follows queues behind it).
    """
    loop = asyncio.get_running_loop()
    queue: collections.deque[tuple[float, bytes]] = collections.deque()
    wake = asyncio.Event()
    finished = False

    async def write() -> None:
        while True:
            while not queue:
                if finished:
                    return
                wake.clear()
                await wake.wait()
            due, data = queue.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    writer_task = asyncio.create_task(write())
    try:
        while True:
            try:
                data = await reader.read(_READ)
            except (ConnectionError, OSError, ssl.SSLError):
                data = b""
            if not data:
                break
            queue.append((loop.time() + delay + first_extra, data))
            first_extra = 0.0
            wake.set()
        finished = True
        wake.set()
        # The end of the stream travels with the same delay as the bytes before it.
        if delay:
            await asyncio.sleep(delay)
        with contextlib.suppress(Exception):
            await writer_task
    finally:
        writer_task.cancel()
        with contextlib.suppress(BaseException):
            await writer_task
        await _close(writer)


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream: tuple[str, int],
    delay: float,
) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        await _close(client_writer)
        return
    # When either side ends, both do: a client closes only when it is done with the
    # connection, a server only when it will not answer again.
    # The kernel completed the client's TCP handshake before we saw the connection: hold the
    # first bytes from the client one more round trip, as the handshake would have.
    tasks = [
        asyncio.create_task(_pump(client_reader, up_writer, delay, 2 * delay)),
        asyncio.create_task(_pump(up_reader, client_writer, delay)),
    ]
    _open_writers.update((client_writer, up_writer))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await _close(up_writer)
        await _close(client_writer)
        _open_writers.difference_update((client_writer, up_writer))


#: Every relayed connection's writers, so that stopping can abort them (cancelling the
#: handler tasks instead makes asyncio's stream callback log a traceback per connection).
_open_writers: set[asyncio.StreamWriter] = set()


class _Relays:
    """An event loop thread hosting the TLS and delay relays."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.AbstractServer] = []

    def start(self) -> None:
        self._thread.start()

    def add(self, upstream: int, *, ssl_context: ssl.SSLContext | None, delay: float) -> int:
        async def start() -> int:
            server = await asyncio.start_server(
                lambda r, w: _relay(r, w, (HOST, upstream), delay),
                HOST,
                0,
                ssl=ssl_context,
                backlog=512,
            )
            self._servers.append(server)
            return int(server.sockets[0].getsockname()[1])

        return asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)

    def stop(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for writer in list(_open_writers):
                writer.transport.abort()
            # Let the relays see their connections end and finish.
            for _ in range(100):
                if len(asyncio.all_tasks()) <= 1:
                    break
                await asyncio.sleep(0.01)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def _child(pipe: Any, scenario: Scenario, pem: bytes | None, delay: float) -> None:
    relays = _Relays()
    with RawServer(scenario) as server:
        port = server.port
        if pem is not None or delay:
            relays.start()
            if pem is not None:
                port = relays.add(port, ssl_context=_server_context(pem), delay=0.0)
            if delay:
                port = relays.add(port, ssl_context=None, delay=delay)
        pipe.send(port)
        while True:
            command = pipe.recv()
            if command == "facts":
                facts = server.facts
                pipe.send(
                    ServerFacts(
                        connections=facts.connection_count,
                        requests=facts.request_count,
                        early_disconnects=facts.early_disconnects,
                        closed=facts.closed_count,
                        bytes_sent=sum(c.bytes_sent for c in facts.connections),
                    )
                )
            else:
                break
        if pem is not None or delay:
            relays.stop()
        # RawServer.close() (leaving the block) aborts what is left, gates and pauses included.
    pipe.send("stopped")


class ServerProcess:
    """A RawServer replaying ``scenario`` in a child process; see the module docstring."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        tls: CertificateAuthority | None = None,
        delay: float = 0.0,
    ) -> None:
        self._scenario = scenario
        self._tls = tls
        self._delay = delay
        self._process: Any = None
        self._pipe: Any = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{HOST}:{self.port}"

    def facts(self) -> ServerFacts:
        self._pipe.send("facts")
        return self._pipe.recv()  # type: ignore[no-any-return]

    def __enter__(self) -> ServerProcess:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child_pipe = ctx.Pipe()
        pem = self._tls.server_pem if self._tls is not None else None
        self._process = ctx.Process(
            target=_child, args=(child_pipe, self._scenario, pem, self._delay), daemon=True
        )
        self._process.start()
        child_pipe.close()
        if not self._pipe.poll(30):
            self._process.kill()
            raise RuntimeError("the benchmark server did not start")
        self.port = self._pipe.recv()
        return self

    def stop(self) -> None:
        """Stop the server now: every connection it holds is aborted. Idempotent."""
        if self._process is None:
            return
        with contextlib.suppress(Exception):
            self._pipe.send("stop")
            self._pipe.poll(15)
        self._process.join(15)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._pipe.close()
        self._process = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
