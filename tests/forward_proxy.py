"""A tiny HTTP/1.1 forward proxy for tests, on 127.0.0.1, built on h11.

Absolute-URI requests (``GET http://host:port/path``), keep-alive on both sides: each client
connection gets its own upstream connection, reused while both stay reusable, the way nginx
pairs them with upstream keepalive. Responses are relayed as they arrive, chunk by chunk. A
client that leaves before the end of a response ends both connections, as proxies do.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from types import TracebackType

import h11

__all__ = ["ForwardProxy"]

_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization"}


class _Upstream:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = socket.create_connection(address)
        self.conn = h11.Connection(h11.CLIENT)

    def next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(self.sock.recv(65536))


class ForwardProxy:
    """``with ForwardProxy() as proxy:`` then ``proxy=proxy.url``; counts connections."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.client_connections = 0
        self.upstream_connections = 0
        self.requests = 0
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ForwardProxy:
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(10)

    def _track(self, sock: socket.socket) -> socket.socket:
        # Small writes go out at once, as nginx's tcp_nodelay does: with Nagle, a terminator
        # written right after an event waits for the peer's delayed ACK (40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:  # closed by __exit__
                return
            self._track(sock)
            thread = threading.Thread(target=self._serve, args=(sock,))
            with self._lock:
                self.client_connections += 1
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        session = _Session(sock)
        try:
            while self._relay_one(session):
                if not session.next_cycle():
                    break
        except (OSError, h11.ProtocolError):
            pass  # the client left (in the middle of a response, or between two)
        finally:
            session.close()

    def _relay_one(self, session: _Session) -> bool:
        events = session.read_request()
        if not events:
            return False
        request = events[0]
        assert isinstance(request, h11.Request)
        url = urllib.parse.urlsplit(request.target.decode())
        address = (url.hostname or "", url.port or 80)
        if session.upstream is None or session.upstream.address != address:
            if session.upstream is not None:
                session.upstream.sock.close()
            session.upstream = upstream = _Upstream(address)
            self._track(upstream.sock)
            with self._lock:
                self.upstream_connections += 1
        upstream = session.upstream
        with self._lock:
            self.requests += 1
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
        out = [h11.Request(method=request.method, target=target, headers=headers), *events[1:]]
        upstream.sock.sendall(b"".join(upstream.conn.send(e) or b"" for e in out))
        while True:
            event = upstream.next_event()
            if isinstance(event, h11.Response):
                headers = [(k, v) for k, v in event.headers if k.lower() not in _HOP_BY_HOP]
                event = h11.Response(status_code=event.status_code, headers=headers)
            elif not isinstance(event, (h11.Data, h11.EndOfMessage)):
                raise OSError(f"upstream ended the response: {event!r}")
            session.sock.sendall(session.conn.send(event) or b"")
            if isinstance(event, h11.EndOfMessage):
                return True


class _Session:
    """One client connection and the upstream connection paired with it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conn = h11.Connection(h11.SERVER)
        self.upstream: _Upstream | None = None

    def read_request(self) -> list[h11.Event]:
        """The next request's events, up to its end; empty when the client closed."""
        events: list[h11.Event] = []
        while not events or not isinstance(events[-1], h11.EndOfMessage):
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.ConnectionClosed):
                return []
            elif isinstance(event, h11.Event):
                events.append(event)
        return events

    def next_cycle(self) -> bool:
        """Ready both sides for the next request; False when the client side cannot go on."""
        if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
            return False
        self.conn.start_next_cycle()
        upstream = self.upstream
        if upstream is not None:
            if upstream.conn.our_state is h11.DONE and upstream.conn.their_state is h11.DONE:
                upstream.conn.start_next_cycle()
            else:
                upstream.sock.close()
                self.upstream = None
        return True

    def close(self) -> None:
        self.sock.close()
        if self.upstream is not None:
            self.upstream.sock.close()
