"""Helpers for the replay-server tests: a plain socket client and shared constants."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable

from httpx_drain.testing import HypercornServer, RawServer

# Generous: only a broken server makes a test wait this long.
TIMEOUT = 10.0

SYNC_BACKENDS = ["raw", "hypercorn-asyncio", "hypercorn-trio"]

ServerFactory = Callable[..., RawServer | HypercornServer]


class Wire:
    """A plain socket client, to see exactly the bytes a server wrote."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = bytearray()

    def request(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.sock.sendall(request_bytes(path, method=method, body=body, headers=headers))

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise EOFError(f"EOF before {marker!r}; got {bytes(self.buffer)!r}")
        end = self.buffer.index(marker) + len(marker)
        return self._take(end)

    def read_head(self) -> bytes:
        return self.read_until(b"\r\n\r\n")

    def read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise EOFError(f"EOF after {len(self.buffer)} of {n} bytes: {bytes(self.buffer)!r}")
        return self._take(n)

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        return self._take(len(self.buffer))

    def recv_once(self) -> bytes:
        """What one recv() returns (or what is buffered already)."""
        if not self.buffer:
            self._fill()
        return self._take(len(self.buffer))

    def quiet_for(self, seconds: float) -> bool:
        """Whether nothing arrives for ``seconds`` (a lower bound: safe against slow machines)."""
        if self.buffer:
            return False
        readable, _, _ = select.select([self.sock], [], [], seconds)
        return not readable

    def _take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def close(self) -> None:
        self.sock.close()


def request_bytes(
    path: str = "/",
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
