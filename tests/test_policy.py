"""The sans-IO core, with plain values: no sockets, no clock."""

from __future__ import annotations

import math

import h11
import httpx
import pytest

from httpx_drain import _h11
from httpx_drain._policy import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BYTES,
    Budget,
    DrainPolicy,
    Handover,
    Linger,
    Outcome,
    ResponseFacts,
    Skip,
    plan,
)
from httpx_drain._pool import ConnectTimer


def facts(
    *headers: tuple[str, str], version: bytes | str = b"HTTP/1.1", chunked: bool = True
) -> ResponseFacts:
    framing = [("transfer-encoding", "chunked")] if chunked else []
    return ResponseFacts.from_response(
        httpx.Headers(list(headers) + framing), {"http_version": version}
    )


def test_defaults_follow_the_anchors() -> None:
    policy = DrainPolicy()
    assert policy.deadline == DEFAULT_DEADLINE == 0.1  # OkHttp, openai's async drain
    assert policy.max_bytes == DEFAULT_MAX_BYTES == 512 * 1024  # Java's keep-alive cleaner


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"deadline": -1}, ValueError),
        ({"deadline": math.nan}, ValueError),
        ({"deadline": math.inf}, ValueError),
        ({"deadline": "1"}, TypeError),
        ({"deadline": True}, TypeError),
        ({"max_bytes": -1}, ValueError),
        ({"max_bytes": 1.5}, TypeError),
        ({"max_bytes": False}, TypeError),
    ],
)
def test_policy_rejects_bad_limits(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        DrainPolicy(**kwargs)  # type: ignore[arg-type]


def test_zero_limits_are_allowed() -> None:
    assert DrainPolicy(deadline=0, max_bytes=0).deadline == 0


def test_facts_from_headers() -> None:
    f = facts(("Connection", "keep-alive, Close"), ("Content-Length", "10"))
    assert f.connection_close
    assert f.content_length == 10
    assert f.http_version == "HTTP/1.1"
    assert facts(("content-length", "ten")).content_length is None
    assert facts(version=b"HTTP/2").http_version == "HTTP/2"
    assert facts(version="HTTP/1.1").http_version == "HTTP/1.1"


@pytest.mark.parametrize(
    ("f", "consumed", "expected"),
    [
        (facts(), 0, None),
        (facts(version=b"HTTP/2"), 0, Skip.NOT_HTTP11),
        (facts(("connection", "close")), 0, Skip.CONNECTION_CLOSE),
        (facts(("content-length", str(DEFAULT_MAX_BYTES + 1))), 0, Skip.TOO_LARGE),
        (facts(("content-length", str(DEFAULT_MAX_BYTES + 1))), 1, None),
        (facts(("content-length", "0")), 0, None),  # HEAD, 204, 304: free to finish
        (facts(chunked=False), 0, Skip.CLOSE_DELIMITED),
        (facts(("content-length", "5"), chunked=False), 0, None),
    ],
)
def test_plan(f: ResponseFacts, consumed: int, expected: Skip | None) -> None:
    assert plan(f, consumed, DrainPolicy()) is expected


def test_budget_caps_each_read_by_the_time_left() -> None:
    budget = Budget(DrainPolicy(deadline=1.0), started=100.0)
    assert budget.read_timeout(None, now=100.25) == pytest.approx(0.75)
    assert budget.read_timeout(600.0, now=100.5) == pytest.approx(0.5)
    assert budget.read_timeout(0.1, now=100.5) == pytest.approx(0.1)
    assert budget.read_timeout(600.0, now=102.0) == 0.0
    assert not budget.expired(100.99)
    assert budget.expired(101.0)


def test_budget_bytes_and_outcomes() -> None:
    budget = Budget(DrainPolicy(deadline=1.0, max_bytes=10), started=0.0)
    assert budget.discard(10)
    assert budget.conclude(reached_end=True, failed=False, now=0.5) is Outcome.KEPT
    assert budget.conclude(reached_end=False, failed=True, now=0.5) is Outcome.ERROR
    # A read that failed after the deadline is the deadline's doing (we capped its timeout).
    assert budget.conclude(reached_end=False, failed=True, now=1.5) is Outcome.DEADLINE
    assert not budget.discard(1)
    assert budget.conclude(reached_end=False, failed=False, now=0.5) is Outcome.MAX_BYTES
    result = budget.result(Outcome.MAX_BYTES, now=0.25)
    assert (result.outcome, result.bytes, result.seconds) == (Outcome.MAX_BYTES, 11, 0.25)


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_empty_by_definition_is_delimited(method: str, status: int) -> None:
    f = ResponseFacts.from_response(httpx.Headers(), {}, method, status)
    assert plan(f, 0, DrainPolicy()) is None


def test_read_size_stops_one_byte_past_the_cap() -> None:
    budget = Budget(DrainPolicy(max_bytes=100), started=0.0)
    assert budget.read_size(65536) == 101
    budget.discard(100)
    assert budget.read_size(65536) == 1
    budget.discard(5)
    assert budget.read_size(65536) == 1


def test_linger_learns_which_origins_are_worth_waiting_for() -> None:
    linger = Linger(cap=0.002)
    assert linger.wait("a") == 0.002  # nothing known: one cheap try
    linger.observe("a", 0.0001)  # terminators trail by microseconds: wait for them
    assert 0 < linger.wait("a") <= 0.002
    linger.observe("b", 2 * 0.002)  # a caller gave up after the cap: stop lingering at once
    assert linger.wait("b") == 0.0
    linger.observe("c", None)  # never came
    assert linger.wait("c") == 0.0
    for _ in range(20):  # but a server that becomes prompt is lingered for again
        linger.observe("c", 0.0001)
    assert linger.wait("c") > 0


def test_handover_waits_only_for_drains_due_within_its_window() -> None:
    handover = Handover(window=0.002)
    assert handover.wait("a", 10.0) == 0.0  # nothing learned: never wait
    handover.observe("a", 0.050)  # terminators trail by 50 ms
    assert handover.wait("a", 0.010) == 0.0  # due in 40 ms: a new connection is cheaper
    assert handover.wait("a", 0.0485) == 0.002  # due within the window
    assert handover.wait("a", 0.200) == 0.002  # overdue: its bytes are in, its worker is not
    handover.observe("a", 0.060)
    assert handover.wait("a", 0.050) == 0.0  # the average moved: (3 * 50 + 60) / 4 = 52.5 ms
    assert handover.wait("a", 0.051) == 0.002


def test_handover_forgets_an_origin_whose_terminator_did_not_come() -> None:
    handover = Handover(window=0.002)
    handover.observe("a", 0.001)
    handover.observe("a", None)  # a drain ran out of budget: unpredictable
    assert handover.wait("a", 60.0) == 0.0
    handover.observe("a", 0.005)  # until a drain ends again: then that one alone counts
    assert handover.wait("a", 0.0035) == 0.002
    assert handover.wait("a", 0.0025) == 0.0


def test_handover_remembers_a_bounded_number_of_origins() -> None:
    handover = Handover()
    for i in range(Handover.MAX_ORIGINS):
        handover.observe(f"o{i}", 0.001)
    assert handover.wait("o0", 0.001)
    handover.observe("new", 0.001)  # past the bound: everything older is forgotten
    assert handover.wait("o0", 0.001) == 0.0
    assert handover.wait("new", 0.001)


@pytest.mark.parametrize("length", ["12x", "-1", "\u00b2", "\u0663"])
def test_a_malformed_content_length_is_unknown(length: str) -> None:
    # Unicode digits ("²", Arabic-Indic three) pass str.isdigit() but not int(): still unknown.
    f = ResponseFacts.from_response({"content-length": length}, {"http_version": b"HTTP/1.1"})
    assert f.content_length is None
    assert f.delimited  # framed by a length h11 will reject, not by the server closing


def _h11_after_body(head: bytes, body: bytes) -> h11.Connection:
    """A client-side h11 connection that has just handed on ``body``, and holds no more."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(head + body)
    while not isinstance(conn.next_event(), h11.Data):
        pass
    return conn


def test_whether_the_end_is_buffered_after_the_last_byte() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked = _h11_after_body(head, b"5\r\nhello")
    assert chunked.trailing_data[0] == b""
    assert not _h11._reaches_end(chunked, b"")  # a chunked body cannot end without bytes
    assert not _h11._reaches_end(chunked, b"\r\n0\r\n")
    assert _h11._reaches_end(chunked, b"\r\n0\r\n\r\n")
    assert chunked.next_event() is h11.NEED_DATA  # the copies left h11's own state alone
    # A Content-Length body whose bytes were all handed on (its consumer closed before h11
    # was asked for the next event) ends with nothing more buffered.
    counted = _h11_after_body(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello")
    assert _h11._reaches_end(counted, b"")


def test_reader_copies_work_without_an_instance_dict() -> None:
    class Slotted:
        __slots__ = ("n",)

        def __init__(self) -> None:
            self.n = 1

    original = Slotted()
    clone = _h11._copy(original)
    clone.n = 2
    assert (type(clone), original.n) == (Slotted, 1)


def test_the_handover_window_is_a_new_connections_cost() -> None:
    handover = Handover(window=0.002, max_window=0.1)
    assert handover.window_for("o") == 0.002  # nothing learned: the default
    assert not handover.knows_connects("o")
    handover.observe_connect("o", 0.0003)
    assert handover.knows_connects("o")
    assert handover.window_for("o") == 0.002  # loopback TCP: cheaper than the floor
    unfloored = Handover(min_window=0.0)
    unfloored.observe_connect("o", 0.0003)
    assert unfloored.window_for("o") == 0.0003
    handover.observe_connect("p", 0.03)
    assert handover.window_for("p") == 0.03  # a TLS handshake over a real network
    handover.observe_connect("q", 5.0)
    assert handover.window_for("q") == 0.1  # capped
    handover.observe("p", 0.05)  # drains of p wait 50 ms for their end
    assert handover.wait("p", 0.015) == 0.0  # due in 35 ms: more than a connection costs
    assert handover.wait("p", 0.025) == 0.03  # due in 25 ms: waiting is cheaper


def test_the_floor_is_for_overdue_drains_only() -> None:
    # Loopback TCP: a connection costs 0.3 ms, less than a busy machine's scheduling jitter.
    handover = Handover(window=0.002, min_window=0.002)
    handover.observe_connect("o", 0.0003)
    handover.observe("o", 0.050)  # drains of o wait 50 ms for their end
    assert handover.wait("o", 0.0485) == 0.0  # due in 1.5 ms: a connection is cheaper
    assert handover.wait("o", 0.0498) == 0.0003  # due within what a connection costs
    # Overdue: its end should be here already; a late one is jitter, worth the floor.
    assert handover.wait("o", 0.050) == 0.002
    assert handover.wait("o", 0.060) == 0.002
    assert handover.connect_cost("o") == 0.0003
    # Nothing timed yet: a connection is guessed to cost ``window``.
    handover.observe("p", 0.050)
    assert handover.connect_cost("p") == 0.002
    assert handover.wait("p", 0.0485) == 0.002


def _timed(*names: str) -> list[float]:
    observed: list[float] = []
    clock = iter(range(100))
    timer = ConnectTimer(observed.append, clock=lambda: float(next(clock)))
    for name in names:
        timer.event(name)
    return observed


def test_the_connect_timer_reads_httpcores_trace_events() -> None:
    tcp = ("connection.connect_tcp.started", "connection.connect_tcp.complete")
    tls = ("connection.start_tls.started", "connection.start_tls.complete")
    request = ("http11.send_request_headers.started", "http11.send_request_headers.complete")
    assert _timed(*tcp, *request) == [1.0]
    assert _timed(*tcp, *tls, *request) == [2.0]  # TCP and TLS, to the first request event
    assert _timed(*request) == []  # a reused connection
    assert _timed(tcp[0], "connection.connect_tcp.failed", *request) == []
    assert _timed(*tcp, tls[0], "connection.start_tls.failed", *request) == []
    assert _timed(*tcp) == []  # never ready: nothing to report
    unix = ("connection.connect_unix_socket.started", "connection.connect_unix_socket.complete")
    assert _timed(*unix, *request) == [1.0]
