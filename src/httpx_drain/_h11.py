"""HTTP/1.1: bytes a server sent past the end of a response.

A server that sends more than it framed (bytes after a ``Content-Length`` body) leaves them in
h11's receive buffer. httpcore returns the connection to the pool all the same, and the next
request on it reads them as the start of its response: ``illegal status line``. We look before
a connection goes back to the pool, and close it instead. No public API shows h11's buffer, so
we walk httpcore's private attributes (the same in httpcore and httpcore2); if they change, we
see nothing and behave as httpcore does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["has_leftover_bytes"]


def has_leftover_bytes(inner_stream: Any) -> bool:
    """True when h11 holds bytes past the end of the response behind ``inner_stream``."""
    try:
        connection = inner_stream._httpcore_stream._stream._connection
        data, _closed = connection._h11_state.trailing_data
    except Exception:  # not httpcore's HTTP/1.1 stream, or its internals changed
        return False
    return bool(data)
