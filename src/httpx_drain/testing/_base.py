"""What every replay server has in common."""

from __future__ import annotations

import abc
import socket

from ._facts import ServerFacts

__all__ = ["ReplayServer", "ReplayServerError", "listening_socket"]


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
