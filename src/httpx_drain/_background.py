"""Where drains run: inline in ``close()``, or in the background after it returns.

A background drain still consumes, before ``close()`` returns, whatever needs no wait. When
the rest of the body is already in h11's buffer (or, on plain TCP, in the kernel's) the
caller ends it itself: that costs less than a hand-off to a thread or task. When bytes are
arriving whose end we cannot see (TLS records), the drain starts on a worker and the caller
waits until it either ends or is about to wait for the network. Returning earlier would send
the caller's next request to a fresh connection while the old one was microseconds from being
reusable. When nothing has arrived, the caller returns at once (after a learned linger): a
sync drain is then parked on its socket for the next request to end (no thread competes with
the caller for the GIL), an async one waits in a task."""

from __future__ import annotations

import asyncio
import functools
import math
import select
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import anyio

from . import _fork
from ._policy import Handover, Linger, Outcome
from ._pool import has_available_connection
from ._stats import logger
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
            # Drains are added as they begin to wait, so the first one free has waited longest.
            done = next((d for d in drains if d not in self._claimed), None)
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


#: How long a sync transport must go without a request before its watcher thread looks for
#: the bytes of parked drains itself. While requests come more often than this, each of them
#: ends the drains whose bytes have arrived, and no thread of ours competes with the caller's
#: for the GIL (a worker woken by every terminator cost a request about 0.5 ms on loopback).
_QUIET = 0.02
#: Seconds the watcher thread stays with nothing parked before it ends.
_WATCHER_IDLE = 1.0


class _Parked:
    """A background drain waiting for its bytes on no thread at all: parked on its socket.

    Whoever sees the bytes first ends it: the next request, a request that waits for its
    connection (the handover), or, once the transport has gone quiet, the watcher thread.
    ``taken`` changes under the runner's lock: exactly one of them ends it.

    ``ended`` is set, and ``event`` (made only for a thread that waits for another to end
    the drain) with it, under the runner's lock too. A ``threading.Event`` for every drain
    cost more than the rest of parking it: its ``Condition`` raises and catches three
    ``AttributeError`` as it is made (about 75,000 instructions).
    """

    __slots__ = (
        "ended",
        "event",
        "expires",
        "runner",
        "since",
        "sock",
        "stream",
        "taken",
        "unseen",
    )

    def __init__(
        self, runner: SyncBackgroundRunner, stream: SyncDrainStream, sock: Any, since: float
    ) -> None:
        self.runner = runner
        self.stream = stream
        self.sock = sock
        self.since = since
        self.expires = since + stream.deadline
        #: When a look last found no bytes: the end landed after it.
        self.unseen = since
        self.taken = False
        self.ended = False
        self.event: threading.Event | None = None

    def is_set(self) -> bool:
        """True once the drain has ended (as ``threading.Event.is_set``)."""
        return self.ended

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the drain to end (ending it here if its bytes
        come); True if it ended."""
        return self.runner._await(self, timeout)


def _socket_of(stream: SyncDrainStream) -> Any:
    """The socket to park ``stream``'s drain on, or None (not httpcore's network stream)."""
    try:
        sock = stream.network_stream.get_extra_info("socket")
    except Exception:
        return None
    return sock if callable(getattr(sock, "fileno", None)) else None


def _readable(entries: list[_Parked], timeout: float) -> list[_Parked]:
    """The entries whose socket is readable (or closed) within ``timeout`` seconds: one
    ``poll`` for all of them (``select`` where there is no ``poll``: Windows, gevent), and a
    second one that waits if the first found none. A poll object per call: two threads may
    look at once. If the look itself fails, every entry counts as readable: ending a drain
    finds out what is there, and waits on a worker if it must.

    Each entry's ``unseen`` brackets when its end landed, since a drain that ends takes the
    midpoint of its last miss and the look that saw it as the time it waited, which is what
    the handover expects of the next one: a miss moves ``unseen`` on; bytes seen at once
    landed after the previous miss; bytes seen during a wait landed just now.
    """
    by_fd: dict[int, _Parked] = {}
    closed: list[_Parked] = []
    for entry in entries:
        try:
            fd = entry.sock.fileno()
        except Exception:  # pragma: no cover - a socket object of another shape
            fd = -1
        if fd < 0:
            closed.append(entry)  # closed under us: ending it finds out what happened
        else:
            by_fd[fd] = entry
    try:
        fds = _look(by_fd, 0.0)
        waited = not fds and not closed and timeout > 0
        if waited:
            fds = _look(by_fd, timeout)
    except (OSError, ValueError):  # e.g. a descriptor past select()'s limit
        return closed + list(by_fd.values())
    now = time.monotonic()
    ready = set(fds)
    for fd, entry in by_fd.items():
        if waited or fd not in ready:
            entry.unseen = now
    return closed + [by_fd[fd] for fd in fds]


def _look(by_fd: dict[int, _Parked], timeout: float) -> list[int]:
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        return [fd for fd, _events in poller.poll(math.ceil(timeout * 1000))]
    return select.select(list(by_fd), [], [], timeout)[0] if by_fd else []


def _learn(linger: Linger, handover: Handover, origin: str, waited: float | None) -> None:
    """Tell both learners how long a drain of ``origin`` waited for its end (None: never)."""
    linger.observe(origin, waited)
    handover.observe(origin, waited)


def _first_connect(handover: Handover, url: Any) -> Callable[[float], None] | None:
    """Where to report a connection to ``url``'s origin while none has been timed yet: the
    handover's window is what one costs, and a request that waits for a drain every time
    would never open one to learn it."""
    origin = origin_of(url)
    if handover.knows_connects(origin):
        return None
    return functools.partial(handover.observe_connect, origin)


class SyncBackgroundRunner(SyncRunner):
    """Drain after ``close()`` returns, at most ``max_pending`` at once, with no thread in the
    common case.

    A drain with nothing to read yet is *parked*: no thread waits for it. Each request first
    looks (one ``poll``) at the parked drains' sockets and ends those whose bytes have arrived,
    which takes microseconds with no hand-off; so does a request that waits for a drain of its
    origin to free a connection. When no request has come for ``_QUIET`` seconds, a watcher
    thread owned by the transport ends them as their bytes land; it also ends at its deadline
    a drain whose end never came. Bytes whose end cannot be seen (a TLS record, part of a
    terminator) go to a worker thread, which may wait for the rest within the deadline.

    httpcore's pool is thread-safe: a thread that ends the body puts the connection back under
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
        self._wakeup = threading.Condition(self._lock)
        self._executor: ThreadPoolExecutor | None = None
        self._parked: dict[_Parked, None] = {}  # oldest first
        self._live: set[_Parked] = set()  # parked, or being ended
        self._watcher: threading.Thread | None = None
        self._closing = False
        self._last_request = 0.0
        # Streams a worker drains (set operations are atomic: no lock), and streams whose
        # drains a parent process began (see _after_fork).
        self._working: set[SyncDrainStream] = set()
        self._orphans: list[SyncDrainStream] = []
        _fork.register(self)

    def _after_fork(self) -> None:
        """In a child of ``fork()``: start afresh. The watcher and the workers did not come
        along (a lock one of them held would stay held), and each drain in flight reads a
        socket the parent still reads: the child closes its copies of those connections,
        unread, at its next request or close. Not here: that takes httpcore's pool lock."""
        self._orphans += [entry.stream for entry in self._live] + list(self._working)
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        closed, self._slots = self._slots.closed, _Slots(self._max_pending, self._stats)
        self._slots.closed = closed
        self._waiting = _Waiting()
        self._parked, self._live, self._working = {}, set(), set()
        self._watcher = self._executor = None

    def _drop_orphans(self) -> None:
        with self._lock:  # the child's threads may race here: each orphan is closed once
            orphans, self._orphans = self._orphans, []
        for stream in orphans:
            stream.abort()
        logger.debug("closed %d connections a parent process was draining", len(orphans))

    def before_request(self, url: Any, transport: Any) -> Callable[[float], None] | None:
        self._last_request = time.monotonic()
        if self._orphans:
            self._drop_orphans()
        if self._parked:
            kept = self._end_arrived()
            if kept and origin_of(url) in kept:
                # A connection to this origin went back to the pool just now: the request
                # takes it, with no look through the pool for one (which costs as much as the
                # look at twenty parked drains).
                return _first_connect(self._handover, url)
        found = _handover(self._waiting, url, transport, self._handover)
        if found is None:
            return _first_connect(self._handover, url)
        origin, done, wait = found
        if wait:
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
        sock = _socket_of(stream) if tail is Tail.NOTHING else None
        if sock is not None:
            self._park(stream, sock)
        else:
            self._to_worker(stream, tail)

    # Parked drains.

    def _park(self, stream: SyncDrainStream, sock: Any) -> None:
        now = time.monotonic()
        entry = _Parked(self, stream, sock, now)
        with self._lock:
            self._live.add(entry)
            self._parked[entry] = None
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="httpx-drain-watcher", daemon=True
                )
                self._watcher.start()
            elif len(self._parked) == 1:
                self._wakeup.notify()
        # From now on a request that finds no free connection may wait for this one.
        self._waiting.add(stream.origin, entry, now)
        self._linger_for(stream.origin, entry)

    def _linger_for(self, origin: str, done: _Parked | threading.Event) -> None:
        """Linger briefly for a drain not ended yet, if this origin's terminators tend to
        trail by less than a new connection would cost."""
        if done.is_set():
            return
        linger = self._linger.wait(origin)
        if linger and not done.wait(linger):
            # Learn now, not when this drain ends (maybe a deadline later): during a burst of
            # closes every one would otherwise linger in vain. The wait is only a lower bound
            # of the delay; twice it puts the origin past the cap at once.
            self._linger.observe(origin, 2 * linger)

    def _take(self, entry: _Parked) -> bool:
        with self._lock:
            if entry.taken:
                return False
            entry.taken = True
            del self._parked[entry]
            return True

    def _untake(self, entry: _Parked) -> None:
        with self._lock:
            entry.taken = False
            self._parked[entry] = None

    def _end_arrived(self) -> set[str]:
        """End the parked drains whose bytes have arrived (one ``poll``, no wait); the origins
        of those that returned their connection to the pool."""
        with self._lock:
            entries = list(self._parked)
        kept = set()
        for entry in _readable(entries, 0.0):
            if self._take(entry) and self._finish(entry):
                kept.add(entry.stream.origin)
        return kept

    def _await(self, entry: _Parked, timeout: float) -> bool:
        started = time.monotonic()
        if self._take(entry):
            if not _readable([entry], timeout):
                self._untake(entry)
                return False
            self._finish(entry)
            timeout -= time.monotonic() - started
        return self._ended(entry).wait(max(timeout, 0.0))

    def _ended(self, entry: _Parked) -> threading.Event:
        """An event set once ``entry`` has ended, for a thread to wait on."""
        with self._lock:
            if entry.event is None:
                entry.event = threading.Event()
                if entry.ended:
                    entry.event.set()
            return entry.event

    def _finish(self, entry: _Parked) -> bool:
        """End a taken drain whose socket is readable, or whose deadline has passed; True if
        it ended here and returned its connection."""
        if time.monotonic() >= entry.expires:
            return self._end(entry)  # an expired budget reads without waiting
        if entry.stream.tail(readable=True) is Tail.END:
            return self._end(entry)  # nothing to wait for
        try:
            self._executor_for().submit(self._end, entry)
        except RuntimeError:  # pragma: no cover - shut down meanwhile: end it here
            return self._end(entry)
        return False

    def _end(self, entry: _Parked) -> bool:
        origin = entry.stream.origin
        kept = False
        try:
            result = entry.stream.drain(started=entry.since)
            waited = None
            if result.outcome is Outcome.KEPT:
                kept = True
                # The end landed between the last look that missed it and now.
                waited = (entry.unseen + time.monotonic()) / 2 - entry.since
            _learn(self._linger, self._handover, origin, waited)
        finally:
            self._waiting.remove(origin, entry)
            self._slots.release()
            with self._lock:
                self._live.discard(entry)
                entry.ended = True
                event = entry.event
            if event is not None:
                event.set()
        return kept

    def _watch(self) -> None:
        """The watcher thread: ends parked drains once requests stop coming, and at their
        deadline."""
        while True:
            with self._lock:
                if not self._parked and not self._closing:
                    self._wakeup.wait(_WATCHER_IDLE)
                if not self._parked and (self._closing or not self._live):
                    self._watcher = None
                    return
                entries = list(self._parked)
                closing = self._closing
            if not entries:
                continue
            now = time.monotonic()
            soonest = min(entry.expires for entry in entries)
            if soonest <= now:
                ready = [entry for entry in entries if entry.expires <= now]
            elif closing or now - self._last_request >= _QUIET:
                ready = _readable(entries, min(soonest - now, _QUIET))
            else:
                # Requests are coming: they look for the bytes themselves.
                with self._lock:
                    self._wakeup.wait(min(self._last_request + _QUIET, soonest) - now)
                continue
            for entry in ready:
                if self._take(entry):
                    self._finish(entry)

    # Worker threads.

    def _executor_for(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                # Threads start on demand and stay for the transport's life: a new thread per
                # drain would cost more than the drain.
                self._executor = ThreadPoolExecutor(
                    max_workers=self._max_pending, thread_name_prefix="httpx-drain"
                )
            return self._executor

    def _to_worker(self, stream: SyncDrainStream, tail: Tail) -> None:
        executor = self._executor_for()
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
                    _learn(self._linger, self._handover, origin, waited)
            finally:
                self._working.discard(stream)
                self._waiting.remove(origin, done)
                self._slots.release()
                done.set()
                if handoff is not None:
                    handoff.set()

        # Bytes are arriving that may or may not end the body (a TLS record, part of the
        # terminator): wait while the drain consumes them (bounded by its deadline; normally
        # microseconds). A stream with no socket to park on counts as waiting for the network
        # from now, so that a request sent right after this close() can wait for it.
        if handoff is None:
            waiting()
        self._working.add(stream)
        executor.submit(job)
        if handoff is not None:
            handoff.wait(stream.deadline)
        self._linger_for(origin, done)

    def close(self) -> None:
        if self._orphans:
            self._drop_orphans()
        with self._lock:
            self._slots.closed = True
            self._closing = True
            self._wakeup.notify_all()
            watcher = self._watcher
        # Parked drains end within their deadline (as their bytes come, or at it); wait for
        # them and for the workers, so that no thread, and no socket a thread still reads,
        # outlives the transport.
        if watcher is not None:
            watcher.join()
        with self._lock:
            live = list(self._live)
        for entry in live:  # ended by a request's thread meanwhile
            self._ended(entry).wait()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
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
            return _first_connect(self._handover, url)
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
                    _learn(self._linger, self._handover, origin, waited)
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
