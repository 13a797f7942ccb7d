"""Counters a user can read and export, and the one log line per drain."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, fields

from . import _fork
from ._policy import DrainResult, Outcome, Skip

__all__ = ["DrainStats", "StatsSnapshot", "logger"]

#: Debug: one line per drain (outcome, bytes, milliseconds, origin). Never a header value or a
#: path: the origin is scheme, host and port only, since query strings can carry API keys.
logger = logging.getLogger("httpx_drain")

_OUTCOME_FIELD = {
    Outcome.KEPT: "connections_kept",
    Outcome.DEADLINE: "deadline_exceeded",
    Outcome.MAX_BYTES: "max_bytes_exceeded",
    Outcome.ERROR: "drain_errors",
}


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of the counters at one moment."""

    #: Responses whose stream the transport wrapped.
    responses_wrapped: int = 0
    #: Responses closed before their end that the transport tried to drain.
    drains_started: int = 0
    #: Drains that reached the end of the body: the connection went back to the pool.
    connections_kept: int = 0
    #: Drains that gave up because the deadline ran out.
    deadline_exceeded: int = 0
    #: Drains that gave up because more than ``max_bytes`` were left.
    max_bytes_exceeded: int = 0
    #: Drains that failed while reading (reset, incomplete chunked read, ...).
    drain_errors: int = 0
    #: Body bytes read and thrown away by drains.
    bytes_discarded: int = 0
    #: Background drains refused because ``max_pending`` were already in flight (or the
    #: transport was closing): the connection was closed at once.
    drains_rejected: int = 0
    #: Event streams the consumer saw end at their terminal event (``data: [DONE]``, ...).
    terminal_events: int = 0
    #: Of those, streams whose server closed without ending the body (no terminator).
    missing_terminators: int = 0
    #: Event streams cut off before their terminal event (raised as IncompleteStreamError).
    truncated_streams: int = 0
    #: HTTP/2 streams closed early and cancelled with RST_STREAM(CANCEL).
    streams_cancelled: int = 0
    #: Early closes not drained because it could not help (``Connection: close``, HTTP/2, a
    #: known remainder over ``max_bytes``, a read that had already failed).
    drains_skipped: int = 0
    #: New requests that waited (briefly) for a connection of their origin whose background
    #: drain was about to end, instead of opening another connection.
    handover_waits: int = 0
    #: Background drains that found the rest of the body already buffered (in h11's or the
    #: kernel's buffer) and ended it in ``close()`` itself, with no worker thread or task.
    drains_buffered: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name, for export to a metrics system."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class DrainStats:
    """Thread-safe counters of one transport. Read them with :meth:`snapshot`."""

    def __init__(self) -> None:
        # Drains may finish on a worker thread while the caller's thread wraps the next
        # response: ``+=`` on an attribute is not atomic, so one lock guards every counter.
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((f.name for f in fields(StatsSnapshot)), 0)
        _fork.register(self)

    def _after_fork(self) -> None:
        # A thread of the parent may have held the lock at the fork: the child's counters
        # start from the parent's, under a lock of their own.
        self._lock = threading.Lock()

    def snapshot(self) -> StatsSnapshot:
        """A consistent copy of all counters."""
        with self._lock:
            return StatsSnapshot(**self._counts)

    def __getattr__(self, name: str) -> int:
        # ``transport.stats.connections_kept`` reads one counter without a snapshot.
        counts = self.__dict__.get("_counts")
        if counts is not None and name in counts:
            with self._lock:
                return int(counts[name])
        raise AttributeError(name)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.snapshot().as_dict().items())
        return f"DrainStats({inner})"

    def add(self, name: str, n: int = 1) -> None:
        """Increment one counter (for the transports)."""
        with self._lock:
            self._counts[name] += n

    def record(self, result: DrainResult, origin: str) -> None:
        """Count a finished drain and log it."""
        with self._lock:
            self._counts[_OUTCOME_FIELD[result.outcome]] += 1
            self._counts["bytes_discarded"] += result.bytes
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "drain %s: %d bytes in %.1f ms, origin %s%s",
                result.outcome.value,
                result.bytes,
                result.seconds * 1000,
                origin,
                f" ({result.error})" if result.error else "",
            )

    def record_skip(self, reason: Skip, origin: str) -> None:
        """Count an early close that was not drained, and log why."""
        self.add("drains_skipped")
        logger.debug("drain skipped (%s), origin %s", reason.value, origin)
