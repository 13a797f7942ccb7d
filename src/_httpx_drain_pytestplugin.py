"""pytest plugin: replay servers as fixtures, the scenario picked by a ``replay`` marker.

Loaded by pytest once httpx-drain is installed (entry point ``httpx_drain``); ``-p
no:httpx_drain`` turns it off. This module is a top-level one of its own, and imports nothing
of httpx-drain (nor httpx) until a test uses a fixture or the marker: every pytest session
of a project that merely depends on httpx-drain loads it. ::

    from httpx_drain.testing import assert_connections, assert_no_early_disconnects

    @pytest.mark.replay("openai-chat", events=3, terminator_delay=0.01)
    def test_one_connection(replay_server):
        client = openai.OpenAI(base_url=replay_server.url + "/v1", api_key="sk-test", ...)
        ...
        assert_connections(replay_server, 1)
        assert_no_early_disconnects(replay_server)

Several ``replay`` marks on a test run it once for each. Fixtures:

``replay_server``
    A threaded server (:class:`RawServer` or :class:`HypercornServer`), started for the test
    and closed after it; usable from sync and async tests.
``async_replay_server``
    The same in the test's own event loop (:class:`AsyncRawServer` or
    :class:`AsyncHypercornServer`), for ``@pytest.mark.anyio`` tests, asyncio and trio.
``replay_server_factory``, ``async_replay_server_factory``
    Start several servers, with the marker's arguments: ``replay_server_factory("generic-sse",
    events=2)``; all closed after the test.
``replay_spec``
    The :class:`ReplaySpec` the marker asked for.

A server that failed while serving (a bug, a scenario callable raising) fails the test at
teardown with :class:`ReplayServerError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from httpx_drain.testing import ReplayServer, ReplaySpec, ScenarioSource
    from httpx_drain.testing._specs import AsyncReplayServerFactory, ReplayServerFactory

__all__ = [
    "async_replay_server",
    "async_replay_server_factory",
    "pytest_configure",
    "pytest_generate_tests",
    "replay_server",
    "replay_server_factory",
    "replay_spec",
]

MARKER = "replay"
_USAGE = (
    "replay(scenario='openai-chat', *, backend='raw', http2=False, tls=False, id=None, "
    "**preset_kwargs): the scenario the replay_server and async_replay_server fixtures replay: "
    "a preset name (openai-chat, openai-responses, openai-assistants, anthropic-messages, "
    "generic-sse), a Scenario or a callable; backend 'raw' or 'hypercorn'. Several marks run "
    "the test once for each."
)


#: Set on a test once its ``replay`` marks are parametrized. The hooks here may be registered
#: twice (the entry point, and a conftest's ``pytest_plugins`` naming the package's module,
#: ``httpx_drain.testing.plugin``, a second module object with the same functions): each
#: must act once.
_PARAMETRIZED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``replay`` marker (``--strict-markers`` accepts it)."""
    if _USAGE not in config.getini("markers"):
        config.addinivalue_line("markers", _USAGE)


def _build(*args: Any, **kwargs: Any) -> ReplaySpec:
    from httpx_drain.testing import ReplaySpec  # only once a test asks for a replay server

    return ReplaySpec.build(*args, **kwargs)


def _spec(mark: pytest.Mark) -> ReplaySpec:
    try:
        return _build(*mark.args, **mark.kwargs)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"@pytest.mark.{MARKER}{_call(mark)}: {exc}") from None


def _call(mark: pytest.Mark) -> str:
    args = [repr(arg) for arg in mark.args] + [f"{k}={v!r}" for k, v in mark.kwargs.items()]
    return f"({', '.join(args)})"


def _closest_marks(node: pytest.Item) -> list[pytest.Mark]:
    # The marks of the innermost level that has any (function, else class, else module):
    # a module-wide default is replaced, not multiplied, by a test's own marks.
    for level in reversed(node.listchain()):
        marks = [mark for mark in level.own_markers if mark.name == MARKER]
        if marks:
            return marks
    return []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test once per ``replay`` mark when it has several; check the marks early."""
    definition = metafunc.definition
    if "replay_spec" not in metafunc.fixturenames or definition.stash.get(_PARAMETRIZED, False):
        return
    definition.stash[_PARAMETRIZED] = True
    specs = [_spec(mark) for mark in _closest_marks(metafunc.definition)]
    if len(specs) > 1:
        metafunc.parametrize("replay_spec", specs, indirect=True, ids=[s.id for s in specs])


@pytest.fixture
def replay_spec(request: pytest.FixtureRequest) -> ReplaySpec:
    """The scenario and backend the test's ``replay`` mark asked for (openai-chat on raw)."""
    param: ReplaySpec | None = getattr(request, "param", None)
    if param is not None:
        return param
    mark = request.node.get_closest_marker(MARKER)
    return _build() if mark is None else _spec(mark)


@pytest.fixture
def replay_server(replay_spec: ReplaySpec) -> Iterator[ReplayServer]:
    """A threaded replay server for the test's ``replay`` mark, closed after the test."""
    with replay_spec.server() as server:
        yield server


@pytest.fixture
async def async_replay_server(replay_spec: ReplaySpec) -> AsyncIterator[ReplayServer]:
    """A replay server in the test's event loop (asyncio or trio), for anyio tests."""
    async with replay_spec.async_server() as server:
        yield server


@pytest.fixture
def replay_server_factory() -> Iterator[ReplayServerFactory]:
    """Start threaded replay servers with marker-style arguments; all closed after the test."""
    with contextlib.ExitStack() as stack:

        def start(scenario: ScenarioSource | str = "openai-chat", **kwargs: Any) -> ReplayServer:
            return stack.enter_context(_build(scenario, **kwargs).server())

        yield start


@pytest.fixture
async def async_replay_server_factory() -> AsyncIterator[AsyncReplayServerFactory]:
    """Start replay servers in the test's event loop; all closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            scenario: ScenarioSource | str = "openai-chat", **kwargs: Any
        ) -> ReplayServer:
            server = _build(scenario, **kwargs).async_server()
            return await stack.enter_async_context(server)

        yield start
