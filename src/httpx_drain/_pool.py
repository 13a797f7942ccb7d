"""What the wrapped transport's connection pool holds, when it is httpcore's (or httpcore2's).

Only a hint for :class:`~httpx_drain._policy.Handover`: any transport we cannot inspect
answers "cannot tell", and the request goes ahead as it would without us.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["has_available_connection"]


def has_available_connection(transport: Any, url: Any) -> bool | None:
    """Whether ``transport``'s pool can take a request to ``url`` at once; ``None``: unknown.

    Uses httpcore's public pool interface (``ConnectionPool.connections``, and each
    connection's ``can_handle_request()`` and ``is_available()``); only reaching the pool goes
    through the host library's private ``_pool`` attribute, looked up defensively.
    """
    pool = getattr(transport, "_pool", None)
    connections = getattr(pool, "connections", None)
    if connections is None:
        return None
    try:
        core = sys.modules[type(pool).__module__.partition(".")[0]]
        origin = core.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=b"/"
        ).origin
        return any(c.can_handle_request(origin) and c.is_available() for c in connections)
    except Exception:  # a pool of another shape: cannot tell
        return None
