"""What a replay server saw: connections, requests, responses, early disconnects."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from ._gate import threadsafe_setter

__all__ = ["ConnectionFacts", "ServerFacts"]


@dataclass
class ConnectionFacts:
    """One accepted connection, as the server saw it.

    ``client_closed_early``: the client closed or reset the connection while a response was
    still being written (before its last byte, or before the scenario's last step).
    ``closed``: either side closed the connection.
    """

    index: int
    peer: tuple[str, int]
    requests: int = 0
    responses_completed: int = 0
    client_closed_early: bool = False
    bytes_sent: int = 0
    closed: bool = False


class ServerFacts:
    """Thread-safe record of everything a replay server saw.

    Requests, completed responses and bytes are counted before the client can see the
    response (just before the write, taken back if it fails): a client that has read a whole
    response finds it counted. Closes and early disconnects are noticed by the server after
    the client acts: wait for them. Readers get copies. The ``wait_*`` methods block the
    calling thread; from a coroutine (and always with a server running in the same event
    loop) use the ``*_async`` ones.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._connections: list[ConnectionFacts] = []
        self._by_peer: dict[tuple[str, int], ConnectionFacts] = {}
        self._errors: list[BaseException] = []
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return (
            f"<ServerFacts connections={self.connection_count} requests={self.request_count}"
            f" early_disconnects={self.early_disconnects}>"
        )

    # Reading.

    @property
    def connections(self) -> list[ConnectionFacts]:
        """A copy of the per-connection facts, in accept order."""
        with self._lock:
            return [dataclasses.replace(conn) for conn in self._connections]

    @property
    def connection_count(self) -> int:
        """Connections accepted."""
        with self._lock:
            return len(self._connections)

    @property
    def request_count(self) -> int:
        """Requests received, on all connections."""
        with self._lock:
            return sum(conn.requests for conn in self._connections)

    @property
    def responses_completed(self) -> int:
        """Responses whose last byte was written, on all connections."""
        with self._lock:
            return sum(conn.responses_completed for conn in self._connections)

    @property
    def early_disconnects(self) -> int:
        """Connections the client closed while a response was still being written."""
        with self._lock:
            return sum(conn.client_closed_early for conn in self._connections)

    @property
    def closed_count(self) -> int:
        """Connections closed by either side."""
        with self._lock:
            return sum(conn.closed for conn in self._connections)

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while serving (a bug, or a scenario callable failing)."""
        with self._lock:
            return list(self._errors)

    # Waiting.

    def wait_until(self, predicate: Callable[[ServerFacts], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds; return whether it did within ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def wait_for_requests(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` requests were received."""
        return self.wait_until(lambda facts: facts.request_count >= n, timeout)

    def wait_for_closed(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` connections were closed, by either side."""
        return self.wait_until(lambda facts: facts.closed_count >= n, timeout)

    def wait_for_early_disconnects(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` connections were closed early by the client."""
        return self.wait_until(lambda facts: facts.early_disconnects >= n, timeout)

    async def wait_until_async(
        self,
        predicate: Callable[[ServerFacts], bool],
        timeout: float,  # noqa: ASYNC109 - mirrors wait_until: a bool, not an exception
    ) -> bool:
        """Like :meth:`wait_until`, without blocking the running event loop."""
        deadline = time.monotonic() + timeout
        while True:
            event = anyio.Event()
            notify = threadsafe_setter(event)
            with self._lock:
                if predicate(self):
                    return True
                self._listeners.append(notify)
            try:
                with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                    await event.wait()
            finally:
                with self._lock:
                    if notify in self._listeners:
                        self._listeners.remove(notify)
            if not event.is_set():
                with self._lock:
                    return predicate(self)

    async def wait_for_requests_async(self, n: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Like :meth:`wait_for_requests`, without blocking the running event loop."""
        return await self.wait_until_async(lambda facts: facts.request_count >= n, timeout)

    async def wait_for_closed_async(self, n: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Like :meth:`wait_for_closed`, without blocking the running event loop."""
        return await self.wait_until_async(lambda facts: facts.closed_count >= n, timeout)

    async def wait_for_early_disconnects_async(self, n: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Like :meth:`wait_for_early_disconnects`, without blocking the running event loop."""
        return await self.wait_until_async(lambda facts: facts.early_disconnects >= n, timeout)

    # Recording, by the servers.

    def connection_opened(self, peer: tuple[str, int]) -> int:
        """Record an accepted connection; return its index."""
        with self._lock:
            conn = ConnectionFacts(index=len(self._connections), peer=peer)
            self._connections.append(conn)
            self._by_peer[peer] = conn
            self._notify()
            return conn.index

    def index_of(self, peer: tuple[str, int]) -> int | None:
        """The index of the latest connection from ``peer``, if any."""
        with self._lock:
            conn = self._by_peer.get(peer)
            return None if conn is None else conn.index

    def request_received(self, index: int) -> int:
        """Record a request on connection ``index``; return its index on that connection."""
        with self._lock:
            conn = self._connections[index]
            conn.requests += 1
            self._notify()
            return conn.requests - 1

    def response_completed(self, index: int) -> None:
        """Record that the last byte of a response is written on connection ``index``.

        Servers call it just before that write, so that a client which has read the whole
        response always finds it counted; :meth:`response_failed` takes it back.
        """
        with self._lock:
            self._connections[index].responses_completed += 1
            self._notify()

    def response_failed(self, index: int) -> None:
        """Take back :meth:`response_completed`: writing the last byte failed."""
        with self._lock:
            self._connections[index].responses_completed -= 1
            self._notify()

    def bytes_written(self, index: int, n: int) -> None:
        """Count ``n`` bytes written on connection ``index`` (negative: take back unsent ones)."""
        with self._lock:
            self._connections[index].bytes_sent += n
            # No notification: nobody waits on byte counts, and writes are frequent.

    def client_closed_early(self, index: int) -> None:
        """Record that the client left connection ``index`` in the middle of a response."""
        with self._lock:
            self._connections[index].client_closed_early = True
            self._notify()

    def connection_closed(self, index: int) -> None:
        """Record that connection ``index`` is closed."""
        with self._lock:
            self._connections[index].closed = True
            self._notify()

    def error(self, exc: BaseException) -> None:
        """Record an unexpected exception raised while serving."""
        with self._lock:
            self._errors.append(exc)
            self._notify()

    def _notify(self) -> None:
        # Called with the lock held; the listeners only schedule a wake-up, they never block.
        self._changed.notify_all()
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener()
