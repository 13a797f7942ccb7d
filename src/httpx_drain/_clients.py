"""Every transport of a client, wrapped: proxies, mounts, and clients built by other code.

``httpx.Client(transport=DrainTransport())`` wraps one transport, but a client holds more: the
transports it builds for ``proxy=`` and for ``HTTP(S)_PROXY`` / ``ALL_PROXY`` (with
``trust_env``), and those given in ``mounts=``, all kept in ``client._mounts``. There is no
public API to reach them, so :func:`wrap_client` replaces ``client._transport`` and the values
of ``client._mounts``, the two attributes ``Client.close()`` and request routing read (the
same in httpx and httpx2).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ._stats import logger
from ._transports import AsyncDrainTransportImpl, SyncDrainTransportImpl

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "DRAIN_OPTIONS",
    "drain_async_client",
    "drain_async_client_httpx2",
    "drain_client",
    "drain_client_httpx2",
    "install",
    "installed",
    "is_installed",
    "uninstall",
    "wrap_client",
]

ClientT = TypeVar("ClientT")

#: The keyword arguments that configure draining (those of ``DrainTransport`` but
#: ``transport``); :func:`drain_client` sends them to the transports, the rest to the client.
DRAIN_OPTIONS = frozenset(
    name
    for name, param in inspect.signature(SyncDrainTransportImpl.__init__).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY
)


def _wrapper_class(client: object) -> type[Any] | None:
    """Our transport for the client's library and kind (sync or async), or None."""
    # httpx2 is only looked up if already imported: a client of it implies it is.
    httpx2 = sys.modules.get("httpx2")
    if isinstance(client, httpx.Client):
        from . import DrainTransport

        return DrainTransport
    if isinstance(client, httpx.AsyncClient):
        from . import AsyncDrainTransport

        return AsyncDrainTransport
    if httpx2 is not None and isinstance(client, httpx2.Client):
        from .httpx2 import DrainTransport as DrainTransport2

        return DrainTransport2
    if httpx2 is not None and isinstance(client, httpx2.AsyncClient):
        from .httpx2 import AsyncDrainTransport as AsyncDrainTransport2

        return AsyncDrainTransport2
    return None


def _check_names(options: dict[str, Any]) -> None:
    unknown = sorted(options.keys() - DRAIN_OPTIONS)
    if unknown:
        raise TypeError(
            f"unknown drain option(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(sorted(DRAIN_OPTIONS))}"
        )


def wrap_client(client: ClientT, **options: Any) -> ClientT:
    """Wrap every transport of an httpx or httpx2 client, sync or async, in place; return it.

    Wraps ``client._transport`` and every transport in ``client._mounts``: those built for
    ``proxy=`` and for proxy environment variables, and those given in ``mounts=``. Transports
    already wrapped are left alone, so wrapping twice is harmless. ``options`` are those of
    ``DrainTransport`` (see :data:`DRAIN_OPTIONS`) and apply to each wrapper; each wrapper has
    its own ``stats``. All wrappers are built before the client is touched, so an invalid
    option leaves it unchanged. Call it before the first request.

    Raises:
        TypeError: ``client`` is not an httpx or httpx2 client, or an option is unknown.
    """
    wrapper = _wrapper_class(client)
    if wrapper is None:
        raise TypeError(f"expected an httpx or httpx2 client, not {type(client).__name__}")
    _check_names(options)

    def wrap(transport: Any) -> Any:
        if transport is None or isinstance(
            transport, (SyncDrainTransportImpl, AsyncDrainTransportImpl)
        ):
            return transport
        return wrapper(transport, **options)

    anyclient: Any = client
    transport = wrap(anyclient._transport)
    mounts = {pattern: wrap(mounted) for pattern, mounted in anyclient._mounts.items()}
    anyclient._transport = transport
    anyclient._mounts.update(mounts)  # in place: the order of the patterns is their priority
    return client


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    drain = {name: kwargs.pop(name) for name in DRAIN_OPTIONS & kwargs.keys()}
    return drain, kwargs


def drain_client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` whose every transport drains, proxies and mounts included.

    Keyword arguments named in :data:`DRAIN_OPTIONS` (``deadline``, ``max_bytes``, ``mode``,
    ``max_pending``, ``sse``, ``terminal``, ``align_events``) configure the draining; the rest
    go to ``httpx.Client`` (``proxy=``, ``mounts=``, ``trust_env=``, ``http2=``, ...).
    """
    drain, client_kwargs = _split(kwargs)
    return wrap_client(httpx.Client(**client_kwargs), **drain)


def drain_async_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every transport drains; see :func:`drain_client`."""
    drain, client_kwargs = _split(kwargs)
    return wrap_client(httpx.AsyncClient(**client_kwargs), **drain)


def drain_client_httpx2(**kwargs: Any) -> httpx2.Client:
    """An ``httpx2.Client`` whose every transport drains; see :func:`drain_client`.

    Exported as ``httpx_drain.httpx2.drain_client``.
    """
    import httpx2

    drain, client_kwargs = _split(kwargs)
    return wrap_client(httpx2.Client(**client_kwargs), **drain)


def drain_async_client_httpx2(**kwargs: Any) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` whose every transport drains; see :func:`drain_client`.

    Exported as ``httpx_drain.httpx2.drain_async_client``.
    """
    import httpx2

    drain, client_kwargs = _split(kwargs)
    return wrap_client(httpx2.AsyncClient(**client_kwargs), **drain)


# install(): the client classes' own __init__, replaced while installed.

_lock = threading.RLock()
_originals: dict[type[Any], Callable[..., None]] = {}
#: The options of install(); None when not installed.
_options: dict[str, Any] | None = None


def _client_classes() -> list[type[Any]]:
    classes: list[type[Any]] = [httpx.Client, httpx.AsyncClient]
    try:
        import httpx2
    except ImportError:  # pragma: no cover - httpx2 is optional (and needs Python 3.11+)
        pass
    else:
        classes += [httpx2.Client, httpx2.AsyncClient]
    return classes


def _patched(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        options = _options  # read once: install() and uninstall() replace, never mutate it
        if options is None:
            # Uninstalled, but someone patched __init__ over ours so it could not be restored.
            return
        try:
            wrap_client(self, **options)
        except TypeError:
            # A transport our wrapper refuses (not a transport of this library): leave the
            # client as its author built it rather than break code we do not own.
            logger.debug("httpx_drain.install: left %s unwrapped", type(self).__name__)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    __init__.__doc__ = original.__doc__
    __init__.__qualname__ = getattr(original, "__qualname__", "__init__")
    return __init__


def install(**options: Any) -> None:
    """Make every ``Client`` / ``AsyncClient`` of httpx and httpx2 built from now on drain.

    For code that builds its own clients (frameworks, SDKs) where you cannot pass a transport.
    Each new client is passed to :func:`wrap_client` with ``options`` at the end of its
    ``__init__`` (subclasses such as the SDKs' clients included), so its own transport and its
    mounts (proxies) drain. Clients built before are left alone. httpx2, if installed, is
    imported here so that its classes are covered too.

    Trade-offs: this is global state. It replaces ``__init__`` on the four client classes for
    the whole process, and so affects every library in it. Idempotent: installing again only
    replaces ``options`` (clients are never wrapped twice). Thread-safe against concurrent
    :func:`install` / :func:`uninstall`; a client being built in another thread at that very
    moment may get either behaviour. :func:`uninstall` undoes it; in tests, prefer
    :func:`installed`.
    """
    # Invalid options fail here, not in the __init__ of some client built much later by code
    # that cannot handle the error: a throwaway wrapper validates the values.
    _check_names(options)
    from . import DrainTransport

    DrainTransport(httpx.MockTransport(lambda request: httpx.Response(204)), **options).close()
    global _options
    with _lock:
        _options = dict(options)
        for cls in _client_classes():
            if cls not in _originals:
                _originals[cls] = cls.__dict__["__init__"]
                cls.__init__ = _patched(_originals[cls])


def uninstall() -> None:
    """Undo :func:`install`: clients built from now on are plain again. Idempotent.

    Clients built while installed keep their wrapped transports.
    """
    global _options
    with _lock:
        _options = None
        for cls, original in _originals.items():
            # Restore only our own patch: if other code patched __init__ over it since, its
            # patch stays, and ours inside it does nothing now that _options is None.
            if getattr(cls.__dict__["__init__"], "__wrapped__", None) is original:
                cls.__init__ = original
        _originals.clear()


def is_installed() -> bool:
    """Whether :func:`install` is in effect."""
    return _options is not None


@contextlib.contextmanager
def installed(**options: Any) -> Iterator[None]:
    """:func:`install` for the duration of a ``with`` block, then restore what was before.

    Nests: on exit, an enclosing ``installed()`` or a prior :func:`install` is back in force
    with its own options; otherwise the client classes are plain again.
    """
    before = _options
    install(**options)
    try:
        yield
    finally:
        if before is None:
            uninstall()
        else:
            install(**before)
