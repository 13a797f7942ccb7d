"""Local replay servers for tests: streamed responses, byte by byte, on 127.0.0.1.

A :class:`Scenario` describes one streamed response as steps (chunks, pauses, gates, the
terminator, a FIN or an RST...). A server replays it for every request on every connection
and records :class:`ServerFacts`::

    from httpx_drain.testing import Gate, RawServer, openai_chat

    gate = Gate()
    with RawServer(openai_chat(terminator_gate=gate)) as srv:
        ...  # the response stops before its terminator until gate.set()

:class:`RawServer` writes raw bytes and supports every step; :class:`HypercornServer` runs a
real ASGI server (hypercorn, the ``testing`` extra) for the steps ASGI can express. Both have
async variants that run in the current asyncio or trio event loop.

:func:`assert_connections` and :func:`assert_no_early_disconnects` check the facts with
messages that show every connection; the pytest plugin (:mod:`httpx_drain.testing.plugin`)
starts servers as fixtures, picked with ``@pytest.mark.replay("openai-chat", ...)``.
"""

from __future__ import annotations

import contextlib
import inspect

from ._asgi import ASGIApp, ScenarioApp
from ._assertions import (
    assert_connections,
    assert_no_early_disconnects,
    assert_no_early_disconnects_async,
    format_facts,
)
from ._base import ReplayServer, ReplayServerError
from ._catalog import PRESETS, preset
from ._facts import ConnectionFacts, ServerFacts
from ._gate import Gate
from ._hypercorn import AsyncHypercornServer, HypercornServer
from ._presets import (
    anthropic_messages,
    generic_sse,
    openai_assistants,
    openai_chat,
    openai_responses,
    sample_text,
)
from ._raw import AsyncRawServer, RawServer
from ._scenario import (
    Chunk,
    Endless,
    Fin,
    Framing,
    Pause,
    Raw,
    RequestInfo,
    Reset,
    Scenario,
    ScenarioSource,
    Signal,
    Split,
    Step,
    Terminator,
    Trickle,
    UnsupportedStep,
    WaitFor,
)
from ._specs import AsyncReplayServerFactory, Backend, ReplayServerFactory, ReplaySpec

__all__ = [
    "PRESETS",
    "ASGIApp",
    "AsyncHypercornServer",
    "AsyncRawServer",
    "AsyncReplayServerFactory",
    "Backend",
    "Chunk",
    "ConnectionFacts",
    "Endless",
    "Fin",
    "Framing",
    "Gate",
    "HypercornServer",
    "Pause",
    "Raw",
    "RawServer",
    "ReplayServer",
    "ReplayServerError",
    "ReplayServerFactory",
    "ReplaySpec",
    "RequestInfo",
    "Reset",
    "Scenario",
    "ScenarioApp",
    "ScenarioSource",
    "ServerFacts",
    "Signal",
    "Split",
    "Step",
    "Terminator",
    "Trickle",
    "UnsupportedStep",
    "WaitFor",
    "anthropic_messages",
    "assert_connections",
    "assert_no_early_disconnects",
    "assert_no_early_disconnects_async",
    "format_facts",
    "generic_sse",
    "openai_assistants",
    "openai_chat",
    "openai_responses",
    "preset",
    "sample_text",
]


# Public classes and functions show up under the package name (reprs, docs, pickles).
for _name in __all__:
    _obj = globals().get(_name)
    if isinstance(_obj, type) or inspect.isfunction(_obj):
        # Python 3.10 counts some generic aliases (``Callable[...]``) as types, read-only ones.
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
