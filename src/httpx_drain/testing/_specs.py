"""Which server replays which scenario: what a ``replay`` marker or a factory call asks for."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

from ._base import ReplayServer
from ._catalog import preset
from ._hypercorn import AsyncHypercornServer, HypercornServer
from ._raw import AsyncRawServer, RawServer
from ._scenario import Scenario, ScenarioSource

__all__ = [
    "AsyncReplayServerFactory",
    "Backend",
    "ReplayServerFactory",
    "ReplaySpec",
]

Backend: TypeAlias = Literal["raw", "hypercorn"]

# Scenario fields a marker may override on a preset or a Scenario (dataclasses.replace).
_SCENARIO_FIELDS = frozenset(
    field.name for field in dataclasses.fields(Scenario) if field.name != "steps"
)


@dataclass(frozen=True)
class ReplaySpec:
    """A scenario and the server to replay it: what one ``replay`` marker asks for.

    Build it with :meth:`build`; :meth:`server` and :meth:`async_server` make the (not yet
    started) server.
    """

    scenario: ScenarioSource
    backend: Backend = "raw"
    http2: bool = False
    tls: bool = False
    id: str = "openai-chat"

    @classmethod
    def build(
        cls,
        scenario: ScenarioSource | str = "openai-chat",
        *,
        backend: Backend = "raw",
        http2: bool = False,
        tls: bool = False,
        id: str | None = None,
        **kwargs: Any,
    ) -> ReplaySpec:
        """Resolve marker-style arguments.

        ``scenario``: a preset name (``"openai-chat"``, ``"anthropic_messages"``...), a
        :class:`Scenario` or a callable scenario source. ``kwargs`` go to the preset
        (``events=``, ``terminator_delay=``...); those named like :class:`Scenario` fields
        (``status``, ``headers``, ``framing``, ``connection_close``, ``keep_alive_timeout``)
        replace that field of the scenario. ``backend``: ``"raw"`` (byte-exact, every step) or
        ``"hypercorn"`` (a real ASGI server; ``http2=True`` or ``tls=True`` serve HTTPS).
        """
        if backend not in ("raw", "hypercorn"):
            raise ValueError(f"backend must be 'raw' or 'hypercorn', not {backend!r}")
        if backend == "raw" and (http2 or tls):
            raise ValueError("http2= and tls= need backend='hypercorn'")
        overrides = {k: v for k, v in kwargs.items() if k in _SCENARIO_FIELDS}
        preset_kwargs = {k: v for k, v in kwargs.items() if k not in _SCENARIO_FIELDS}
        source: ScenarioSource
        if isinstance(scenario, str):
            source = preset(scenario, **preset_kwargs)
            label = scenario.replace("_", "-")
        elif isinstance(scenario, Scenario):
            if preset_kwargs:
                raise TypeError(
                    f"{', '.join(sorted(preset_kwargs))}: preset arguments need a preset name"
                )
            source, label = scenario, "scenario"
        elif callable(scenario):
            if kwargs:
                raise TypeError("a callable scenario source takes no keyword arguments")
            source, label = scenario, getattr(scenario, "__name__", "scenario")
        else:
            raise TypeError(
                f"scenario must be a preset name, a Scenario or a callable, not {scenario!r}"
            )
        if overrides:
            assert isinstance(source, Scenario)
            source = dataclasses.replace(source, **overrides)
        if id is None:
            suffix = "-h2" if http2 else "-tls" if tls else ""
            id = f"{label}-hypercorn{suffix}" if backend == "hypercorn" else label
        return cls(scenario=source, backend=backend, http2=http2, tls=tls, id=id)

    def server(self) -> RawServer | HypercornServer:
        """A threaded server for this spec; start it with ``with``."""
        if self.backend == "raw":
            return RawServer(self.scenario)
        return HypercornServer(self.scenario, http2=self.http2, tls=self.tls)

    def async_server(self) -> AsyncRawServer | AsyncHypercornServer:
        """A server for this spec in the current event loop; start it with ``async with``."""
        if self.backend == "raw":
            return AsyncRawServer(self.scenario)
        return AsyncHypercornServer(self.scenario, http2=self.http2, tls=self.tls)


class ReplayServerFactory(Protocol):
    """The ``replay_server_factory`` fixture: start a threaded server, closed at teardown."""

    def __call__(
        self,
        scenario: ScenarioSource | str = "openai-chat",
        *,
        backend: Backend = "raw",
        http2: bool = False,
        tls: bool = False,
        **kwargs: Any,
    ) -> ReplayServer: ...


class AsyncReplayServerFactory(Protocol):
    """The ``async_replay_server_factory`` fixture: start a server in the test's event loop."""

    def __call__(
        self,
        scenario: ScenarioSource | str = "openai-chat",
        *,
        backend: Backend = "raw",
        http2: bool = False,
        tls: bool = False,
        **kwargs: Any,
    ) -> Awaitable[ReplayServer]: ...
