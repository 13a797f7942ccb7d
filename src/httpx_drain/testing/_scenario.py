"""Scenarios: one streamed HTTP/1.1 response, described step by step."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from ._gate import Gate

__all__ = [
    "Chunk",
    "Endless",
    "Fin",
    "Framing",
    "Pause",
    "Raw",
    "RequestInfo",
    "Reset",
    "Scenario",
    "ScenarioSource",
    "Signal",
    "Split",
    "Step",
    "Terminator",
    "Trickle",
    "UnsupportedStep",
    "WaitFor",
    "resolve",
]

Framing: TypeAlias = Literal["chunked", "content-length", "eof"]


class UnsupportedStep(ValueError):
    """A server backend cannot replay this step or scenario (hypercorn cannot send raw bytes)."""


@dataclass(frozen=True)
class Chunk:
    """One body write: a whole chunk (``size\\r\\n data \\r\\n``) with chunked framing.

    With ``terminator=True`` the terminator ``0\\r\\n\\r\\n`` goes out in the same write, so it
    reaches the client in the same TCP segment as the data.
    """

    data: bytes
    terminator: bool = False


@dataclass(frozen=True)
class Pause:
    """Send nothing for ``seconds``."""

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("Pause.seconds must be >= 0")


@dataclass(frozen=True)
class WaitFor:
    """Send nothing until the test opens ``gate`` (or the server stops)."""

    gate: Gate


@dataclass(frozen=True)
class Signal:
    """Open ``gate`` when the replay reaches this step: everything before it has been written."""

    gate: Gate


@dataclass(frozen=True)
class Terminator:
    """The last chunk: ``0\\r\\n``, the trailer fields, ``\\r\\n``. Chunked framing only."""

    trailers: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Fin:
    """Close the connection now (FIN), whatever was sent before."""


@dataclass(frozen=True)
class Reset:
    """Abort the connection now with a TCP RST (SO_LINGER on, 0 seconds, then close)."""


@dataclass(frozen=True)
class Trickle:
    """Send ``data`` ``size`` bytes at a time, one write (one chunk) every ``interval`` seconds."""

    data: bytes
    interval: float
    size: int = 1

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("Trickle.size must be >= 1")
        if self.interval < 0:
            raise ValueError("Trickle.interval must be >= 0")


@dataclass(frozen=True)
class Split:
    """Send ``data`` cut at the offsets ``at``, one write (one chunk) per piece.

    This is what a proxy does when it splits one SSE event across several chunks.
    """

    data: bytes
    at: Sequence[int]

    def __post_init__(self) -> None:
        cuts = list(self.at)
        if cuts != sorted(set(cuts)) or any(not 0 < cut < len(self.data) for cut in cuts):
            raise ValueError("Split.at must be increasing offsets strictly inside data")

    def pieces(self) -> list[bytes]:
        """The pieces, in order."""
        bounds = [0, *self.at, len(self.data)]
        return [self.data[start:end] for start, end in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class Raw:
    """These exact bytes on the wire, with no framing at all (malformed chunks and the like)."""

    data: bytes


@dataclass(frozen=True)
class Endless:
    """Send ``data`` as one chunk after another until the client leaves or the server stops."""

    data: bytes
    interval: float = 0.0

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("Endless.data must not be empty")
        if self.interval < 0:
            raise ValueError("Endless.interval must be >= 0")


Step: TypeAlias = (
    Chunk | Pause | WaitFor | Signal | Terminator | Fin | Reset | Trickle | Split | Raw | Endless
)


@dataclass(frozen=True)
class Scenario:
    """One streamed response, replayed for every request on every connection.

    ``framing``: ``"chunked"`` (the terminator is sent automatically after the last step unless
    the steps send one or end the connection), ``"content-length"`` (the length is computed
    from the Chunk/Split/Trickle payloads unless ``headers`` already has one, which is then
    sent as given) or ``"eof"`` (no length: the body ends when the server closes).
    ``connection_close`` sends ``Connection: close`` and closes after the response.
    ``keep_alive_timeout`` closes a connection left idle this long after a response (the
    hypercorn servers also close a new connection that sends no request that long).
    """

    steps: Sequence[Step] = ()
    status: int = 200
    headers: Sequence[tuple[str, str]] = (("content-type", "text/event-stream"),)
    framing: Framing = "chunked"
    connection_close: bool = False
    keep_alive_timeout: float | None = None

    def __post_init__(self) -> None:
        # Tuples keep the frozen scenario hashable and safe to share between threads.
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "headers", tuple((k, v) for k, v in self.headers))
        if self.framing not in ("chunked", "content-length", "eof"):
            raise ValueError(f"unknown framing {self.framing!r}")
        if self.framing != "chunked":
            for step in self.steps:
                if isinstance(step, Terminator) or (isinstance(step, Chunk) and step.terminator):
                    raise ValueError(f"{step!r} needs chunked framing")
        endless = any(isinstance(step, Endless) for step in self.steps)
        if self.framing == "content-length" and endless and self.header("content-length") is None:
            raise ValueError("an Endless body has no Content-Length; set the header")

    def header(self, name: str) -> str | None:
        """The value of the first header called ``name`` (any case), or ``None``."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def body_length(self) -> int:
        """Payload bytes of the Chunk, Split and Trickle steps (Raw bytes are not counted)."""
        total = 0
        for step in self.steps:
            if isinstance(step, Chunk | Split | Trickle):
                total += len(step.data)
        return total


@dataclass(frozen=True)
class RequestInfo:
    """A request the server read in full, handed to a callable scenario source.

    ``connection_index`` numbers the server's connections from 0 in accept order;
    ``request_index`` numbers the requests on that connection from 0. Header names are
    lower-case.
    """

    method: str
    path: str
    headers: Sequence[tuple[str, str]] = field(default=())
    body: bytes = b""
    connection_index: int = 0
    request_index: int = 0

    def header(self, name: str) -> str | None:
        """The value of the first header called ``name`` (any case), or ``None``."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


ScenarioSource: TypeAlias = Scenario | Callable[[RequestInfo], Scenario]


def resolve(source: ScenarioSource, request: RequestInfo) -> Scenario:
    """The scenario to replay for ``request``."""
    if isinstance(source, Scenario):
        return source
    scenario = source(request)
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario callable returned {type(scenario).__name__}, not Scenario")
    return scenario
