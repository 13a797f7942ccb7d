"""The public surface: exports, argument checking, the optional httpx2 flavour."""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import textwrap
from typing import Any

import httpx
import pytest

import httpx_drain

from .conftest import Flavour


def public_modules() -> list[Any]:
    modules: list[Any] = [httpx_drain]
    with contextlib.suppress(ImportError):  # httpx2 needs Python 3.11+
        modules.append(importlib.import_module("httpx_drain.httpx2"))
    return modules


def isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("module", public_modules(), ids=lambda m: m.__name__)
def test_all_is_complete_and_sorted(module: Any) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", module.__name__).startswith("httpx_drain")
        and not isinstance(value, type(sys))
    }
    assert public <= set(module.__all__) | {"annotations"}
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions.
    assert module.__all__ == sorted(module.__all__, key=isort_key)
    for name in module.__all__:
        assert hasattr(module, name), name


def test_public_classes_claim_the_package() -> None:
    for name in ("DrainTransport", "AsyncDrainTransport", "IncompleteStreamError", "DrainStats"):
        assert getattr(httpx_drain, name).__module__ == "httpx_drain"


def test_subclasses_of_the_host_library(flavour: Flavour) -> None:
    assert issubclass(flavour.DrainTransport, flavour.lib.BaseTransport)
    assert issubclass(flavour.AsyncDrainTransport, flavour.lib.AsyncBaseTransport)
    assert isinstance(flavour.DrainTransport().transport, flavour.lib.HTTPTransport)
    assert isinstance(flavour.AsyncDrainTransport().transport, flavour.lib.AsyncHTTPTransport)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "later"}, ValueError, "mode"),
        ({"max_pending": 0}, ValueError, "max_pending"),
        ({"max_pending": True}, ValueError, "max_pending"),
        ({"deadline": -1}, ValueError, "deadline"),
        ({"max_bytes": -1}, ValueError, "max_bytes"),
        ({"terminal": "[DONE]"}, TypeError, "terminal"),
        ({"transport": object()}, TypeError, "transport"),
    ],
)
def test_bad_arguments_are_typed_errors(
    flavour: Flavour, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        flavour.DrainTransport(**kwargs)
    with pytest.raises(error, match=match):
        flavour.AsyncDrainTransport(**kwargs)


def test_transport_options_need_the_default_transport(flavour: Flavour) -> None:
    with pytest.raises(TypeError, match="verify"):
        flavour.DrainTransport(flavour.lib.HTTPTransport(), verify=False)
    transport = flavour.DrainTransport(verify=False, http2=False, retries=2)
    assert transport.transport._pool._retries == 2


def test_sync_and_async_transports_are_not_mixed(flavour: Flavour) -> None:
    with pytest.raises(TypeError, match="sync"):
        flavour.DrainTransport(flavour.lib.AsyncHTTPTransport())
    with pytest.raises(TypeError, match="async"):
        flavour.AsyncDrainTransport(flavour.lib.HTTPTransport())


def test_defaults_per_mode(flavour: Flavour) -> None:
    assert flavour.DrainTransport().policy.deadline == httpx_drain.DEFAULT_BACKGROUND_DEADLINE
    assert flavour.DrainTransport(mode="inline").policy.deadline == httpx_drain.DEFAULT_DEADLINE
    assert flavour.DrainTransport(deadline=2).policy.deadline == 2
    assert "mode='background'" in repr(flavour.DrainTransport())


def test_stats_are_exportable() -> None:
    transport = httpx_drain.DrainTransport()
    snapshot = transport.stats.snapshot()
    assert snapshot.as_dict()["responses_wrapped"] == 0
    assert transport.stats.connections_kept == 0
    with pytest.raises(AttributeError):
        _ = transport.stats.no_such_counter


def test_importing_the_httpx2_flavour_without_httpx2_names_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["httpx2"] = None  # as if it were not installed
        try:
            import httpx_drain.httpx2
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'httpx-drain[httpx2]'" in out


def test_mock_transport_bodies_drain_too() -> None:
    # An inner transport without a network stream (in-memory bodies) still gets drained,
    # bounded between chunks.
    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"a", b"b", b"c"]))

    transport = httpx_drain.DrainTransport(httpx.MockTransport(app), mode="inline")
    with httpx.Client(transport=transport) as client, client.stream("GET", "http://t") as r:
        next(r.iter_raw())
    stats = transport.stats.snapshot()
    assert (stats.drains_started, stats.connections_kept, stats.bytes_discarded) == (1, 1, 2)
