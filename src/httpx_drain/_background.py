"""Where drains run: inline in ``close()``, or in the background after it returns.

A background drain still consumes, before ``close()`` returns, whatever needs no wait. When
the rest of the body is already in h11's buffer (or, on plain TCP, in the kernel's) the
caller ends it itself: that costs less than a hand-off to a thread or task. When bytes are
arriving whose end we cannot see (TLS records), the drain starts on its worker and the caller
waits until it either ends or is about to wait for the network. Returning earlier would send
the caller's next request to a fresh connection while the old one was microseconds from being
reusable. When nothing has arrived, the caller returns at once (after a learned linger).
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import anyio

from ._policy import Handover, Linger, Outcome
from ._pool import has_available_connection
from ._streams import Tail, origin_of

if TYPE_CHECKING:
    from ._stats import DrainStats
    from ._streams import AsyncDrainStream, SyncDrainStream

__all__ = [
    "AsyncBackgroundRunner",
    "AsyncInlineRunner",
    "AsyncRunner",
    "SyncBackgroundRunner",
    "SyncInlineRunner",
    "SyncRunner",
]

#: Event-loop turns the caller gives a background drain to consume bytes that are already
#: buffered. Data in anyio's or trio's receive buffer is delivered within one or two turns;
#: each turn costs microseconds when there is nothing to read.
_ASYNC_HANDOFF_TURNS = 4


class SyncRunner:
    """Runs the drains of one sync transport."""

    def before_request(self, url: Any, transport: Any) -> Callable[[float], None] | None:
        """Called before each request: may wait for a connection that is about to be free.

        Returns where to report the cost of the connection the request then opens, if any.
        """
        return None

    def submit(self, stream: SyncDrainStream) -> None:
        """Drain ``stream``; it closes its inner stream when done."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish or abort pending drains."""


class AsyncRunner:
    """Runs the drains of one async transport."""

    async def before_request(self, url: Any, transport: Any) -> Callable[[float], None] | None:
        """Called before each request: may wait for a connection that is about to be free.

        Returns where to report the cost of the connection the request then opens, if any.
        """
        return None

    async def submit(self, stream: AsyncDrainStream) -> None:
        """Drain ``stream``; it closes its inner stream when done."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Finish or abort pending drains."""


class SyncInlineRunner(SyncRunner):
    """Drain in ``close()`` itself, within the deadline."""

    def submit(self, stream: SyncDrainStream) -> None:
        stream.drain()


class AsyncInlineRunner(AsyncRunner):
    """Drain in ``aclose()`` itself, within the deadline."""

    async def submit(self, stream: AsyncDrainStream) -> None:
        await stream.drain()


class _Slots:
    """At most ``limit`` drains in flight; thread-safe."""

    def __init__(self, limit: int, stats: DrainStats) -> None:
        self._limit = limit
        self._stats = stats
        self._lock = threading.Lock()
        self._in_flight = 0
        self.closed = False

    def acquire(self) -> bool:
        with self._lock:
            if self.closed or self._in_flight >= self._limit:
                self._stats.add("drains_rejected")
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Waiting:
    """Background drains waiting for the network, per origin: when each began to wait, and
    which of them a request is waiting for (one request per drain: a drain frees one
    connection, and a burst of requests all waiting for it would all but one wait in vain)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_origin: dict[str, dict[Any, float]] = {}
        self._claimed: set[Any] = set()

    def add(self, origin: str, done: Any, since: float) -> None:
        with self._lock:
            self._by_origin.setdefault(origin, {})[done] = since

    def remove(self, origin: str, done: Any) -> None:
        with self._lock:
            drains = self._by_origin.get(origin)
            if drains is not None:
                drains.pop(done, None)
                if not drains:
                    del self._by_origin[origin]

    def oldest(self, url: Any) -> tuple[str, Any, float] | None:
        """For ``url``'s origin: (origin, the drain no request waits for yet that has waited
        longest, or None, when it began to wait); None when none of the origin's is pending."""
        if not self._by_origin:  # the common case: nothing draining
            return None
        origin = origin_of(url)
        with self._lock:
            drains = self._by_origin.get(origin)
            if not drains:
                return None
            free = (d for d in drains if d not in self._claimed)
            done = min(free, key=drains.__getitem__, default=None)
            return origin, done, 0.0 if done is None else drains[done]

    def claim(self, done: Any) -> bool:
        """Mark ``done`` as waited for; False if a request waits for it already."""
        with self._lock:
            if done in self._claimed:
                return False
            self._claimed.add(done)
            return True

    def unclaim(self, done: Any) -> None:
        with self._lock:
            self._claimed.discard(done)


def _handover(
    waiting: _Waiting, url: Any, transport: Any, handover: Handover
) -> tuple[str, Any, float] | None:
    """What a request to ``url`` should do about the drains of its origin.

    None: go ahead (nothing draining, or the pool has a free connection). Otherwise the
    request would open a connection: (origin, the drain to wait for, seconds to wait). With a
    wait, the drain is claimed for this request, which must :meth:`_Waiting.unclaim` it; 0.0:
    none is due within the window, or each due one has a request waiting for it already.
    """
    oldest = waiting.oldest(url)
    if oldest is None or has_available_connection(transport, url) is not False:
        return None
    origin, done, since = oldest
    if done is None:
        return origin, None, 0.0
    wait = handover.wait(origin, time.monotonic() - since)
    if wait and not waiting.claim(done):
        wait = 0.0  # another request claimed it a moment ago
    return origin, done, wait


class SyncBackgroundRunner(SyncRunner):
    """Drain on worker threads owned by the transport; at most ``max_pending`` at once.

    httpcore's pool is thread-safe: a worker that ends the body puts the connection back under
    the pool's lock, exactly as the caller's thread would have.
    """

    def __init__(
        self, max_pending: int, stats: DrainStats, linger: Linger, handover: Handover
    ) -> None:
        self._slots = _Slots(max_pending, stats)
        self._max_pending = max_pending
        self._stats = stats
        self._linger = linger
        self._handover = handover
        self._waiting = _Waiting()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def before_request(self, url: Any, transport: Any) -> Callable[[float], None] | None:
        found = _handover(self._waiting, url, transport, self._handover)
        if found is None:
            return None
        origin, done, wait = found
        if wait:
            # Blocking here also hands the GIL to a drain whose bytes have arrived.
            self._stats.add("handover_waits")
            try:
                if done.wait(wait):
                    return None
            finally:
                self._waiting.unclaim(done)
        # A new connection, then: learn what one costs this origin.
        return functools.partial(self._handover.observe_connect, origin)

    def submit(self, stream: SyncDrainStream) -> None:
        tail = stream.tail()
        if tail is Tail.END:
            # The rest of the body is already here (the common case: the terminator came with
            # the last event): ending it costs less than handing it to a thread.
            self._stats.add("drains_buffered")
            stream.drain()
            return
        if not self._slots.acquire():
            stream.abort()
            return
        with self._lock:
            if self._executor is None:
                # Threads start on demand and stay for the transport's life: a new thread
                # per drain would cost more than the drain.
                self._executor = ThreadPoolExecutor(
                    max_workers=self._max_pending, thread_name_prefix="httpx-drain"
                )
            executor = self._executor
        done = threading.Event()
        handoff = threading.Event() if tail is Tail.ARRIVING else None
        waiting_since: list[float] = []
        origin = stream.origin

        def waiting() -> None:
            now = time.monotonic()
            waiting_since.append(now)
            self._waiting.add(origin, done, now)

        def on_wait() -> None:
            waiting()
            handoff.set()  # type: ignore[union-attr]

        def job() -> None:
            try:
                result = stream.drain(on_wait=on_wait if handoff is not None else None)
                if waiting_since:
                    kept = result.outcome is Outcome.KEPT
                    waited = time.monotonic() - waiting_since[0] if kept else None
                    self._linger.observe(origin, waited)
                    self._handover.observe(origin, waited)
            finally:
                self._waiting.remove(origin, done)
                self._slots.release()
                done.set()
                if handoff is not None:
                    handoff.set()

        # Bytes are arriving that may or may not end the body (a TLS record, part of the
        # terminator): wait while the drain consumes them (bounded by its deadline; normally
        # microseconds). Nothing to read: no wait for the worker to find that out too, and the
        # drain counts as waiting for the network from now, so that a request sent right after
        # this close() can already wait for it (the handover) rather than open a connection.
        if handoff is None:
            waiting()
        executor.submit(job)
        if handoff is not None:
            handoff.wait(stream.deadline)
        # Then linger briefly if this origin's terminators tend to trail by less than a new
        # connection would cost.
        if not done.is_set():
            linger = self._linger.wait(origin)
            if linger and not done.wait(linger):
                # Learn now, not when this drain ends (maybe a deadline later): during a burst
                # of closes every one would otherwise linger in vain. The wait is only a lower
                # bound of the delay; twice it puts the origin past the cap at once.
                self._linger.observe(origin, 2 * linger)

    def close(self) -> None:
        with self._lock:
            self._slots.closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            # Pending drains end within their deadline; wait for them so no thread, and no
            # socket a thread still reads, outlives the transport.
            executor.shutdown(wait=True)


def _spawner() -> Callable[[Callable[[], Awaitable[None]]], Any] | None:
    """How to start a detached task in the running event loop, or None if we cannot."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        return lambda fn: loop.create_task(fn())  # type: ignore[arg-type]
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return None
        # trio has no ambient nursery: a system task lives as long as trio.run() and is
        # cancelled only when the run ends, which our shielded, deadline-bound drain outlasts
        # by at most its deadline. The drain never raises, as a system task must not.
        return trio.lowlevel.spawn_system_task  # type: ignore[no-any-return]
    return None


class AsyncBackgroundRunner(AsyncRunner):
    """Drain in tasks owned by the transport (asyncio tasks, trio system tasks)."""

    def __init__(
        self, max_pending: int, stats: DrainStats, linger: Linger, handover: Handover
    ) -> None:
        self._slots = _Slots(max_pending, stats)
        self._stats = stats
        self._linger = linger
        self._handover = handover
        self._waiting = _Waiting()
        # Strong references: asyncio keeps only weak ones to running tasks.
        self._pending: set[anyio.Event] = set()
        self._tasks: set[Any] = set()

    async def before_request(self, url: Any, transport: Any) -> Callable[[float], None] | None:
        found = _handover(self._waiting, url, transport, self._handover)
        if found is None:
            return None
        origin, done, wait = found
        if wait:
            self._stats.add("handover_waits")
            try:
                with anyio.move_on_after(wait):
                    await done.wait()
            finally:
                self._waiting.unclaim(done)
            if done.is_set():
                return None
        return functools.partial(self._handover.observe_connect, origin)

    async def submit(self, stream: AsyncDrainStream) -> None:
        spawn = _spawner()
        if spawn is None:  # an event loop we cannot spawn into: drain inline
            await stream.drain()
            return
        if stream.tail() is Tail.END:
            # The rest of the body is already here: ending it costs less than a task.
            self._stats.add("drains_buffered")
            await stream.drain()
            return
        if not self._slots.acquire():
            await stream.abort()
            return
        done = anyio.Event()
        self._pending.add(done)
        origin = stream.origin
        gave_up: list[float] = []

        async def job() -> None:
            try:
                result = await stream.drain()
                if gave_up:
                    kept = result.outcome is Outcome.KEPT
                    waited = time.monotonic() - gave_up[0] if kept else None
                    self._linger.observe(origin, waited)
                    self._handover.observe(origin, waited)
            finally:
                self._waiting.remove(origin, done)
                self._slots.release()
                self._pending.discard(done)
                done.set()

        task = spawn(job)
        if isinstance(task, asyncio.Task):
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        # Let the drain consume what is already buffered before we return. Unlike the sync
        # runner we cannot ask the socket whether a read would wait: anyio on asyncio has
        # usually moved the bytes from the socket into its own buffer already.
        for _ in range(_ASYNC_HANDOFF_TURNS):
            if done.is_set():
                return
            await anyio.lowlevel.checkpoint()
        if not done.is_set():
            gave_up.append(time.monotonic())
            self._waiting.add(origin, done, gave_up[0])
            linger = self._linger.wait(origin)
            if linger:
                with anyio.move_on_after(linger) as scope:
                    await done.wait()
                if scope.cancelled_caught:
                    self._linger.observe(origin, 2 * linger)  # learn now, as the sync runner does

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # Retrieve the outcome so asyncio never logs "exception was never retrieved"; the
        # drain catches its own errors, so this is a cancellation at loop shutdown at most.
        if not task.cancelled():
            task.exception()

    async def aclose(self) -> None:
        self._slots.closed = True
        with anyio.CancelScope(shield=True):
            for done in list(self._pending):
                await done.wait()
            # A drain sets its event a step before its task ends: wait for the tasks too, so
            # none outlives the transport (trio system tasks end with the event).
            if self._tasks:
                await asyncio.wait(list(self._tasks))
