"""The HTTP/2 cancel path looks httpcore's private attributes up by duck typing: each guard.

Every shape it does not recognise must leave the response to close exactly as upstream would
(``cancel_*`` returns False and never raises). The network behaviour itself is tested against
a real HTTP/2 server in test_http2.py; these are the shapes no real server produces.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import anyio
import h2.config
import h2.connection
import pytest

from httpx_drain._h2 import _find, _reset, _Target, cancel_async, cancel_sync


def h2_state() -> h2.connection.H2Connection:
    state = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    state.initiate_connection()
    state.send_headers(
        1, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
    )
    return state


def connection(**overrides: Any) -> SimpleNamespace:
    attrs: dict[str, Any] = {
        "_h2_state": h2_state(),
        "_events": {1: []},
        "_state_lock": threading.Lock(),
        "_write_lock": threading.Lock(),
        "_write_outgoing_data": lambda request: None,
    }
    attrs.update(overrides)
    return SimpleNamespace(**attrs)


def stream(conn: Any = None, **overrides: Any) -> SimpleNamespace:
    attrs: dict[str, Any] = {
        "_connection": connection() if conn is None else conn,
        "_request": SimpleNamespace(extensions={"timeout": {"write": 600.0, "read": 600.0}}),
        "_stream_id": 1,
        "_closed": False,
    }
    attrs.update(overrides)
    return SimpleNamespace(**attrs)


def test_a_recognised_stream_is_found() -> None:
    target = _find(stream())
    assert target is not None
    assert target.stream_id == 1


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(stream(_closed=True), id="closed"),
        pytest.param(stream(_request=None), id="no-request"),
        pytest.param(stream(_stream_id="1"), id="id-not-int"),
        pytest.param(stream(_stream_id=True), id="id-bool"),
        pytest.param(stream(SimpleNamespace(_h2_state=None)), id="connection-attrs-missing"),
        pytest.param(stream(connection(_h2_state=object())), id="not-h2"),
        pytest.param(stream(connection(_events=[])), id="events-not-dict"),
        pytest.param(stream(connection(_events={})), id="stream-released"),
        pytest.param(stream(connection(_connection_terminated=object())), id="goaway"),
        pytest.param(stream(connection(_connection_error=True)), id="connection-failed"),
    ],
)
def test_unrecognised_shapes_are_left_alone(shape: Any) -> None:
    assert _find(shape) is None
    assert cancel_sync(shape, 1.0) is False


def test_h2_missing_means_no_http2(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "h2.connection", None)  # import fails
    assert _find(stream()) is None


def test_a_protocol_error_while_resetting_is_not_a_cancel() -> None:
    conn = connection()
    conn._h2_state.reset_stream = _raise_protocol_error
    assert _reset(_Target(conn, object(), 1)) is False


def _raise_protocol_error(*args: Any, **kwargs: Any) -> None:
    import h2.exceptions

    raise h2.exceptions.ProtocolError("no")


def test_sync_cancel_never_raises() -> None:
    def broken(request: Any) -> None:
        raise OSError("write failed")

    assert cancel_sync(stream(connection(_write_outgoing_data=broken)), 1.0) is False


@pytest.mark.anyio
async def test_async_cancel() -> None:
    written: list[Any] = []

    async def write(request: Any) -> None:
        written.append(request)

    async def broken(request: Any) -> None:
        raise OSError("write failed")

    conn = connection(
        _state_lock=anyio.Lock(), _write_lock=anyio.Lock(), _write_outgoing_data=write
    )
    assert await cancel_async(stream(conn), 1.0) is True
    (request,) = written
    # The frames are written within the drain's deadline, not the request's write timeout.
    assert request.extensions["timeout"] == {"write": 1.0, "read": 600.0}
    assert await cancel_async(stream(_closed=True), 1.0) is False
    bad = connection(
        _state_lock=anyio.Lock(), _write_lock=anyio.Lock(), _write_outgoing_data=broken
    )
    assert await cancel_async(stream(bad), 1.0) is False


def test_the_cancels_write_timeout_is_capped_by_the_deadline() -> None:
    written: list[Any] = []
    conn = connection(_write_outgoing_data=written.append)
    assert cancel_sync(stream(conn), 0.5) is True
    assert written[0].extensions["timeout"]["write"] == 0.5
    for timeouts, expected in (({"write": 0.1}, 0.1), ({"write": None}, 0.5), ({}, 0.5)):
        request = SimpleNamespace(extensions={"timeout": timeouts, "trace": None})
        conn = connection(_write_outgoing_data=written.append)
        assert cancel_sync(stream(conn, _request=request), 0.5)
        assert written[-1].extensions["timeout"]["write"] == expected
        assert written[-1].extensions["trace"] is None  # the rest of the extensions pass on
        assert request.extensions["timeout"] == timeouts  # the request's own are left alone


def test_a_cancel_gives_up_when_the_locks_do_not_come() -> None:
    written: list[Any] = []
    for busy in ("_state_lock", "_write_lock"):
        conn = connection(_write_outgoing_data=written.append)
        lock = threading.Lock()
        wrapper = SimpleNamespace(_lock=lock)  # the shape of httpcore's Lock
        free = SimpleNamespace(_lock=threading.Lock())
        conn._state_lock = wrapper if busy == "_state_lock" else free
        conn._write_lock = wrapper if busy == "_write_lock" else free
        with lock:
            assert cancel_sync(stream(conn), 0.01) is False
        assert written == []
        assert not free._lock.locked()  # a lock taken before the wait ran out is given back
        assert cancel_sync(stream(conn), 0.01) is True  # free again: the cancel goes ahead
        written.clear()
