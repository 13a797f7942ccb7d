"""Assertions on what a replay server saw, with failure messages that show every connection."""

from __future__ import annotations

from ._base import ReplayServer
from ._facts import ConnectionFacts, ServerFacts

__all__ = [
    "assert_connections",
    "assert_no_early_disconnects",
    "assert_no_early_disconnects_async",
    "format_facts",
]

#: Seconds the early-disconnect assertions wait for responses still in flight to settle.
DEFAULT_SETTLE = 5.0


def _facts(server: ReplayServer | ServerFacts) -> ServerFacts:
    return server if isinstance(server, ServerFacts) else server.facts


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_facts(server: ReplayServer | ServerFacts) -> str:
    """A table of the server's connections: requests, responses, early closes, bytes."""
    facts = _facts(server)
    connections = facts.connections
    lines = [
        f"{_plural(len(connections), 'connection')}, {_plural(facts.request_count, 'request')},"
        f" {_plural(facts.responses_completed, 'response')} completed,"
        f" {_plural(facts.early_disconnects, 'early disconnect')}"
    ]
    if connections:
        lines.append(
            "  conn  peer                   requests  completed  early close  closed  bytes"
        )
        lines += [_row(conn) for conn in connections]
    errors = facts.errors
    if errors:
        lines.append(f"  server errors: {', '.join(repr(e) for e in errors)}")
    return "\n".join(lines)


def _row(conn: ConnectionFacts) -> str:
    peer = f"{conn.peer[0]}:{conn.peer[1]}"
    early = "YES" if conn.client_closed_early else "no"
    closed = "yes" if conn.closed else "no"
    return (
        f"  {conn.index:>4}  {peer:<21}  {conn.requests:>8}  {conn.responses_completed:>9}"
        f"  {early:<11}  {closed:<6}  {conn.bytes_sent}"
    )


def assert_connections(
    server: ReplayServer | ServerFacts, expected: int, *, requests: int | None = None
) -> None:
    """Assert the server accepted ``expected`` connections (and received ``requests``).

    Connections are recorded when accepted, before their first request is read, so a test
    whose client has received its responses can assert at once.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    facts = _facts(server)
    got, received = facts.connection_count, facts.request_count
    if got == expected and (requests is None or received == requests):
        return
    wanted = _plural(expected, "connection")
    if requests is not None:
        wanted += f" for {_plural(requests, 'request')}"
    raise AssertionError(f"expected {wanted}, the server saw:\n{format_facts(facts)}")


def _settled(facts: ServerFacts) -> bool:
    # A response is settled once its last byte is written or its connection is closed; until
    # then a client may still be draining it, or the server may not have noticed it left.
    return all(
        conn.closed or conn.responses_completed >= conn.requests for conn in facts.connections
    )


def _check_early(facts: ServerFacts) -> None:
    __tracebackhide__ = True
    early = [conn.index for conn in facts.connections if conn.client_closed_early]
    if early:
        which = ", ".join(str(i) for i in early)
        raise AssertionError(
            f"expected no early disconnects; the client closed connection {which} in the"
            f" middle of a response:\n{format_facts(facts)}"
        )


def assert_no_early_disconnects(
    server: ReplayServer | ServerFacts, *, settle: float = DEFAULT_SETTLE
) -> None:
    """Assert no client closed a connection in the middle of a response.

    The server notices a client leaving only after it left, so this first waits, up to
    ``settle`` seconds, until every response is written to its end or its connection closed
    (a background drain still reading a late terminator, for instance). It blocks the calling
    thread: in a test whose server or client runs in the event loop, await
    :func:`assert_no_early_disconnects_async` instead.
    """
    __tracebackhide__ = True
    facts = _facts(server)
    facts.wait_until(_settled, settle)
    _check_early(facts)


async def assert_no_early_disconnects_async(
    server: ReplayServer | ServerFacts, *, settle: float = DEFAULT_SETTLE
) -> None:
    """:func:`assert_no_early_disconnects` without blocking the running event loop."""
    __tracebackhide__ = True
    facts = _facts(server)
    await facts.wait_until_async(_settled, settle)
    _check_early(facts)
