"""What every replay server has in common."""

from __future__ import annotations

import abc
import socket
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from ._facts import ServerFacts

__all__ = [
    "AsyncServing",
    "ReplayServer",
    "ReplayServerError",
    "ThreadedServing",
    "listening_socket",
]


class ReplayServerError(RuntimeError):
    """The server hit unexpected exceptions while serving (see ``facts.errors``).

    Raised when a server's ``with`` block ends without an exception of its own, so that a bug
    in a scenario callable or in the server cannot make a test pass silently.
    """


class ReplayServer(abc.ABC):
    """A local HTTP server that replays a scenario and records :class:`ServerFacts`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._port: int | None = None
        self._facts = ServerFacts()

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the server listens on (picked by the OS)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def scheme(self) -> str:
        """``"http"``, or ``"https"`` for a server with TLS."""
        return "http"

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"{self.scheme}://{self._host}:{self.port}"

    @property
    def facts(self) -> ServerFacts:
        """What the server saw so far."""
        return self._facts

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the server: stop accepting, abort open connections and blocked steps."""

    def _raise_errors(self) -> None:
        errors = self._facts.errors
        if errors:
            message = f"{type(self).__name__} failed while serving: {errors[0]!r}"
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more, see facts.errors)"
            raise ReplayServerError(message) from errors[0]


class ThreadedServing(ReplayServer):
    """A server on threads of its own, run by a ``with`` block (``__enter__`` starts it).

    Leaving the block closes it, then raises what went wrong while serving, unless the block
    raised already.
    """

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc_type is None:
            self._raise_errors()


class AsyncServing(ReplayServer):
    """The ``async with`` life of a server running in the current event loop.

    Shared by :class:`AsyncRawServer` and :class:`AsyncHypercornServer`: a task group runs
    ``serve``; leaving the block stops the server, waits for every task, then closes the
    listening socket and raises what went wrong while serving.
    """

    _task_group: anyio.abc.TaskGroup | None = None

    @abc.abstractmethod
    def _listening_socket(self) -> socket.socket | None:
        """The socket the server accepts on, closed once it has stopped."""

    async def _start_serving(self, serve: Callable[..., Coroutine[Any, Any, Any]]) -> None:
        group = anyio.create_task_group()
        await group.__aenter__()
        try:
            await group.start(serve)
        except BaseException as exc:
            try:
                # Re-raises what ended the start (a failure, or the caller's cancellation).
                await group.__aexit__(type(exc), exc, exc.__traceback__)
            finally:
                if (sock := self._listening_socket()) is not None:
                    sock.close()
            raise
        self._task_group = group

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        assert self._task_group is not None
        try:
            await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            if (sock := self._listening_socket()) is not None:
                sock.close()
        if exc_type is None:
            self._raise_errors()


def listening_socket(host: str, *, blocking: bool = True) -> socket.socket:
    """A TCP socket listening on ``host``, on a port the OS picks."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, 0))
        sock.listen(128)
        sock.setblocking(blocking)
    except BaseException:
        sock.close()
        raise
    return sock
