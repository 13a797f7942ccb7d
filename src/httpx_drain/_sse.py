"""Sans-IO, incremental boundary scanner for ``text/event-stream`` bodies.

The transport wrapper feeds every body chunk to :meth:`SSEScanner.feed` on its
way to the consumer.  The scanner tells it, per chunk and without buffering the
body, where whole event blocks end, whether the *terminal* event of the stream
(``data: [DONE]``, ``event: message_stop``, ...) has just been completed, and
keeps a bounded record of the unfinished trailing block for error messages.

Parsing follows the WHATWG HTML "Server-sent events" interpretation rules:

* Lines end with CRLF, LF or CR.  A CR that ends one chunk and an LF that starts
  the next are *one* line end.
* One UTF-8 BOM at the very start of the stream is skipped, even when it is
  split across chunks.  A BOM anywhere else is content.
* A line starting with ``:`` is a comment.  ``name: value`` is a field, with one
  optional space after the colon stripped; a line without a colon is a field
  name with an empty value.  ``data`` values accumulate (joined with ``\\n``),
  the last ``event`` wins, ``id`` values containing NUL are ignored, ``retry``
  must be ASCII digits only, unknown fields are ignored.
* An empty line ends (dispatches) the current block.

Terminology and exact choices made here:

*Block*
    The lines between two empty lines.  A block is *non-empty* when it has at
    least one line (field or comment); it is an *event* when it has at least
    one field line (any name, known or not).  Unlike ``EventSource``, an event
    block without ``data`` (``event: done`` alone) is still counted, handed to
    the terminal predicate (with ``data == ""``) and can be terminal.
    Empty lines that close nothing (runs of empty lines, a stream starting
    with one) are ignored.

*Dispatch point*
    The offset just past the first character of the line end of the empty line
    that closes a non-empty block: past the LF for ``\\n``, past the CR for
    ``\\r`` and for ``\\r\\n``.  This is where a conforming parser dispatches,
    so it never depends on bytes that have not arrived yet.

*Cut points*
    Offsets at which the stream can be cut so that everything before them is
    whole blocks: every dispatch point and, when the dispatching line end is a
    CRLF, also the offset just past its LF.  Every non-empty block, comment-only
    ones included, ends at a cut point, so chunks cut there never split a block.

:attr:`ScanResult.last_boundary` is the *last* cut point inside the fed chunk
(``-1`` if none).  For a CRLF empty line inside one chunk that is the offset
past the LF.  When a chunk ends between that CR and its LF, the chunk's end is
reported, and the next chunk reports (at least) ``1`` for the LF, so a consumer
fed chunks cut at these offsets never waits for a lone trailing CR.  The set of
cut points is a property of the byte stream: whatever the chunking, each chunk
reports the largest cut point that falls in it.

:attr:`ScanResult.terminal_end` is the dispatch point of the terminal event
(``-1`` if it is not completed in this chunk).  It is reported exactly once and
does not depend on the chunking either.  Giving the consumer the bytes up to
``terminal_end`` and then end-of-body leaves at most the LF of a final CRLF
unread, which every conforming parser ignores at end of stream.

After the terminal event the scanner keeps scanning: cut points are still
reported and complete events still counted, in :attr:`SSEScanner.events` and
separately in :attr:`SSEScanner.events_after_terminal`, but no predicate is
evaluated any more and ``terminal_end`` stays ``-1``.

The unfinished trailing block is described by :attr:`SSEScanner.partial` (its
first ``max_partial`` raw bytes, starting at its first non-empty line),
:attr:`SSEScanner.partial_size` (its true size in bytes) and
:attr:`SSEScanner.in_partial` (true when it holds at least one field line, i.e.
an event would be lost if the stream ended now; a pending comment does not
count).  Bytes that may still turn out to be the BOM count as content until
they do.

Cost.  ``feed`` does a few C-level operations per chunk and, at most, a few
per line; payloads are never decoded and only copied in C (slices, splits):

* a chunk that is exactly one whole event, while the previous chunk ended at
  a block boundary (the usual case for chunked HTTP/1.1 SSE): a handful of
  ``memchr`` calls (``int in bytes``) and one set lookup; :meth:`SSEScanner.take`
  is that path alone, for a caller that needs no offsets;
* the first part of an event split across two chunks (a read or a TLS record
  ended inside it): the same few ``memchr`` calls; the second part is walked;
* larger chunks (>= 1 KiB) of regular lines: ``bytes.split`` plus a few
  C-level passes over the list of lines;
* other chunks: a walk from line end to line end with ``bytes.find``;
* anything irregular (comments, CR line ends mixed with LF, runs of empty
  lines, lines starting with a byte <= ``:``, possible terminal lines, the
  BOM) goes through a line-by-line parser, only as far as needed.

With a :class:`TerminalEvents` matcher (the default) a complete line can only
matter if it is one of a few *candidate* lines (``data: [DONE]``,
``event: message_stop``, ...), recognised by length and a set lookup.  The
matcher then keeps, per block, the last ``event`` value and a short prefix of
the ``data`` (64 bytes, or the longest compared value if longer), so
:attr:`SSEScanner.terminal_event` carries a possibly truncated ``data`` and
``id``/``retry`` of ``None``.  A custom predicate needs whole events: every
line goes through the line-by-line parser and ``data`` is accumulated in full,
which is an order of magnitude slower.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, NamedTuple

__all__ = [
    "DEFAULT_TERMINAL",
    "SSEEvent",
    "SSEScanner",
    "ScanResult",
    "TerminalEvents",
    "TerminalPredicate",
]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One complete event block, as seen by a terminal predicate.

    ``event`` is ``"message"`` when the block has no (or an empty) ``event``
    field.  ``id`` and ``retry`` are the block's own (last valid) ``id`` and
    ``retry`` fields, ``None`` when absent; ``id`` is *not* inherited from
    earlier events as ``EventSource.lastEventId`` would be.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


TerminalPredicate = Callable[[SSEEvent], bool]
"""Decides whether an event is the last one of the stream."""

_DEFAULT_EVENTS: Final = (
    "done",  # OpenAI Assistants (followed by ``data: [DONE]``)
    "message_stop",  # Anthropic Messages
    "response.completed",  # OpenAI Responses
    "response.failed",
    "response.incomplete",
)


@dataclass(frozen=True, slots=True, init=False)
class TerminalEvents:
    """Declarative terminal matcher: ``event.event in events or event.data in data``.

    Being declarative lets :class:`SSEScanner` evaluate it without building
    events: only the ``event`` value and a short ``data`` prefix are tracked,
    and values are compared as UTF-8 bytes (which only differs from comparing
    decoded text for invalid UTF-8).  Including ``"message"`` in ``events``
    (blocks without an ``event`` field) or ``""`` in ``data`` works but
    disables the scanner's fast paths.
    """

    events: frozenset[str]
    data: frozenset[str]

    def __init__(
        self, *, events: Iterable[str] = _DEFAULT_EVENTS, data: Iterable[str] = ("[DONE]",)
    ) -> None:
        if isinstance(events, str) or isinstance(data, str):
            raise TypeError("events and data must be iterables of str, not str")
        object.__setattr__(self, "events", frozenset(events))
        object.__setattr__(self, "data", frozenset(data))

    def __call__(self, event: SSEEvent) -> bool:
        return event.event in self.events or event.data in self.data


DEFAULT_TERMINAL: Final = TerminalEvents()
"""``data: [DONE]`` (OpenAI chat/completions, Assistants) or an ``event`` of
``done``, ``message_stop`` (Anthropic), ``response.completed``,
``response.failed`` or ``response.incomplete`` (OpenAI Responses)."""


class ScanResult(NamedTuple):
    """What one :meth:`SSEScanner.feed` call found in its chunk."""

    last_boundary: int
    """Offset just past the last cut point in the chunk, ``-1`` if none."""
    terminal_end: int
    """Dispatch point of the terminal event in the chunk, ``-1`` if not there."""


_new_result: Final = tuple.__new__
_NO_RESULT: Final = ScanResult(-1, -1)
_RESULTS: Final[dict[int, ScanResult]] = {}  # interned (n, -1) results for small n
_RESULTS_MAX: Final = 4096
_BULK: Final = 1024  # chunks from this size on try _bulk before _walk


def _result(last_boundary: int) -> ScanResult:
    """``ScanResult(last_boundary, -1)``, interned for small offsets."""
    res = _RESULTS.get(last_boundary)
    if res is None:
        res = _new_result(ScanResult, (last_boundary, -1))
        if last_boundary < _RESULTS_MAX:
            _RESULTS[last_boundary] = res
    return res


_BOM: Final = b"\xef\xbb\xbf"
_LF: Final = 10
_COLON: Final = 58
_KEEP: Final = 64  # minimum line / data prefix kept for a TerminalEvents matcher

_NONE: Final = 0  # boundaries only
_TERM: Final = 1  # boundaries + TerminalEvents matching on prefixes
_FULL: Final = 2  # boundaries + full events for a custom predicate


class _Matcher(NamedTuple):
    """A :class:`TerminalEvents`, compiled for byte-level matching."""

    events: frozenset[bytes]  # event field values that match (b"" for "message")
    data: frozenset[bytes]  # data values that match
    pieces: frozenset[bytes]  # single data-line values that can be part of a match
    cap: int  # bytes kept of a line
    dcap: int  # bytes kept of the data buffer
    walkable: bool  # every terminal block has a candidate line
    forms: frozenset[bytes]  # every candidate line
    prefixes: frozenset[bytes]  # every prefix of every candidate line
    lengths: frozenset[int]  # the lengths of the candidate lines


@lru_cache(maxsize=64)
def _compile(matcher: TerminalEvents) -> _Matcher:
    # SSEEvent.event is never "": an empty or missing event field is "message".
    events = {e.encode() for e in matcher.events if e}
    if "message" in matcher.events:
        events.add(b"")  # a block without an event field is a "message"
    data = {d.encode() for d in matcher.data}
    pieces = {p for d in data for p in d.split(b"\n")}
    forms = [b"event:" + e for e in events] + [b"event: " + e for e in events]
    forms += [b"data:" + p for p in pieces] + [b"data: " + p for p in pieces]
    # Lines can never contain CR or LF: such values cannot match at all.
    forms = [f for f in forms if b"\r" not in f and b"\n" not in f]
    # A block with no event line, or data lines with empty values, leave no
    # recognisable line behind; those matchers run on the line-by-line path.
    walkable = b"" not in events and b"" not in pieces
    cap = max([_KEEP, *map(len, forms)])
    dcap = max([_KEEP, *(len(d) + 1 for d in data)])
    return _Matcher(
        events=frozenset(events),
        data=frozenset(data),
        pieces=frozenset(pieces),
        cap=cap,
        dcap=dcap,
        walkable=walkable,
        forms=frozenset(forms),
        prefixes=frozenset(f[:i] for f in forms for i in range(1, len(f) + 1)),
        lengths=frozenset(map(len, forms)),
    )


def _split_field(line: bytes) -> tuple[bytes, bytes]:
    colon = line.find(b":")
    if colon < 0:
        return line, b""
    value = line[colon + 1 :]
    if value[:1] == b" ":
        value = value[1:]
    return line[:colon], value


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


class SSEScanner:
    """Incremental ``text/event-stream`` boundary scanner (see the module docs).

    ``is_terminal`` decides which event ends the stream: a :class:`TerminalEvents`
    (fast, the default), any other predicate (called with every complete event
    until it returns true; slow), or ``None`` for boundary scanning only.
    ``max_partial`` bounds :attr:`partial`.  An exception raised by the
    predicate propagates out of :meth:`feed`; the scanner is unusable after it.

    For instance, a wrapper that hands the consumer whole events only and ends
    the body after the terminal event::

        scanner = SSEScanner()
        pending = b""
        for chunk in body:
            result = scanner.feed(chunk)
            if result.terminal_end >= 0:
                yield pending + chunk[: result.terminal_end]
                break  # end of body for the consumer (drain the rest)
            if result.last_boundary >= 0:
                yield pending + chunk[: result.last_boundary]
                pending = chunk[result.last_boundary :]
            else:
                pending += chunk
        else:
            if scanner.in_partial:
                ...  # truncated: scanner.events events, then scanner.partial
    """

    __slots__ = (
        "_after",
        "_bhot",
        "_bom",
        "_can_walk",
        "_cap",
        "_clean",
        "_cr",
        "_crcut",
        "_data",
        "_dcap",
        "_dexact",
        "_dirty",
        "_dlist",
        "_ev",
        "_events",
        "_events_at_terminal",
        "_evexact",
        "_fast_ok",
        "_field",
        "_first",
        "_flens",
        "_forms",
        "_id",
        "_is_terminal",
        "_lazy",
        "_lbuf",
        "_line",
        "_llen",
        "_m",
        "_max_partial",
        "_mode",
        "_partial",
        "_predicate",
        "_prefixes",
        "_psize",
        "_retry",
        "_terminal_event",
    )

    def __init__(
        self,
        is_terminal: TerminalPredicate | None = DEFAULT_TERMINAL,
        *,
        max_partial: int = 1024,
    ) -> None:
        if max_partial < 0:
            raise ValueError("max_partial must be >= 0")
        self._is_terminal = is_terminal
        self._max_partial = max_partial
        self._predicate: TerminalPredicate | None = None
        self._m: _Matcher | None = None
        self._cap = 1
        self._dcap = 0
        self._forms: frozenset[bytes] = frozenset()  # complete candidate lines
        self._flens: frozenset[int] = frozenset()  # and their lengths
        self._prefixes: frozenset[bytes] = frozenset()  # and every prefix of them
        if is_terminal is None:
            self._mode = _NONE
        elif type(is_terminal) is TerminalEvents:
            self._mode = _TERM
            m = self._m = _compile(is_terminal)
            self._cap, self._dcap = m.cap, m.dcap
            self._forms = m.forms
            self._flens = m.lengths
            self._prefixes = m.prefixes
        else:
            self._mode = _FULL
            self._predicate = is_terminal
        # Counters and results.
        self._events = 0
        self._events_at_terminal = 0  # _events right after the terminal event
        self._after = False  # the terminal event has been seen
        self._terminal_event: SSEEvent | None = None
        # Stream / line state.
        self._bom = 0  # BOM bytes matched so far at stream start; 3 = resolved
        self._cr = False  # the last chunk ended with a CR line end
        self._crcut = False  # ... which dispatched a block
        self._llen = 0  # length of the unterminated current line
        self._first = -1  # its first byte
        self._line = b""  # its first `_cap` bytes (modes _NONE, _TERM)
        self._lbuf = bytearray()  # all of it (mode _FULL)
        # Current block state.
        self._field = False  # has a field line
        self._psize = 0  # raw size since its first non-empty line (0: empty block)
        self._partial = b""  # first `max_partial` bytes of that
        self._bhot = False  # has a line that may make it terminal (mode _TERM)
        self._dirty = False  # _ev/_data below differ from their initial values
        self._ev = b""  # last event value (truncated unless _evexact)
        self._evexact = True
        self._data = b""  # data buffer, each value + b"\n" (truncated unless _dexact)
        self._dexact = True
        self._dlist: list[bytes] = []  # mode _FULL: all data values
        self._id: bytes | None = None  # mode _FULL
        self._retry: int | None = None  # mode _FULL
        # Complete lines of the current block not parsed yet (mode _TERM):
        # (chunk, start, end, crlf) -- see _walk.
        self._lazy: tuple[bytes, int, int, bool] | None = None
        # _walk may be used (mode _NONE, or a TerminalEvents it can watch).
        self._can_walk = self._mode == _NONE or (self._m is not None and self._m.walkable)
        self._fast_ok = False  # until the BOM question is settled
        self._clean = False  # _fast_ok and the current block is empty

    # -- public state ------------------------------------------------------

    @property
    def is_terminal(self) -> TerminalPredicate | None:
        """The terminal predicate given to the constructor."""
        return self._is_terminal

    @property
    def max_partial(self) -> int:
        """Bound on :attr:`partial`."""
        return self._max_partial

    @property
    def events(self) -> int:
        """Complete events (blocks with at least one field line) so far."""
        return self._events

    @property
    def events_after_terminal(self) -> int:
        """How many of :attr:`events` were completed after the terminal event."""
        return self._events - self._events_at_terminal if self._after else 0

    @property
    def terminal_seen(self) -> bool:
        """Whether the terminal event has been completed."""
        return self._after

    @property
    def terminal_event(self) -> SSEEvent | None:
        """The terminal event, for logging (``data`` truncated with a TerminalEvents)."""
        return self._terminal_event

    @property
    def partial(self) -> bytes:
        """First ``max_partial`` bytes of the unfinished trailing block."""
        return self._partial

    @property
    def partial_size(self) -> int:
        """True size in bytes of the unfinished trailing block."""
        return self._psize

    @property
    def in_partial(self) -> bool:
        """Whether the unfinished trailing block has a field line (an event would be lost)."""
        return self._field or (self._llen > 0 and self._first != _COLON)

    def __repr__(self) -> str:
        return (
            f"<SSEScanner events={self._events} terminal_seen={self._after} "
            f"partial_size={self._psize}>"
        )

    # -- scanning ----------------------------------------------------------

    def take(self, chunk: bytes) -> bool:
        """The hot path of :meth:`feed`, for a caller that needs no offsets.

        True when ``chunk`` is exactly one ordinary single-line event (``data: ...`` and the
        empty line, LF line ends) and the previous chunk ended at a block boundary: the event
        is counted and nothing else can have happened (no terminal event, the chunk ends at a
        cut point), so the caller can hand the chunk on as it is. That is what chunked SSE
        responses mostly deliver, one event per chunk. False: nothing was done, call
        :meth:`feed`.
        """
        # SyncDrainStream.__iter__ runs a copy of this, inlined (keep the two in step).
        if self._clean:
            # ``removesuffix`` takes its argument without parsing a tuple (``endswith``,
            # ``find`` and ``partition`` cost more per call) and returns ``chunk`` itself when
            # the suffix is absent; ``int in bytes`` is a bare memchr. A line can only be a
            # candidate if it is one of the matcher's ``forms``.
            line = chunk.removesuffix(b"\n\n")
            if (
                line is not chunk
                and line >= b";"  # non-empty, first byte above ":" (no comment), in one op
                and 10 not in line
                and 13 not in line
                and (len(line) not in self._flens or line not in self._forms)
            ):
                self._events += 1
                return True
        return False

    def feed(self, chunk: bytes) -> ScanResult:
        """Scan the next chunk of the body; offsets in the result are into ``chunk``."""
        if self.take(chunk):
            n = len(chunk)
            res = _RESULTS.get(n)
            return _result(n) if res is None else res
        return self.feed_untaken(chunk)

    def feed_untaken(self, chunk: bytes) -> ScanResult:
        """:meth:`feed` without trying :meth:`take` first, for a caller that just did."""
        if not self._bom and chunk and chunk[0] != _BOM[0]:
            # The stream's first bytes, and no BOM: settled here, the first event can take the
            # fast paths too (it is one per response, and the line-by-line path is slow).
            self._bom = 3
            self._fast_ok = self._clean = self._can_walk
            return self.feed(chunk)
        if self._clean:
            # The previous chunk ended at a block boundary and this one is one whole event of a
            # few lines (what Anthropic's and OpenAI's Responses streams send): split them.
            n = len(chunk)
            if 2 < n < _BULK and chunk[n - 1] == 10:
                # (Larger chunks go to _bulk, which does all of this for many events at once.)
                body = None
                if 13 not in chunk:
                    if chunk[n - 2] == 10:
                        body = chunk[: n - 2]
                        sep = b"\n"
                elif n > 4 and chunk[n - 2] == 13 and chunk[n - 3] == 10 and chunk[n - 4] == 13:
                    body = chunk[: n - 4]
                    sep = b"\r\n"
                if body is not None:
                    flens = self._flens
                    forms = self._forms
                    for line in body.split(sep):
                        if (
                            not line
                            or line[0] <= 58
                            or 13 in line
                            or 10 in line
                            or (len(line) in flens and line in forms)
                        ):
                            break
                    else:
                        self._events += 1
                        return _result(n)
            elif (
                n
                and chunk[0] > 58
                and 10 not in chunk
                and 13 not in chunk
                and (n > self._cap or chunk not in self._prefixes)
            ):
                # The first part of an event split across chunks (a read or TLS record ended
                # inside it): one unfinished line, neither a comment nor the start of a
                # candidate, opens the block. What _general would record, without its setup.
                self._first = chunk[0]
                self._line = chunk[: self._cap]
                self._llen = n
                self._partial = chunk[: self._max_partial]
                self._psize = n
                self._clean = False
                return _NO_RESULT
        if self._fast_ok and chunk:
            if len(chunk) >= _BULK:
                r = self._bulk(chunk)
                if r >= 0:
                    return _result(r)
            r = self._walk(chunk, 0)
            if r >= 0:
                return _result(r)
            if r < -1:
                return self._general(chunk, ~r, ~r, ~r)
            return self._general(chunk, 0, -1, 0)
        if not chunk:
            return _NO_RESULT
        return self._general(chunk, 0, -1, -1)

    def _bulk(self, chunk: bytes) -> int:
        """Fast path for a whole chunk of many lines, with C-level list operations only.

        Same preconditions and regular lines as :meth:`_walk`, all or nothing:
        returns the last cut point after committing, or ``-1`` (nothing done).
        """
        if 13 in chunk:
            sep = b"\r\n"
            lines = chunk.split(sep)
            joined = b"".join(lines)
            if 13 in joined or 10 in joined:  # not CRLF throughout
                return -1
        else:
            sep = b"\n"
            lines = chunk.split(sep)
        last = len(lines) - 1
        at_ls = not self._llen
        # complete lines, minus a continued line (which cannot be a candidate)
        seq = lines[0 if at_ls else 1 : last]
        ev = seq.count(b"")
        if not ev or (at_ls and not seq[0]):
            return -1
        partial = lines[last]
        if (
            bytes(map(bool, seq)).find(b"\0\0") >= 0  # two empty lines in a row
            or min(filter(None, seq), default=b"\xff")[0] <= 58
            or (partial and partial[0] <= 58)
        ):
            return -1
        flens = self._flens
        if flens and not flens.isdisjoint(map(len, seq)) and not self._forms.isdisjoint(seq):
            return -1
        n = len(chunk)
        return self._commit(
            chunk, ev, chunk.rfind(sep + sep) + 2 * len(sep), n - len(partial), len(sep) == 2
        )

    def _walk(self, chunk: bytes, pos: int) -> int:
        """Fast path: walk the regular lines of ``chunk[pos:]``.

        Requires: BOM settled, no pending CR, no candidate line in the current
        block, current partial line (if any) neither a comment nor a candidate
        prefix, matcher walkable.  A line is *regular* when it ends like all
        the others (LF, or CRLF), starts with a byte above ``:`` (so it is
        neither empty, a comment nor a CR) and is not a candidate line
        (``self._forms``), except that one empty line may follow a non-empty
        one.  Every empty line walked therefore closes a block that has a
        field line and cannot be terminal: counting is all there is to do.
        (Lines starting with a digit, space or punctuation are fine but sent
        to the line-by-line path too; they are rare.)

        Returns ``-1`` when nothing was committed (no block closed before the
        first irregular line).  Otherwise state is committed up to the last
        empty line walked, ending at ``lb``: returns ``lb`` when the whole
        chunk was consumed, ``~lb`` (<= -2) when the caller must continue at
        ``lb`` line by line.
        """
        if self._llen:
            ls = -1  # the first line is a continued one: not a candidate
        elif chunk[pos] <= 58:
            return -1
        else:
            ls = pos
        if 13 in chunk:
            cr = chunk.find(b"\r", pos)
            if cr >= 0:
                return self._walk_cr(chunk, pos, ls, cr)
        # LF line ends only.
        find = chunk.find
        flens = self._flens
        forms = self._forms
        n = len(chunk)
        ev = 0
        lb = pos
        t = find(b"\n", pos)
        while t >= 0:
            # the line [ls, t) is complete
            if flens and ls >= 0 and t - ls in flens and chunk[ls:t] in forms:
                break
            t += 1
            if t == n:
                ls = n
                break
            b = chunk[t]
            if b == 10:  # an empty line
                ev += 1
                t += 1
                lb = t
                if t == n:
                    ls = n
                    break
                b = chunk[t]
            if b <= 58:
                break
            ls = t
            t = find(b"\n", t)
        else:
            # the chunk ends inside the line starting at ls
            if not ev:
                return -1
            return self._commit(chunk, ev, lb, ls, False)
        if not ev:
            return -1
        if ls != n:  # stopped at an irregular line
            return ~self._commit(chunk, ev, lb, -1, False)
        if lb == n and not self._psize:  # whole events, clean state
            self._events += ev
            self._fast_ok = self._clean = True
            return n
        return self._commit(chunk, ev, lb, n, False)

    def _walk_cr(self, chunk: bytes, pos: int, ls: int, cr: int) -> int:
        """:meth:`_walk` for chunks with a CR at ``cr``: CRLF line ends, or LF up to the CR."""
        find = chunk.find
        flens = self._flens
        forms = self._forms
        n = len(chunk)
        ev = 0
        lb = pos
        if cr + 1 == n or chunk[cr + 1] != 10 or find(b"\n", pos) != cr + 1:
            # LF line ends up to the first CR, which is irregular.
            while True:
                t = find(b"\n", pos if ls < 0 else ls, cr)
                if t < 0 or (flens and ls >= 0 and t - ls in flens and chunk[ls:t] in forms):
                    break
                t += 1
                b = chunk[t]
                if b == 10:
                    ev += 1
                    t += 1
                    lb = t
                    b = chunk[t]
                if b <= 58:
                    break
                ls = t
            if not ev:
                return -1
            return ~self._commit(chunk, ev, lb, -1, False)
        # CRLF line ends: every CR is followed by LF, there is no other LF.
        while True:
            start = pos if ls < 0 else ls
            t = find(b"\r", start)
            if t < 0:
                if find(b"\n", start) >= 0:
                    break
                if not ev:
                    return -1
                return self._commit(chunk, ev, lb, ls, True)
            if (
                t + 1 == n
                or chunk[t + 1] != 10
                or find(b"\n", start) != t + 1
                or (flens and ls >= 0 and t - ls in flens and chunk[ls:t] in forms)
            ):
                break
            t += 2
            if t == n:
                if not ev:
                    return -1
                return self._commit(chunk, ev, lb, n, True)
            b = chunk[t]
            if b == 13:  # an empty line, if CRLF
                if t + 1 == n or chunk[t + 1] != 10:
                    break
                ev += 1
                t += 2
                lb = t
                if t == n:
                    return self._commit(chunk, ev, lb, n, True)
                b = chunk[t]
            if b <= 58:
                break
            ls = t
        if not ev:
            return -1
        return ~self._commit(chunk, ev, lb, -1, False)

    def _commit(self, chunk: bytes, ev: int, lb: int, ls: int, crlf: bool) -> int:
        """Record what :meth:`_walk` found: ``ev`` blocks closed, the last one at ``lb``.

        ``ls < 0``: the caller continues at ``lb``, leave an empty block there.
        Otherwise the chunk was consumed: ``[lb, ls)`` are complete lines of
        the next block and ``[ls, n)`` is its partial line.  Returns ``lb``.
        """
        self._events += ev
        if self._dirty:
            self._reset_block()
        self._lazy = None
        n = len(chunk)
        if ls < 0 or lb == n:
            if self._psize:
                self._psize = 0
                self._partial = b""
                self._field = False
                self._llen = 0
                self._line = b""
            self._fast_ok = self._clean = True
            return lb
        self._psize = n - lb
        self._clean = False
        self._partial = chunk[lb : lb + self._max_partial]
        self._field = True
        term = self._mode == _TERM
        if ls > lb and term:
            self._lazy = (chunk, lb, ls, crlf)
        llen = n - ls
        self._llen = llen
        if llen:
            self._first = chunk[ls]
            line = self._line = chunk[ls : ls + self._cap]
            m = self._m
            self._fast_ok = not (
                term and m is not None and llen <= self._cap and line in m.prefixes
            )
        else:
            self._line = b""
            self._fast_ok = True
        return lb

    def _general(self, chunk: bytes, pos: int, lb: int, skip: int) -> ScanResult:  # noqa: PLR0915
        """Line-by-line path for ``chunk[pos:]``; ``lb`` is the last cut point so far.

        ``skip`` is an offset where :meth:`_walk` was just tried in vain.
        One long function on purpose: calls cost more than statements here.
        """
        n = len(chunk)
        te = -1
        if pos == 0:
            if self._bom < 3:
                pos = self._skip_bom(chunk)
                if pos < 0:
                    return _NO_RESULT
                if pos:
                    skip = -1
            if self._cr:
                self._cr = False
                skip = -1
                if pos < n and chunk[pos] == _LF:
                    pos += 1
                    if self._crcut:
                        lb = pos
                self._crcut = False
        if self._lazy is not None:
            self._materialize()
        mode = self._mode
        try_walk = self._can_walk
        pst = 0 if self._psize else -1  # where the current block's bytes start in chunk
        find = chunk.find
        nlf = ncr = -1
        while pos < n:
            if try_walk and pos != skip and not self._llen and not self._bhot:
                if pst >= 0:  # _walk needs _psize to tell whether the block is empty
                    self._add_partial(chunk, pst, pos)
                    pst = pos
                r = self._walk(chunk, pos)
                if r >= 0:
                    return _new_result(ScanResult, (r, te))
                try_walk = False
                if r != -1:
                    pos = lb = ~r
                    pst = -1
                    continue
            # Find the end of the current line.
            if nlf < pos:
                nlf = find(b"\n", pos)
                if nlf < 0:
                    nlf = n
            if ncr < pos:
                ncr = find(b"\r", pos)
                if ncr < 0:
                    ncr = n
            if nlf < ncr:
                e = nlf
                end = e + 1
            elif ncr < n:
                e = ncr
                if e + 1 < n:
                    end = e + 2 if chunk[e + 1] == _LF else e + 1
                else:
                    end = n
                    self._cr = True
            else:  # the line continues in the next chunk
                if pst < 0:
                    pst = pos
                self._extend(chunk, pos, n)
                break
            llen = self._llen
            if e == pos and not llen:  # an empty line
                if pst >= 0:  # ... closing a non-empty block
                    if self._field:
                        self._events += 1
                        if mode != _NONE and self._dispatch():
                            te = e + 1
                            mode = _NONE
                    self._reset_block()
                    self._field = False
                    self._psize = 0
                    self._partial = b""
                    pst = -1
                    lb = end
                    if self._cr:
                        self._crcut = True
                    try_walk = self._can_walk
            else:
                if pst < 0:
                    pst = pos
                first = self._first if llen else chunk[pos]
                if first != _COLON:
                    self._field = True
                    if mode == _TERM:
                        self._term_line(chunk, pos, e, llen)
                    elif mode == _FULL:
                        self._full_line(chunk, pos, e, llen)
                if llen:
                    self._llen = 0
                    self._line = b""
            pos = end
        if pst >= 0:
            self._add_partial(chunk, pst, n)
        self._update_fast_ok()
        if te < 0 and lb < 0:
            return _NO_RESULT
        return _new_result(ScanResult, (lb, te))

    def _update_fast_ok(self) -> None:
        mode = self._mode
        llen = self._llen
        m = self._m
        self._fast_ok = ok = (
            self._can_walk
            and self._bom == 3
            and not self._cr
            and not self._bhot
            and not (
                llen
                and (
                    self._first == _COLON
                    or (
                        mode == _TERM
                        and m is not None
                        and llen <= self._cap
                        and self._line in m.prefixes
                    )
                )
            )
        )
        self._clean = ok and not self._psize

    def _skip_bom(self, chunk: bytes) -> int:
        """Settle the optional BOM; returns where lines start, -1 if all of chunk was BOM.

        Bytes of a possible BOM are kept as the start of the first line (as
        they would be, should the stream end before the BOM is complete), and
        dropped again once the BOM is complete.
        """
        held = self._bom
        need = _BOM[held:]
        m = min(len(need), len(chunk))
        if chunk[:m] != need[:m]:  # not a BOM: held bytes stay the first line's start
            self._bom = 3
            if held and self._mode == _FULL:
                self._lbuf += _BOM[:held]
            return 0
        if m < len(need):
            held += m
            self._bom = held
            self._first = _BOM[0]
            self._llen = held
            self._line = _BOM[:held][: self._cap]
            self._psize = held
            self._partial = _BOM[:held][: self._max_partial]
            return -1
        self._bom = 3
        if held:
            self._first = -1
            self._llen = 0
            self._line = b""
            self._psize = 0
            self._partial = b""
        return m

    def _extend(self, chunk: bytes, pos: int, end: int) -> None:
        """Append ``chunk[pos:end]`` to the unterminated current line."""
        llen = self._llen
        if not llen:
            self._first = chunk[pos]
        if self._mode == _FULL:
            if self._first != _COLON:
                self._lbuf += chunk[pos:end]
        else:
            room = self._cap - len(self._line)
            if room > 0:
                self._line += chunk[pos : min(end, pos + room)]
        self._llen = llen + end - pos

    def _add_partial(self, chunk: bytes, start: int, end: int) -> None:
        room = self._max_partial - len(self._partial)
        if room > 0:
            self._partial += chunk[start : min(end, start + room)]
        self._psize += end - start

    def _reset_block(self) -> None:
        self._bhot = False
        self._dirty = False
        self._ev = b""
        self._evexact = True
        self._data = b""
        self._dexact = True
        if self._mode == _FULL:
            self._dlist = []
            self._id = None
            self._retry = None

    def _materialize(self) -> None:
        """Parse the complete lines :meth:`_walk` left unparsed (mode _TERM)."""
        lazy = self._lazy
        assert lazy is not None
        self._lazy = None
        chunk, start, end, crlf = lazy
        cap = self._cap
        for line in chunk[start:end].split(b"\r\n" if crlf else b"\n")[:-1]:
            self._term_field(line[:cap], len(line) > cap)

    def _term_line(self, chunk: bytes, pos: int, e: int, llen: int) -> None:
        """A complete field line, ``self._line`` + ``chunk[pos:e]`` (mode _TERM)."""
        cap = self._cap
        if llen:
            line = self._line
            room = cap - len(line)
            if room > 0:
                line += chunk[pos : min(e, pos + room)]
            self._term_field(line, llen + e - pos > cap)
        else:
            self._term_field(chunk[pos : min(e, pos + cap)], e - pos > cap)

    def _term_field(self, line: bytes, truncated: bool) -> None:
        m = self._m
        assert m is not None
        colon = line.find(b":")
        if colon < 0:
            if truncated:
                return  # a name longer than any field we care about
            name, value = line, b""
        else:
            name, value = _split_field(line)
        if name == b"data":
            self._dirty = True
            data = self._data
            dcap = self._dcap
            if len(data) < dcap:
                data += value + b"\n"
                if len(data) > dcap:
                    data = data[:dcap]
                    self._dexact = False
                self._data = data
            else:
                self._dexact = False
            if truncated:
                self._dexact = False
            elif value in m.pieces:
                self._bhot = True
        elif name == b"event":
            self._dirty = True
            self._ev = value
            self._evexact = not truncated
            if not truncated and value in m.events:
                self._bhot = True

    def _full_line(self, chunk: bytes, pos: int, e: int, llen: int) -> None:
        """A complete field line, ``self._lbuf`` + ``chunk[pos:e]`` (mode _FULL)."""
        if llen:
            self._lbuf += chunk[pos:e]
            line = bytes(self._lbuf)
            self._lbuf = bytearray()
        else:
            line = chunk[pos:e]
        name, value = _split_field(line)
        if name == b"data":
            self._dlist.append(value)
            self._dirty = True
        elif name == b"event":
            self._ev = value
            self._dirty = True
        elif name == b"id":
            if b"\0" not in value:
                self._id = value
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> bool:
        """Evaluate the terminal predicate for the block just completed."""
        if self._mode == _TERM:
            m = self._m
            assert m is not None
            data = self._data
            dexact = self._dexact
            if dexact or data.endswith(b"\n"):
                data = data[:-1]
            hit = (self._evexact and self._ev in m.events) or (dexact and data in m.data)
            if not hit:
                return False
            event = SSEEvent(event=_text(self._ev) or "message", data=_text(data))
        else:
            predicate = self._predicate
            assert predicate is not None
            event = SSEEvent(
                event=_text(self._ev) or "message",
                data=_text(b"\n".join(self._dlist)),
                id=None if self._id is None else _text(self._id),
                retry=self._retry,
            )
            if not predicate(event):
                return False
        self._terminal_event = event
        self._events_at_terminal = self._events
        self._after = True
        self._mode = _NONE
        self._can_walk = True
        self._forms = frozenset()
        self._flens = frozenset()
        self._prefixes = frozenset()
        self._lazy = None
        self._lbuf = bytearray()
        self._dlist = []
        return True
