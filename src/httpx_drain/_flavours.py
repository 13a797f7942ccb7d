"""The host libraries we serve: httpx and its fork httpx2, which share one transport API.

Everything flavour-specific (base classes, default transports, exception classes) is looked up
here once, so the transports and streams are written a single time for both.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any, TypeAlias

__all__ = ["HTTPX", "HTTPX2", "Flavour", "HostStream"]

#: The host library's response stream over httpcore's (``ResponseStream``, or its async twin),
#: and the context manager with which it maps httpcore's errors to the host library's.
HostStream: TypeAlias = tuple[type[Any], Callable[[], AbstractContextManager[None]]]


@dataclass(frozen=True, eq=False)
class Flavour:
    """One host library: its module name, imported lazily so httpx2 stays optional."""

    name: str
    extra_hint: str = ""

    @cached_property
    def module(self) -> ModuleType:
        """The host library, imported on first use."""
        try:
            return importlib.import_module(self.name)
        except ImportError as exc:  # pragma: no cover - exercised in a venv without httpx2
            raise ImportError(
                f"httpx_drain.{self.name} needs the {self.name!r} package: "
                f"install it with `pip install {self.extra_hint}`"
            ) from exc

    def __getattr__(self, name: str) -> Any:
        # Base classes, transports and exceptions, by their names in the host library. Only
        # capitalised names are forwarded so typos in our own attributes still fail loudly.
        if name[:1].isupper():
            return getattr(self.module, name)
        raise AttributeError(name)

    @cached_property
    def sync_stream_base(self) -> type:
        """The host library's ``SyncByteStream``, which its ``Response`` insists on."""
        return self.module.SyncByteStream  # type: ignore[no-any-return]

    @cached_property
    def async_stream_base(self) -> type:
        """The host library's ``AsyncByteStream``."""
        return self.module.AsyncByteStream  # type: ignore[no-any-return]

    @cached_property
    def sync_host_stream(self) -> HostStream | None:
        """The host library's sync ``ResponseStream`` and its error mapping, if found."""
        return self._host_stream("ResponseStream")

    @cached_property
    def async_host_stream(self) -> HostStream | None:
        """The host library's ``AsyncResponseStream`` and its error mapping, if found."""
        return self._host_stream("AsyncResponseStream")

    def _host_stream(self, name: str) -> HostStream | None:
        # Private names of the host library: a release that moves them costs the streams their
        # shortcut (a generator less per chunk), never their behaviour.
        try:
            module = importlib.import_module(f"{self.name}._transports.default")
            return getattr(module, name), module.map_httpcore_exceptions
        except (ImportError, AttributeError):
            return None


HTTPX = Flavour("httpx", "httpx-drain")
HTTPX2 = Flavour("httpx2", "'httpx-drain[httpx2]'")
