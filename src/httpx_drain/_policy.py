"""The sans-IO core: should a response be drained, how much budget is left, what a drain concluded.

Nothing here touches a socket, a clock or an event loop: the I/O shells in ``_streams.py`` pass
in the facts (bytes seen, the current monotonic time) and act on the answers. That keeps every
decision unit-testable with plain values, in the manner of h11.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "DEFAULT_BACKGROUND_DEADLINE",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PENDING",
    "Budget",
    "DrainPolicy",
    "DrainResult",
    "Handover",
    "HeaderLookup",
    "Linger",
    "Outcome",
    "ResponseFacts",
    "Skip",
    "plan",
    "select_headers",
]

#: 100 ms, as OkHttp's ``DISCARD_STREAM_TIMEOUT_MILLIS`` and the openai SDK's async drain: well
#: below the cost of a new TCP + TLS handshake on any real network path, long enough for a
#: terminator that trails the last event by a few milliseconds through a proxy.
DEFAULT_DEADLINE = 0.1

#: 1 s when the drain runs in the background: nobody waits for it, so it can afford to wait for
#: a terminator that a slow proxy holds back, while a server that never sends one still costs
#: a worker no more than this.
DEFAULT_BACKGROUND_DEADLINE = 1.0

#: 512 KiB, as Java's ``KeepAliveStreamCleaner``: far above the tail of any SSE stream (a few
#: bytes), far below the point where reading on beats opening a new connection.
DEFAULT_MAX_BYTES = 512 * 1024


#: Background drains one transport runs at once. Each holds a connection that is otherwise
#: lost (and a thread or a task, about 90 KiB or 25 KiB while it waits), so the cap only bites
#: against servers that hold terminators back; 64 covers a burst of concurrent streams.
DEFAULT_MAX_PENDING = 64


class HeaderLookup(Protocol):
    """Case-insensitive header access, as ``httpx.Headers`` offers."""

    def get(self, key: str, default: None = None) -> str | None: ...


#: The response headers the decisions here read (lower-case): all that is kept of a response.
DECISION_HEADERS = frozenset(
    (b"connection", b"content-length", b"content-type", b"transfer-encoding")
)


def select_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers the decisions read, by lower-case name, from raw ``(name, value)`` pairs.

    One pass over the response's headers instead of one case-insensitive lookup per
    question; a repeated header's values are joined with ``", "``, as ``httpx.Headers.get``
    joins them. Values are decoded as Latin-1, which never fails; the decisions only look at
    their ASCII tokens.
    """
    found: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        if key in DECISION_HEADERS:
            text, header = value.decode("latin-1"), key.decode("ascii")
            found[header] = f"{found[header]}, {text}" if header in found else text
    return found


class Skip(str, enum.Enum):
    """Why a response closed early is not drained."""

    #: The body was read to its end: the connection is already reusable.
    COMPLETE = "complete"
    #: The server said ``Connection: close``: the connection is not reusable whatever we do.
    CONNECTION_CLOSE = "connection-close"
    #: The response is not HTTP/1.1: an HTTP/2 stream does not hold its connection hostage.
    NOT_HTTP11 = "not-http/1.1"
    #: The known remainder (``Content-Length``) exceeds ``max_bytes``.
    TOO_LARGE = "too-large"
    #: The body ends when the server closes (neither ``Content-Length`` nor chunked): the
    #: connection cannot be reused, so reading on would only waste the budget.
    CLOSE_DELIMITED = "close-delimited"
    #: Reading the body had already failed: the inner stream closed its connection.
    FAILED = "failed"


class Outcome(str, enum.Enum):
    """What one drain concluded."""

    #: The end of the body was reached: the connection went back to the pool.
    KEPT = "kept"
    #: The deadline ran out first: the connection was closed.
    DEADLINE = "deadline"
    #: More than ``max_bytes`` were left: the connection was closed.
    MAX_BYTES = "max-bytes"
    #: Reading failed (reset, incomplete chunked read, ...): the connection was closed.
    ERROR = "error"


@dataclass(frozen=True)
class DrainPolicy:
    """The limits of one drain. Validated on construction."""

    deadline: float = DEFAULT_DEADLINE
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if isinstance(self.deadline, bool) or not isinstance(self.deadline, (int, float)):
            raise TypeError(f"deadline must be a number of seconds, not {self.deadline!r}")
        if not math.isfinite(self.deadline) or self.deadline < 0:
            raise ValueError(f"deadline must be finite and >= 0, not {self.deadline!r}")
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int):
            raise TypeError(f"max_bytes must be an int, not {self.max_bytes!r}")
        if self.max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {self.max_bytes!r}")


@dataclass(frozen=True)
class ResponseFacts:
    """What the shells know about a response when it is closed early."""

    http_version: str
    connection_close: bool
    content_length: int | None
    #: The body's length is known from its framing (chunked or ``Content-Length``), or it is
    #: empty by definition (HEAD, 1xx, 204, 304): the connection can outlive it.
    delimited: bool = True

    @classmethod
    def from_response(
        cls,
        headers: HeaderLookup,
        extensions: Mapping[str, object],
        method: str = "GET",
        status: int = 200,
    ) -> ResponseFacts:
        """Read the facts from the response headers and extensions."""
        version = extensions.get("http_version", b"HTTP/1.1")
        http_version = (
            version.decode("ascii", "replace") if isinstance(version, bytes) else str(version)
        )
        connection = headers.get("connection")
        length = headers.get("content-length")
        # A malformed length is h11's problem, not ours: treat it as unknown.
        content_length = (
            int(length) if length is not None and length.isascii() and length.isdigit() else None
        )
        encoding = headers.get("transfer-encoding")
        # Only a response read off a connection (httpcore names its HTTP version) can be
        # close-delimited; an in-memory body (MockTransport, ASGI) has no connection to lose.
        on_the_wire = "http_version" in extensions
        empty = method.upper() == "HEAD" or status < 200 or status in (204, 304)
        return cls(
            http_version=http_version,
            connection_close=connection is not None and "close" in connection.lower(),
            content_length=content_length,
            delimited=not on_the_wire
            or empty
            or length is not None
            or (encoding is not None and "chunked" in encoding.lower()),
        )


def plan(facts: ResponseFacts, consumed: int, policy: DrainPolicy) -> Skip | None:
    """Decide whether to drain a response closed after ``consumed`` body bytes.

    Returns the reason to skip, or ``None`` to drain. Bodies that are empty by definition (HEAD,
    204, 304) are *not* skipped: h11 ends them without a read, and only that end puts the
    connection back in the pool, so "draining" them costs nothing and saves the connection.
    """
    if facts.http_version != "HTTP/1.1":
        return Skip.NOT_HTTP11
    if facts.connection_close:
        return Skip.CONNECTION_CLOSE
    if not facts.delimited:
        return Skip.CLOSE_DELIMITED
    if facts.content_length is not None:
        remainder = facts.content_length - consumed
        if remainder > policy.max_bytes:
            return Skip.TOO_LARGE
    return None


@dataclass
class Budget:
    """The time and bytes one drain may still spend. ``now`` is a monotonic clock reading."""

    policy: DrainPolicy
    started: float
    discarded: int = 0
    _expires: float = field(init=False)

    def __post_init__(self) -> None:
        self._expires = self.started + self.policy.deadline

    def remaining(self, now: float) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._expires - now)

    def read_timeout(self, requested: float | None, now: float) -> float:
        """The per-read timeout to use: what the caller asked for, capped by the time left."""
        left = self.remaining(now)
        return left if requested is None else min(requested, left)

    def expired(self, now: float) -> bool:
        """True once the deadline has passed."""
        return now >= self._expires

    def read_size(self, requested: int) -> int:
        """How many bytes one network read may ask for: at most one past the byte cap, so a
        hostile server cannot make a drain read (and hold) a whole buffer beyond it."""
        return max(1, min(requested, self.policy.max_bytes - self.discarded + 1))

    def discard(self, nbytes: int) -> bool:
        """Account for ``nbytes`` read and thrown away; False once over the byte cap."""
        self.discarded += nbytes
        return self.discarded <= self.policy.max_bytes

    def conclude(self, *, reached_end: bool, failed: bool, now: float) -> Outcome:
        """Name the outcome of a drain that stopped at ``now``."""
        if reached_end:
            return Outcome.KEPT
        if self.discarded > self.policy.max_bytes:
            return Outcome.MAX_BYTES
        # A read that failed because we capped its timeout is a deadline, not an error.
        if self.expired(now):
            return Outcome.DEADLINE
        return Outcome.ERROR if failed else Outcome.DEADLINE

    def result(self, outcome: Outcome, now: float, error: str | None = None) -> DrainResult:
        """Freeze the figures of this drain."""
        return DrainResult(outcome, self.discarded, now - self.started, error)


class _Averages:
    """A moving average of how long drains waited for the end of the body, per origin.

    A sample of ``inf`` (the end never came) makes the average ``inf`` until the next sample,
    which then starts it afresh; ``ceiling`` bounds it (so that with a finite ceiling one lost
    terminator does not count for ever).
    """

    #: The weight of the newest observation.
    ALPHA = 0.25
    #: Origins remembered at most: a client talks to few; forget all past this.
    MAX_ORIGINS = 1024

    def __init__(self, ceiling: float = math.inf) -> None:
        self._ceiling = ceiling
        self._values: dict[str, float] = {}

    def get(self, origin: str) -> float | None:
        return self._values.get(origin)

    def observe(self, origin: str, waited: float | None) -> None:
        sample = math.inf if waited is None else waited
        average = self._values.get(origin)
        if average is None:
            if len(self._values) >= self.MAX_ORIGINS:
                self._values.clear()
        elif average != math.inf:
            sample = (1 - self.ALPHA) * average + self.ALPHA * sample
        self._values[origin] = min(sample, self._ceiling)


class Linger:
    """How long a caller may wait for a background drain that has begun to wait for the network.

    Servers write the last event and the terminator separately, microseconds apart: a caller
    that returns the instant its drain finds the socket empty sends its next request to a new
    connection while the old one is a few microseconds from reusable. So the caller lingers, but
    only where that pays: per origin, we keep a moving average of how long drains waited for the
    end of the body, and linger up to twice that while it stays under ``cap`` (far below the cost
    of a new connection on any real network), not at all once it is above. A drain that never
    reached the end counts as over the cap. Learning never stops: every drain is observed,
    whether the caller lingered or not.
    """

    MAX_ORIGINS = _Averages.MAX_ORIGINS

    def __init__(self, cap: float = 0.002) -> None:
        self.cap = cap
        # Clamped, so that one lost terminator does not shut lingering off for ever.
        self._averages = _Averages(ceiling=10 * cap)

    def wait(self, origin: str) -> float:
        """Seconds to linger for a drain of ``origin`` that is waiting for the network."""
        average = self._averages.get(origin)
        if average is None:
            return self.cap  # nothing learned yet: one cheap try
        if average > self.cap:
            return 0.0
        return min(self.cap, max(2 * average, 0.0002))

    def observe(self, origin: str, waited: float | None) -> None:
        """Record how long a drain waited for the end (``None``: it never came)."""
        self._averages.observe(origin, waited)


class Handover:
    """Whether a new request should wait for a connection whose background drain ends soon.

    With background drains, a connection stays busy for the terminator's delay after its
    response was closed; a request sent meanwhile opens a new connection. When a drain of the
    same origin is due to end sooner than a new connection would take to open, waiting for it
    costs less, and keeps the client on as few connections as the delay needs. Per origin we
    keep a moving average of how long drains waited for the end of the body; a drain that never
    reached it makes the origin unpredictable until one does again.

    What a new connection costs is a moving average of the first connection the transport
    opened to the origin and of those opened while drains were pending, at most
    ``max_window``; ``window`` until one has been timed. Waiting no longer than the
    alternative costs means a wrong guess (the end does not come) costs a request at most twice
    what it would have without us. A drain that is *overdue* (it has waited longer than the
    origin's drains do) gets at least ``min_window``: its end should be here already, and on a
    busy machine a terminator sent microseconds after the last event may reach the socket a
    millisecond or two late. A drain not yet due gets no such floor: on loopback or a LAN a
    connection costs less than the floor, and waiting for an end that is still on its way costs
    the request more than the connection would (openai SDK, D = 50 ms, loopback TCP: 1.08x a
    bare request at D = 0 against 1.12x with the floor for both; see docs/defaults.md).
    """

    MAX_ORIGINS = _Averages.MAX_ORIGINS

    def __init__(
        self, window: float = 0.002, max_window: float = 0.1, min_window: float = 0.002
    ) -> None:
        self.window = window
        self.max_window = max_window
        self.min_window = min_window
        self._averages = _Averages()
        self._connects = _Averages()

    def connect_cost(self, origin: str) -> float:
        """Seconds a new connection to ``origin`` costs, as far as we know (at most
        ``max_window``; ``window`` until one has been timed)."""
        cost = self._connects.get(origin)
        return self.window if cost is None else min(cost, self.max_window)

    def window_for(self, origin: str) -> float:
        """Seconds a request to ``origin`` may wait for an overdue drain: a new connection's
        cost, and at least ``min_window``."""
        return max(self.min_window, self.connect_cost(origin))

    def wait(self, origin: str, waiting_for: float) -> float:
        """Seconds a new request may wait for a drain that has waited ``waiting_for`` seconds.

        ``0.0``: do not wait (nothing learned yet, or the drain is due later than a new
        connection would be open).
        """
        average = self._averages.get(origin)
        if average is None:
            return 0.0
        due_in = average - waiting_for
        if due_in <= 0:
            return self.window_for(origin)
        cost = self.connect_cost(origin)
        return cost if due_in <= cost else 0.0

    def knows_connects(self, origin: str) -> bool:
        """Whether a connection to ``origin`` has been timed yet."""
        return self._connects.get(origin) is not None

    def observe_connect(self, origin: str, seconds: float) -> None:
        """Record how long opening a connection to ``origin`` took (TCP and TLS)."""
        self._connects.observe(origin, seconds)

    def observe(self, origin: str, waited: float | None) -> None:
        """Record how long a drain waited for the end (``None``: it never came)."""
        self._averages.observe(origin, waited)


@dataclass(frozen=True)
class DrainResult:
    """The figures of one finished drain."""

    outcome: Outcome
    bytes: int
    seconds: float
    #: The exception's class name when ``outcome`` is ``ERROR`` (never its message: it may
    #: quote server bytes).
    error: str | None = None
