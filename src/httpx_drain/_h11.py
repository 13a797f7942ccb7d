"""HTTP/1.1: what h11 holds of a response that has not been handed on yet.

Two questions, both asked before a connection goes back to the pool or to a drain's worker:

- **bytes past the end** (:func:`has_leftover_bytes`): a server that sends more than it framed
  (bytes after a ``Content-Length`` body) leaves them in h11's receive buffer. httpcore returns
  the connection to the pool all the same, and the next request on it reads them as the start
  of its response: ``illegal status line``. We close such a connection instead.
- **the end already here** (:func:`end_is_buffered`): when the rest of the body, terminator
  included, is in h11's buffer (or, on a plain TCP socket, in the kernel's), a drain cannot
  wait for the network, so the caller may run it at once rather than hand it to a worker.

And two shortcuts for sync drains, which own their socket's reads: :func:`pull_unread` moves
what a readable plain TCP socket holds into h11's buffer with one ``recv()`` (rather than a peek
to decide and a read to drain), and :func:`consume_bare_end`, when what h11 then holds is the
bare terminator, hands it to h11 itself instead of running httpcore's body reader for five bytes.

No public API shows h11's reader or reaches h11 through httpcore, so we walk httpcore's
private attributes (the same in httpcore and httpcore2) and h11's reader state; if they
change, the answers are "no" and we behave as httpcore does (or hand the drain to a worker).
"""

from __future__ import annotations

import copy
import socket
import ssl
from typing import Any

import h11

#: h11's reader of chunked bodies (None if h11 moved it: every reader takes the general path).
_CHUNKED_READER: Any = getattr(getattr(h11, "_readers", None), "ChunkedReader", None)

__all__ = ["consume_bare_end", "end_is_buffered", "has_leftover_bytes", "pull_unread"]

#: Bytes of the kernel's buffer :func:`end_is_buffered` peeks at or :func:`pull_unread` reads,
#: at most: far more than the tail of an event stream, and small enough that the copy costs
#: little (a 64 KiB peek cost 16 µs a close, most of it allocating the 64 KiB). A longer rest
#: goes to a worker.
PEEK_BYTES = 4096

#: The last chunk and an empty trailer: the end of a chunked body.
_TERMINATOR = b"0\r\n\r\n"


def _h11_connection(inner_stream: Any) -> Any:
    return inner_stream._httpcore_stream._stream._connection._h11_state


def has_leftover_bytes(inner_stream: Any) -> bool:
    """True when h11 holds bytes past the end of the response behind ``inner_stream``."""
    try:
        data, _closed = _h11_connection(inner_stream).trailing_data
    except Exception:  # not httpcore's HTTP/1.1 stream, or its internals changed
        return False
    return bool(data)


def end_is_buffered(inner_stream: Any, readable: Any = None) -> bool:
    """True when reading ``inner_stream`` to its end needs no wait for the network.

    h11's reader is run on copies of its state and of its buffered bytes and then, if those
    do not reach the end, of those plus what a plain TCP socket holds unread: ``readable`` is
    the connection's network stream when the caller found it readable (TLS records cannot be
    peeked at). True as well when the server has closed, or sent bytes h11 rejects: the end
    (or the error) is then immediate.
    """
    try:
        connection = _h11_connection(inner_stream)
        data, closed = connection.trailing_data
        if closed or _reaches_end(connection, data):
            return True
        peeked = _peek(readable)
        if peeked == b"":  # the server closed; h11 will see it with its next read
            return True
        return peeked is not None and _reaches_end(connection, data + peeked)
    except h11.ProtocolError:  # a drain fails at once (and closes the connection)
        return True
    except Exception:  # internals changed: let a worker find out
        return False


def pull_unread(inner_stream: Any, readable: Any) -> bool:
    """Move what a plain TCP socket holds unread (up to :data:`PEEK_BYTES`) into h11's buffer.

    ``readable`` is the connection's network stream, which the caller has found readable (the
    read never waits all the same). h11 then holds the bytes exactly as after httpcore's next
    read (``b""``: the server closed), and :func:`end_is_buffered` and
    :func:`consume_bare_end` decide from its buffer alone. False, having read nothing: nothing
    to read, TLS (its records cannot be split from outside), a stream that is not httpcore's,
    h11 told of a close already, or a socket error (httpcore's reader meets it).
    """
    try:
        sock = _plain_socket(readable)
        if sock is None:
            return False
        connection = _h11_connection(inner_stream)
        if connection.trailing_data[1]:
            return False  # h11 knows the server closed: there is nothing more to read
        got = _recv_now(sock)
    except Exception:
        return False
    if got is None:
        return False
    connection.receive_data(got)
    return True


def consume_bare_end(inner_stream: Any) -> bool:
    """Hand the end of a chunked body to h11 directly, when it is the bare terminator.

    The end is what is left of the last chunk's CRLF and ``0\r\n\r\n``, all in h11's buffer
    (see :func:`pull_unread`). h11 is asked for the end of the message, as httpcore's body
    reader would do, less its layers (on loopback they cost a parked drain's end 90 µs). True:
    h11 has seen the end; close the stream, and do not read it on (httpcore's reader did not
    see the end, and would wait for more). False: nothing changed, for httpcore's reader to go
    on with.
    """
    try:
        connection = _h11_connection(inner_stream)
        reader = connection._reader
        if type(reader) is not _CHUNKED_READER or reader._bytes_in_chunk or reader._reading_trailer:
            return False
        end = reader._bytes_to_discard + _TERMINATOR
        # The length first: trailing_data copies h11's whole buffer, which after an early
        # close may hold most of a 64 KiB read.
        if len(connection._receive_buffer) != len(end):
            return False
        data, closed = connection.trailing_data
        if closed or data != end:
            return False  # other bytes, or the server closed: h11's reader decides
        return isinstance(connection.next_event(), h11.EndOfMessage)
    except Exception:  # internals changed: httpcore's reader finds out
        return False


def _reaches_end(connection: Any, data: bytes) -> bool:
    reader = connection._reader
    if reader is None:
        return False
    if type(reader) is _CHUNKED_READER:
        if not data:
            return False  # nothing buffered cannot end a chunked body (a Content-Length can)
        if not reader._bytes_in_chunk and not reader._reading_trailer:
            # Between chunks, the common cases after an early close: only what is left of the
            # CRLF that ends the last chunk read (not the end yet), or that and the bare
            # terminator (the end). Both are decided here, without running h11's reader on
            # copies (which costs more than the rest of a close).
            discard = reader._bytes_to_discard
            if data.startswith(discard):
                rest = data[len(discard) :]
                if not rest:
                    return False
                if rest == _TERMINATOR:
                    return True
    return _run_reader(connection, data)


def _run_reader(connection: Any, data: bytes) -> bool:
    """Whether h11's reader, run on copies of its state and of ``data``, reaches the end of
    the message (raises what h11 raises for bytes it rejects)."""
    reader = _copy(connection._reader)
    buffer = type(connection._receive_buffer)()
    buffer += data
    while True:
        event = reader(buffer)
        if event is None:
            return False
        if isinstance(event, h11.EndOfMessage):
            return True


def _copy(reader: Any) -> Any:
    """A shallow copy of an h11 reader (plain objects): ``copy.copy`` without its dispatch."""
    state = getattr(reader, "__dict__", None)
    if state is None:
        return copy.copy(reader)
    clone = object.__new__(type(reader))
    clone.__dict__.update(state)
    return clone


def _peek(readable: Any) -> bytes | None:
    """What a plain TCP socket holds unread (``b""``: end of stream); None: unknown."""
    sock = _plain_socket(readable)
    return None if sock is None else _peek_socket(sock)


def _plain_socket(network_stream: Any) -> socket.socket | None:
    """The plain TCP socket of an httpcore network stream; None for TLS or anything else."""
    if network_stream is None or network_stream.get_extra_info("ssl_object") is not None:
        return None  # TLS (the raw socket, if any, holds ciphertext)
    sock = network_stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
        return None
    return sock


def _peek_socket(sock: socket.socket) -> bytes | None:
    try:
        return _recv_now(sock, socket.MSG_PEEK)
    except OSError:
        return None


def _recv_now(sock: socket.socket, flags: int = 0) -> bytes | None:
    """``sock.recv()`` that never waits; None: nothing to read.

    With a timeout set (httpcore sets one before each read), a Python socket's recv() polls
    first, for up to that timeout, whatever the flags: ``MSG_DONTWAIT`` does not stop it. The
    socket is switched to non-blocking for the call, then back.
    """
    timeout = sock.gettimeout()
    if timeout == 0.0:
        return _recv_or_none(sock, flags)
    sock.settimeout(0.0)
    try:
        return _recv_or_none(sock, flags)
    finally:
        sock.settimeout(timeout)


def _recv_or_none(sock: socket.socket, flags: int) -> bytes | None:
    try:
        return sock.recv(PEEK_BYTES, flags)
    except BlockingIOError:
        return None
