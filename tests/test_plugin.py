"""The pytest plugin (fixtures, the ``replay`` marker) and the assertion helpers."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import httpx
import pytest

from httpx_drain.testing import (
    Chunk,
    RawServer,
    ReplaySpec,
    Scenario,
    ServerFacts,
    assert_connections,
    assert_no_early_disconnects,
    format_facts,
    generic_sse,
    openai_chat,
    preset,
)

pytest_plugins = ["pytester"]

# The inner runs in this process share the modules imported out here; imported in an inner
# run, a module is imported again by the next one (pytester restores sys.modules), which
# takes a second for the SDKs.
with contextlib.suppress(ImportError):
    import openai  # noqa: F401

DOCS = Path(__file__).resolve().parents[1] / "docs" / "testing.md"

# The inner sessions are as strict as ours.
INI = """
[pytest]
addopts = --strict-markers -p no:hypothesispytest -p no:cacheprovider
filterwarnings =
    error
    ignore:Async generator '(httpx|httpcore|openai|anthropic)2?[._]:ResourceWarning
"""

# Streams the way the SDKs do: stop at [DONE], close.
STREAM = """
import httpx
from httpx_drain import AsyncDrainTransport, DrainTransport


def stream(url, n=3, transport=None):
    with httpx.Client(transport=transport) as client:
        for _ in range(n):
            with client.stream("POST", url) as response:
                for line in response.iter_lines():
                    if line == "data: [DONE]":
                        break


async def astream(url, n=3):
    async with httpx.AsyncClient(transport=AsyncDrainTransport()) as client:
        for _ in range(n):
            async with client.stream("POST", url) as response:
                async for line in response.aiter_lines():
                    if line == "data: [DONE]":
                        break
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(streaming=STREAM)
    return pytester


def test_marker_is_registered(inner: pytest.Pytester) -> None:
    result = inner.runpytest_inprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.replay(scenario='openai-chat', *, backend=*"])


def test_sync_fixture_with_marker_and_assertions(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from httpx_drain import DrainTransport
        from httpx_drain.testing import RawServer, assert_connections, assert_no_early_disconnects
        from streaming import stream

        @pytest.mark.replay("generic-sse", events=2, data="[DONE]")
        def test_one_connection(replay_server, replay_spec):
            assert isinstance(replay_server, RawServer)
            assert replay_spec.id == "generic-sse"
            stream(replay_server.url, 4, DrainTransport())
            assert_connections(replay_server, 1, requests=4)
            assert_no_early_disconnects(replay_server)

        def test_default_is_openai_chat(replay_server):
            stream(replay_server.url, 2, DrainTransport())
            assert_connections(replay_server.facts, 1, requests=2)

        @pytest.mark.replay("openai_chat", connection_close=True)
        def test_scenario_fields(replay_server):
            stream(replay_server.url, 2, DrainTransport())
            assert_connections(replay_server, 2)
        """
    )
    inner.runpytest_inprocess().assert_outcomes(passed=3)


def test_failures_show_every_connection(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from httpx_drain.testing import assert_connections, assert_no_early_disconnects
        from streaming import stream

        def test_bare_client(replay_server):
            stream(replay_server.url, 3)
            assert_connections(replay_server, 1)

        # The client closes while the server still holds the terminator back.
        @pytest.mark.replay("openai-chat", terminator_delay=30)
        def test_early_disconnect(replay_server):
            stream(replay_server.url, 1)
            assert_no_early_disconnects(replay_server)
        """
    )
    result = inner.runpytest_inprocess()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "E * AssertionError: expected 1 connection, the server saw:",
            # Whether the server got the terminator out before the client left is a race, so
            # any number of responses completed (and "1 response", singular).
            "E * 3 connections, 3 requests, * completed, * early disconnect*",
            "E * conn  peer * requests  completed  early close  closed  bytes",
            "E *    0  127.0.0.1:* 1 *",
            "E *    2  127.0.0.1:* 1 *",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E * expected no early disconnects; the client closed connection 0 in the middle of"
            " a response:",
            "E * 1 connection, 1 request, 0 responses completed, 1 early disconnect",
            "E *    0  127.0.0.1:* 1          0  YES *",
        ]
    )
    # The helpers hide their own frames: the failure points at the test's line.
    assert "raise AssertionError" not in result.stdout.str()


def test_several_marks_parametrize(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import httpx
        import pytest

        pytestmark = pytest.mark.replay("anthropic-messages")

        @pytest.mark.replay("openai-chat", id="chat")
        @pytest.mark.replay("generic-sse", events=1)
        @pytest.mark.replay("generic-sse", events=1, backend="hypercorn")
        def test_each(replay_server, replay_spec):
            body = httpx.post(replay_server.url).text
            assert replay_spec.id in ("chat", "generic-sse", "generic-sse-hypercorn")
            assert body.startswith("data: ")

        def test_module_mark(replay_server):
            assert "message_stop" in httpx.post(replay_server.url).text
        """
    )
    result = inner.runpytest_inprocess("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_each[[]chat[]] PASSED*",
            "*::test_each[[]generic-sse[]] PASSED*",
            "*::test_each[[]generic-sse-hypercorn[]] PASSED*",
            "*::test_module_mark PASSED*",
        ]
    )


def test_bad_marks_fail_at_collection(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.replay("openai-chta")
        def test_typo(replay_server):
            pass

        @pytest.mark.replay("openai-chat", http2=True)
        def test_raw_http2(replay_server):
            pass
        """
    )
    result = inner.runpytest_inprocess()
    result.assert_outcomes(errors=1)  # the module fails to collect at the first bad mark
    result.stdout.fnmatch_lines(
        ["*ValueError: @pytest.mark.replay('openai-chta'): unknown preset 'openai-chta'*"]
    )


def test_async_fixtures_on_asyncio_and_trio(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import httpx
        import pytest
        from httpx_drain.testing import (
            AsyncHypercornServer,
            AsyncRawServer,
            assert_connections,
            assert_no_early_disconnects_async,
        )
        from streaming import astream

        pytestmark = pytest.mark.anyio

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param

        @pytest.mark.replay("openai-chat", terminator_delay=0.01)
        @pytest.mark.replay("openai-chat", backend="hypercorn")
        async def test_in_loop(async_replay_server):
            assert isinstance(async_replay_server, (AsyncRawServer, AsyncHypercornServer))
            await astream(async_replay_server.url, 3)
            await assert_no_early_disconnects_async(async_replay_server)
            assert async_replay_server.facts.request_count == 3

        async def test_factories(async_replay_server_factory, replay_server_factory):
            servers = [
                await async_replay_server_factory("generic-sse", events=1),
                await async_replay_server_factory("generic-sse", events=1, backend="hypercorn"),
                replay_server_factory("generic-sse", events=1),
            ]
            async with httpx.AsyncClient() as client:
                for server in servers:
                    assert (await client.get(server.url)).text == "data: message 0\\n\\n"
            for server in servers:
                assert_connections(server, 1, requests=1)
        """
    )
    result = inner.runpytest_inprocess("-v", "-p", "no:asyncio")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines_random(
        [
            "*test_in_loop[[]asyncio-openai-chat[]] PASSED*",
            "*test_in_loop[[]trio-openai-chat-hypercorn[]] PASSED*",
            "*test_factories[[]trio[]] PASSED*",
        ]
    )


def test_server_errors_fail_at_teardown(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import httpx
        import pytest

        def broken(request):
            raise RuntimeError("scenario bug")

        def test_factory(replay_server_factory):
            server = replay_server_factory(broken)
            with pytest.raises(httpx.HTTPError):  # the server hangs up
                httpx.get(server.url)
        """
    )
    result = inner.runpytest_inprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ReplayServerError: RawServer failed while serving*"])


def test_plugin_can_be_disabled(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        def test_needs_plugin(replay_server):
            pass
        """
    )
    result = inner.runpytest_subprocess("-p", "no:httpx_drain")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'replay_server' not found*"])
    # And it is on by default, in a fresh process too (the pytest11 entry point).
    inner.runpytest_subprocess().assert_outcomes(passed=1)


def test_loading_the_plugin_imports_nothing_of_the_package(inner: pytest.Pytester) -> None:
    # Every pytest session of a project that depends on httpx-drain loads the plugin: until a
    # test uses it, it must cost that session no import of ours, nor of httpx.
    inner.makepyfile(
        """
        import sys

        def test_nothing_imported(request):
            assert request.config.pluginmanager.has_plugin("httpx_drain")
            roots = {name.partition(".")[0] for name in sys.modules}
            assert not roots & {"httpx", "httpx2", "httpcore", "httpx_drain"}
        """
    )
    inner.runpytest_subprocess().assert_outcomes(passed=1)


def test_plugin_loaded_by_hand_without_autoloading(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    inner.makepyfile(
        """
        def test_needs_plugin(replay_server):
            pass
        """
    )
    inner.runpytest_subprocess().assert_outcomes(errors=1)
    inner.runpytest_subprocess("-p", "httpx_drain").assert_outcomes(passed=1)
    inner.makeconftest('pytest_plugins = ["httpx_drain.testing.plugin"]')
    inner.runpytest_subprocess().assert_outcomes(passed=1)


def test_plugin_listed_again_by_its_old_name(inner: pytest.Pytester) -> None:
    # A conftest that still names the package module while the entry point loads the plugin
    # too: the same hooks are registered twice, and must act once.
    inner.makeconftest('pytest_plugins = ["httpx_drain.testing.plugin"]')
    inner.makepyfile(
        """
        import httpx
        import pytest

        @pytest.mark.replay("generic-sse", events=1)
        @pytest.mark.replay("openai-chat", events=2)
        def test_each(replay_server):
            httpx.get(replay_server.url)
        """
    )
    result = inner.runpytest_inprocess("-v")
    result.assert_outcomes(passed=2)
    markers = inner.runpytest_inprocess("--markers")
    assert sum(line.startswith("@pytest.mark.replay(") for line in markers.outlines) == 1


def test_the_plugin_is_still_importable_from_the_package() -> None:
    import _httpx_drain_pytestplugin
    from httpx_drain.testing import plugin

    for name in plugin.__all__:
        assert getattr(plugin, name) is getattr(_httpx_drain_pytestplugin, name)
    assert sorted(plugin.__all__) == sorted(_httpx_drain_pytestplugin.__all__)


def _doc_examples() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- pytest-example: (\S+) -->\n```python\n(.*?)```", text, re.S)
    return dict(blocks)


def test_docs_example_runs(pytester: pytest.Pytester) -> None:
    pytest.importorskip("openai", reason="the example uses the openai SDK (Python 3.11+)")
    examples = _doc_examples()
    assert list(examples) == ["test_streaming_connections.py"]
    pytester.makeini(INI)
    for name, code in examples.items():
        pytester.makepyfile(**{name.removesuffix(".py"): code})
    pytester.runpytest_inprocess().assert_outcomes(passed=3)


def test_docs_example_fails_without_the_transport(pytester: pytest.Pytester) -> None:
    pytest.importorskip("openai", reason="the example uses the openai SDK (Python 3.11+)")
    code = _doc_examples()["test_streaming_connections.py"]
    bare = code.replace("transport=httpx_drain.DrainTransport(), ", "")
    assert bare != code
    pytester.makeini(INI)
    pytester.makepyfile(test_example=bare)
    result = pytester.runpytest_inprocess("-k", "factory")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["E * expected 1 connection for 5 requests, the server saw:"])


# The helpers and specs on their own.


def test_assertions_accept_servers_and_facts() -> None:
    facts = ServerFacts()
    assert_connections(facts, 0, requests=0)
    assert_no_early_disconnects(facts, settle=0)
    index = facts.connection_opened(("127.0.0.1", 5000))
    facts.request_received(index)
    facts.client_closed_early(index)
    facts.connection_closed(index)
    with pytest.raises(AssertionError, match=r"expected 2 connections, the server saw"):
        assert_connections(facts, 2)
    with pytest.raises(AssertionError, match=r"closed connection 0 in the middle"):
        assert_no_early_disconnects(facts, settle=0)
    assert "127.0.0.1:5000" in format_facts(facts)


def test_no_early_disconnects_waits_for_a_late_terminator() -> None:
    # A drain still reading the terminator is not an early disconnect: the assertion waits
    # until the response is written to its end.
    from httpx_drain import DrainTransport

    with RawServer(openai_chat(events=1, terminator_delay=0.05)) as server:
        with httpx.Client(transport=DrainTransport(deadline=30)) as client:
            with client.stream("POST", server.url) as response:
                for line in response.iter_lines():
                    if line == "data: [DONE]":
                        break
            assert_no_early_disconnects(server)
            assert server.facts.responses_completed == 1


def test_specs() -> None:
    spec = ReplaySpec.build("anthropic_messages", events=2, status=201)
    assert spec.id == "anthropic-messages"
    assert isinstance(spec.scenario, Scenario)
    assert spec.scenario.status == 201
    plain = Scenario(steps=[Chunk(b"data: x\n\n")])
    closing = ReplaySpec.build(plain, connection_close=True).scenario
    assert isinstance(closing, Scenario)
    assert closing.connection_close
    assert ReplaySpec.build(plain, backend="hypercorn", http2=True).id == "scenario-hypercorn-h2"
    with pytest.raises(TypeError, match="preset arguments need a preset name"):
        ReplaySpec.build(plain, events=3)
    with pytest.raises(ValueError, match="need backend='hypercorn'"):
        ReplaySpec.build(tls=True)
    with pytest.raises(ValueError, match="backend must be"):
        ReplaySpec.build(backend="nginx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown preset 'nope'; the presets are: openai-chat"):
        preset("nope")
    assert preset("generic-sse", events=1) == generic_sse(1)
