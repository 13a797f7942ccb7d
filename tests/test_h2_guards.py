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
        "_request": object(),
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
    assert cancel_sync(shape) is False


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

    assert cancel_sync(stream(connection(_write_outgoing_data=broken))) is False


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
    assert await cancel_async(stream(conn)) is True
    assert len(written) == 1
    assert await cancel_async(stream(_closed=True)) is False
    bad = connection(
        _state_lock=anyio.Lock(), _write_lock=anyio.Lock(), _write_outgoing_data=broken
    )
    assert await cancel_async(stream(bad)) is False
