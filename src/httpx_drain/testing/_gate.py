"""Gates: events a test and a replay server use to hand control to each other."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

import anyio

__all__ = ["Gate", "threadsafe_setter"]


class Gate:
    """A thread-safe event shared by a test and a replay server.

    ``set()`` works from any thread or event loop. Servers wait on it from worker threads
    (:meth:`wait`) or from asyncio/trio event loops (:meth:`wait_async`) without polling.
    A gate stays set until :meth:`clear` is called, so a scenario replayed for several
    requests passes an already-set gate straight away.
    """

    __slots__ = ("_callbacks", "_cond", "_flag", "name")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._flag = False
        self._callbacks: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"<Gate {self.name!r} {'set' if self.is_set() else 'clear'}>"

    def set(self) -> None:
        """Open the gate and wake every waiter."""
        with self._cond:
            if self._flag:
                return
            self._flag = True
            callbacks, self._callbacks = self._callbacks, []
            self._cond.notify_all()
        # Outside the lock: a callback may take other locks (an event loop's, a server's).
        for callback in callbacks:
            callback()

    def clear(self) -> None:
        """Close the gate again, for reuse."""
        with self._cond:
            self._flag = False

    def is_set(self) -> bool:
        """Whether the gate is open."""
        with self._cond:
            return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Block the calling thread until the gate opens; return whether it did in time."""
        with self._cond:
            return self._cond.wait_for(lambda: self._flag, timeout)

    async def wait_async(self) -> None:
        """Wait in the running asyncio or trio event loop until the gate opens."""
        event = anyio.Event()
        unsubscribe = self.subscribe(threadsafe_setter(event))
        try:
            await event.wait()
        finally:
            unsubscribe()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once when the gate opens (at once if it is open).

        The callback runs in the thread that calls :meth:`set`; it must be quick and must not
        raise. Returns a function that cancels the subscription.
        """
        with self._cond:
            if not self._flag:
                self._callbacks.append(callback)
                return lambda: self._unsubscribe(callback)
        callback()
        return _noop

    def _unsubscribe(self, callback: Callable[[], None]) -> None:
        with self._cond, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)


def threadsafe_setter(event: anyio.Event) -> Callable[[], None]:
    """Return a function that sets ``event`` from any thread, for the running event loop.

    anyio events are not thread-safe, so the set is scheduled on the loop that owns the
    event. Once that loop has finished, the function does nothing.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _trio_setter(event)

    def notify() -> None:
        # A loop that already stopped has no waiter left to wake.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(event.set)

    return notify


def _trio_setter(event: anyio.Event) -> Callable[[], None]:
    import trio

    token = trio.lowlevel.current_trio_token()

    def notify() -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(event.set)

    return notify


def _noop() -> None:
    pass
