"""Tests for the incremental SSE boundary scanner (httpx_drain._sse)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from httpx_drain import _sse
from httpx_drain._sse import (
    DEFAULT_TERMINAL,
    ScanResult,
    SSEEvent,
    SSEScanner,
    TerminalEvents,
    TerminalPredicate,
)

BOM = b"\xef\xbb\xbf"

# -- reference parser: the WHATWG rules, applied literally to a whole stream --


@dataclass
class RefEvent:
    event: SSEEvent
    dispatch: int  # absolute offset just past the first char of the empty line's line end


@dataclass
class Ref:
    events: list[RefEvent] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # every cut point, ascending
    partial: bytes = b""  # raw bytes of the unfinished block (from its first non-empty line)
    in_partial: bool = False  # the unfinished block has a field line


def reference(stream: bytes) -> Ref:
    ref = Ref()
    i = 3 if stream.startswith(BOM) else 0
    n = len(stream)
    block_start = -1  # offset of the block's first non-empty line
    has_field = False
    ev = b""
    data: list[bytes] = []
    ident: bytes | None = None
    retry: int | None = None
    line_start = i
    while i < n:
        c = stream[i]
        if c not in (10, 13):
            if block_start < 0:
                block_start = line_start
            i += 1
            continue
        line = stream[line_start:i]
        end = i + 2 if stream[i : i + 2] == b"\r\n" else i + 1
        if not line:
            if block_start >= 0:
                ref.cuts.append(i + 1)
                if end != i + 1:
                    ref.cuts.append(end)
                if has_field:
                    event = SSEEvent(
                        event=ev.decode("utf-8", "replace") or "message",
                        data=b"\n".join(data).decode("utf-8", "replace"),
                        id=None if ident is None else ident.decode("utf-8", "replace"),
                        retry=retry,
                    )
                    ref.events.append(RefEvent(event, i + 1))
            block_start = -1
            has_field = False
            ev, data, ident, retry = b"", [], None, None
        elif line[:1] != b":":
            has_field = True
            name, colon, value = line.partition(b":")
            if colon and value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                ev = value
            elif name == b"id":
                if b"\0" not in value:
                    ident = value
            elif name == b"retry" and value and all(48 <= b <= 57 for b in value):
                retry = int(value)
        i = line_start = end
    if block_start >= 0:
        ref.partial = stream[block_start:]
        pending = stream[line_start:]
        ref.in_partial = has_field or (bool(pending) and pending[:1] != b":")
    return ref


def first_terminal(ref: Ref, predicate: TerminalPredicate | None) -> int:
    if predicate is None:
        return -1
    for index, ev in enumerate(ref.events):
        if predicate(ev.event):
            return index
    return -1


# -- running the scanner over a split stream ----------------------------------


@contextlib.contextmanager
def bulk_threshold(size: int | None) -> Iterator[None]:
    """Make the scanner try its list-based path on chunks from ``size`` bytes on."""
    saved = _sse._BULK
    if size is not None:
        _sse._BULK = size  # type: ignore[misc]
    try:
        yield
    finally:
        _sse._BULK = saved  # type: ignore[misc]


@dataclass
class Run:
    scanner: SSEScanner
    results: list[ScanResult]
    boundaries: list[int]  # absolute
    terminal: list[int]  # absolute terminal_end offsets reported


def run(
    stream: bytes,
    cuts: list[int],
    predicate: TerminalPredicate | None = DEFAULT_TERMINAL,
    max_partial: int = 1024,
    bulk: int | None = None,
) -> Run:
    scanner = SSEScanner(predicate, max_partial=max_partial)
    results = []
    boundaries = []
    terminal = []
    edges = [0, *sorted(set(cuts)), len(stream)]
    for a, b in itertools.pairwise(edges):
        chunk = stream[a:b]
        with bulk_threshold(bulk):
            r = scanner.feed(chunk)
        assert isinstance(r, ScanResult)
        assert r.last_boundary == -1 or 0 < r.last_boundary <= len(chunk)
        assert r.terminal_end == -1 or 0 < r.terminal_end <= len(chunk)
        results.append(r)
        if r.last_boundary >= 0:
            boundaries.append(a + r.last_boundary)
        if r.terminal_end >= 0:
            terminal.append(a + r.terminal_end)
    return Run(scanner, results, boundaries, terminal)


def expected_boundaries(ref: Ref, stream: bytes, cuts: list[int]) -> list[int]:
    """The largest cut point in each chunk (a, b]."""
    edges = [0, *sorted(set(cuts)), len(stream)]
    out = []
    for a, b in itertools.pairwise(edges):
        inside = [c for c in ref.cuts if a < c <= b]
        if inside:
            out.append(inside[-1])
    return out


def check(
    stream: bytes,
    cuts: list[int],
    predicate: TerminalPredicate | None = DEFAULT_TERMINAL,
    max_partial: int = 1024,
    bulk: int | None = None,
) -> Run:
    ref = reference(stream)
    r = run(stream, cuts, predicate, max_partial, bulk)
    s = r.scanner
    assert s.events == len(ref.events)
    assert r.boundaries == expected_boundaries(ref, stream, cuts)
    t = first_terminal(ref, predicate)
    if t < 0:
        assert r.terminal == []
        assert not s.terminal_seen
        assert s.terminal_event is None
        assert s.events_after_terminal == 0
    else:
        assert r.terminal == [ref.events[t].dispatch]
        assert s.terminal_seen
        assert s.events_after_terminal == len(ref.events) - t - 1
        got, want = s.terminal_event, ref.events[t].event
        assert got is not None
        if type(predicate) is TerminalEvents:
            assert got.event == want.event
            if len(want.data.encode()) < 50:
                assert got.data == want.data
        else:
            assert got == want
    assert s.partial_size == len(ref.partial)
    assert s.partial == ref.partial[:max_partial]
    assert s.in_partial == ref.in_partial
    return r


def segments_events(stream: bytes, boundaries: list[int]) -> list[SSEEvent]:
    """Parse the stream cut at the given offsets, each piece on its own."""
    out: list[SSEEvent] = []
    edges = [0, *boundaries, len(stream)]
    for a, b in itertools.pairwise(edges):
        out.extend(e.event for e in reference(stream[a:b]).events)
    return out


# -- stream generation ----------------------------------------------------------

SPECIAL = ["[DONE]", "done", "message_stop", "response.completed", "message", "", " ", "x"]
value_text = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(st.sampled_from("ab :\x00\ufeff[]é"), max_size=5),
    st.text(st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=4),
)
NAMES = ["data", "data", "event", "id", "retry", "foo", "dat", "datax"]
SEPS = [": ", ":", "", ":  "]


@st.composite
def field_lines(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(NAMES))
    if name == "retry" and draw(st.booleans()):
        value = str(draw(st.integers(0, 10**6)))
    else:
        value = draw(value_text)
    sep = draw(st.sampled_from(SEPS))
    return (name + sep + value).encode() if sep else name.encode()


comment_lines = st.builds(lambda t: (":" + t).encode(), value_text)
line_contents = st.one_of(field_lines(), field_lines(), comment_lines)
STYLES = {"lf": [b"\n"], "crlf": [b"\r\n"], "cr": [b"\r"], "mixed": [b"\n", b"\r", b"\r\n"]}


@st.composite
def streams(draw: st.DrawFn, max_blocks: int = 6) -> bytes:
    """Blocks of field and comment lines; the line-end style is per stream or per line."""
    ends = STYLES[draw(st.sampled_from(["mixed", "lf", "crlf", "cr", "lf", "crlf"]))]
    nl = st.sampled_from(ends)
    blocks = draw(
        st.lists(
            st.tuples(
                st.lists(st.tuples(line_contents, nl), min_size=1, max_size=3),
                st.one_of(nl.map(lambda end: [end]), st.lists(nl, min_size=1, max_size=3)),
            ),
            max_size=max_blocks,
        )
    )
    out = [BOM] if draw(st.booleans()) else []
    out += draw(st.lists(nl, max_size=2)) if draw(st.integers(0, 4)) == 0 else []
    for lines, empties in blocks:
        out += [line + end for line, end in lines]
        out += empties
    out += [line + end for line, end in draw(st.lists(st.tuples(line_contents, nl), max_size=2))]
    if draw(st.booleans()):
        out.append(draw(line_contents))
    return b"".join(out)


@st.composite
def split_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    stream = draw(streams())
    if len(stream) < 2:
        return stream, []
    cuts = draw(st.lists(st.integers(1, len(stream) - 1), max_size=12))
    return stream, cuts


regular_values = st.one_of(
    st.sampled_from(['{"a":1}', "[DONE]", "done", "message_stop", "x", "[DONE"]),
    st.text(st.sampled_from('{"}:ab1 '), min_size=1, max_size=8),
)
regular_lines = st.one_of(
    st.builds(lambda v: b"data: " + v.encode(), regular_values),
    st.builds(lambda v: b"data:" + v.encode(), regular_values),
    st.builds(lambda v: b"event: " + v.encode(), regular_values),
)


@st.composite
def regular_streams(draw: st.DrawFn) -> bytes:
    """Mostly what the fast paths handle: uniform LF or CRLF, data and event lines."""
    nl = draw(st.sampled_from([b"\n", b"\r\n"]))
    blocks = draw(st.lists(st.lists(regular_lines, min_size=1, max_size=3), max_size=10))
    out = [b"".join(line + nl for line in block) + nl for block in blocks]
    out += [line + nl for line in draw(st.lists(regular_lines, max_size=2))]
    if draw(st.booleans()):
        out.append(draw(regular_lines))
    return b"".join(out)


def custom(event: SSEEvent) -> bool:
    return event.data == "[DONE]" or event.event in ("done", "message")


PREDICATES: list[TerminalPredicate | None] = [
    DEFAULT_TERMINAL,
    None,
    custom,
    TerminalEvents(events=["x", "message"], data=["a\nb", "x"]),
    TerminalEvents(events=(), data=()),
    TerminalEvents(events=["done"], data=[""]),
]


# -- property tests ---------------------------------------------------------------


@given(split_streams(), st.sampled_from(PREDICATES), st.sampled_from([None, 1]))
@example((b"data: [DONE]\r\n\r\n", [15]), DEFAULT_TERMINAL, None)
@example((b"data: x\r\r\n", [9]), None, None)
@example((BOM + b"data: x\n\n", [1, 2]), DEFAULT_TERMINAL, None)
@example(  # a walk starting mid-chunk after a line-by-line field line
    (b"data: [DONE]\n\n:c\ndata: [DONE]\n\ndata: 1\ndata: 2\r\n\r\n:c\n\n", [20]),
    DEFAULT_TERMINAL,
    None,
)
@settings(deadline=None)
def test_any_split_matches_reference(
    split: tuple[bytes, list[int]], predicate: TerminalPredicate | None, bulk: int | None
) -> None:
    """``bulk=1``: every chunk tries the list-based fast path first."""
    stream, cuts = split
    check(stream, cuts, predicate, bulk=bulk)


@given(streams(), st.sampled_from(PREDICATES))
@settings(deadline=None)
def test_whole_and_bytewise_agree(stream: bytes, predicate: TerminalPredicate | None) -> None:
    check(stream, [], predicate)
    check(stream, list(range(1, len(stream))), predicate, max_partial=5)


@given(split_streams())
@settings(deadline=None)
def test_cutting_at_reported_boundaries_keeps_events_whole(
    split: tuple[bytes, list[int]],
) -> None:
    stream, cuts = split
    r = run(stream, cuts, None)
    assert segments_events(stream, r.boundaries) == [e.event for e in reference(stream).events]
    # and the bytes after the last boundary hold no complete event
    tail = stream[r.boundaries[-1] :] if r.boundaries else stream
    assert reference(tail).events == []


def aligned(scanner: SSEScanner, body: list[bytes]) -> Iterator[bytes]:
    """The wrapper of the SSEScanner docstring: whole events, end after the terminal."""
    pending = b""
    for chunk in body:
        result = scanner.feed(chunk)
        if result.terminal_end >= 0:
            yield pending + chunk[: result.terminal_end]
            return
        if result.last_boundary >= 0:
            yield pending + chunk[: result.last_boundary]
            pending = chunk[result.last_boundary :]
        else:
            pending += chunk


@given(split_streams())
@settings(deadline=None)
def test_aligned_wrapper(split: tuple[bytes, list[int]]) -> None:
    stream, cuts = split
    ref = reference(stream)
    scanner = SSEScanner()
    out = list(aligned(scanner, split_chunks(stream, cuts)))
    t = first_terminal(ref, DEFAULT_TERMINAL)
    want = [e.event for e in ref.events]
    if t >= 0:
        assert b"".join(out) == stream[: ref.events[t].dispatch]
        want = want[: t + 1]
    got = [e.event for piece in out for e in reference(piece).events]
    assert got == want  # every piece holds whole events only
    assert all(not reference(piece).partial for piece in out)


@given(streams(max_blocks=3), st.data())
@settings(max_examples=50, deadline=None)
def test_custom_predicate_sees_every_event_until_terminal(
    stream: bytes, data: st.DataObject
) -> None:
    seen: list[SSEEvent] = []
    stop_at = data.draw(st.integers(0, 4))

    def predicate(event: SSEEvent) -> bool:
        seen.append(event)
        return len(seen) > stop_at

    cuts = data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=6))
    r = run(stream, [c for c in cuts if c < len(stream)], predicate)
    want = [e.event for e in reference(stream).events]
    assert seen == want[: stop_at + 1]
    assert r.scanner.events == len(want)


# -- regular streams at realistic chunk sizes (the fast path) ----------------------


def chat_stream(n: int, nl: bytes = b"\n", terminal: bool = True) -> bytes:
    events = [
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{"content":"tok%d"}}]}' % i + nl + nl
        for i in range(n)
    ]
    if terminal:
        events.append(b"data: [DONE]" + nl + nl)
    return b"".join(events)


def anthropic_stream(n: int, nl: bytes = b"\n") -> bytes:
    out = [b"event: message_start" + nl + b'data: {"type":"message_start"}' + nl + nl]
    for i in range(n):
        out.append(
            b"event: content_block_delta"
            + nl
            + b'data: {"type":"content_block_delta","delta":{"text":"t%d"}}' % i
            + nl
            + nl
        )
        if i % 7 == 0:
            out.append(b"event: ping" + nl + b'data: {"type": "ping"}' + nl + nl)
    out.append(b"event: message_stop" + nl + b'data: {"type":"message_stop"}' + nl + nl)
    return b"".join(out)


@pytest.mark.parametrize("nl", [b"\n", b"\r\n"])
@pytest.mark.parametrize("size", [1, 7, 64, 150, 4096, 65536])
@pytest.mark.parametrize("kind", ["chat", "anthropic"])
def test_regular_streams_fixed_chunk_sizes(nl: bytes, size: int, kind: str) -> None:
    n = 300 if size >= 64 else 60
    stream = chat_stream(n, nl) if kind == "chat" else anthropic_stream(n, nl)
    stream += b": keep-alive" + nl + nl + b"data: after" + nl + nl + b"data: trunc"
    cuts = list(range(size, len(stream), size))
    r = check(stream, cuts)
    assert r.scanner.events_after_terminal == 1
    assert r.scanner.in_partial


@pytest.mark.parametrize("nl", [b"\n", b"\r\n"])
@pytest.mark.parametrize("kind", ["chat", "anthropic"])
def test_regular_streams_one_event_per_chunk(nl: bytes, kind: str) -> None:
    stream = chat_stream(50, nl) if kind == "chat" else anthropic_stream(50, nl)
    stream += b"data: after" + nl + nl
    ref = reference(stream)
    r = check(stream, ref.cuts)
    chunks = split_chunks(stream, ref.cuts)
    assert all(res.last_boundary == len(c) for res, c in zip(r.results, chunks, strict=True) if c)
    assert r.scanner.events_after_terminal == 1


def split_chunks(stream: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(set(cuts)), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


@given(streams(), st.data())
@settings(deadline=None)
def test_whole_block_chunks(stream: bytes, data: st.DataObject) -> None:
    """Chunks made of whole blocks (cut at cut points), plus a few random cuts."""
    ref = reference(stream)
    cuts = data.draw(st.lists(st.sampled_from(ref.cuts))) if ref.cuts else []
    if len(stream) > 1 and data.draw(st.booleans()):
        cuts += data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=3))
    check(stream, cuts, data.draw(st.sampled_from(PREDICATES)))


@given(regular_streams(), st.data())
@settings(deadline=None)
def test_regular_streams_any_split(stream: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=10))
    if data.draw(st.booleans()):
        cuts += reference(stream).cuts
    cuts = [c for c in cuts if c < len(stream)]
    bulk = data.draw(st.sampled_from([None, 1]))
    check(b"\n" + stream, [1] + [c + 1 for c in cuts], bulk=bulk)


@given(st.data())
@settings(max_examples=30, deadline=None)
def test_regular_streams_random_chunks(data: st.DataObject) -> None:
    nl = data.draw(st.sampled_from([b"\n", b"\r\n"]))
    stream = chat_stream(40, nl) if data.draw(st.booleans()) else anthropic_stream(30, nl)
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=40))
    bulk = data.draw(st.sampled_from([None, 1]))
    check(stream, cuts, bulk=bulk)
    check(stream, cuts, None, bulk=bulk)


# -- unit tests for the tricky cases ------------------------------------------------


def recorder(seen: list[SSEEvent]) -> TerminalPredicate:
    """A predicate that records every event and never ends the stream."""

    def predicate(event: SSEEvent) -> bool:
        seen.append(event)
        return False

    return predicate


def feed_all(scanner: SSEScanner, *chunks: bytes) -> list[ScanResult]:
    return [scanner.feed(c) for c in chunks]


def test_cr_at_chunk_end_and_lf_at_next_start_is_one_line_end() -> None:
    s = SSEScanner()
    assert feed_all(s, b"data: a\r", b"\ndata: b\r\n\r", b"\n") == [
        (-1, -1),
        (11, -1),  # the empty line's CR dispatches; its LF is still to come
        (1, -1),  # ... and is a cut point of its own
    ]
    assert s.events == 1
    assert not s.in_partial
    # the LF after "data: a\r" did not make an empty line: one event with two data lines
    seen: list[SSEEvent] = []
    s = SSEScanner(recorder(seen))
    feed_all(s, b"data: a\r", b"\ndata: b\r\n\r", b"\n")
    assert seen == [SSEEvent(data="a\nb")]


def test_lone_cr_line_ends() -> None:
    s = SSEScanner()
    assert s.feed(b"data: a\r\rdata: [DONE]\r\r") == (23, 23)
    assert s.events == 2
    assert s.terminal_event == SSEEvent(data="[DONE]")


def test_terminal_crlf_split_between_cr_and_lf() -> None:
    s = SSEScanner()
    assert s.feed(b"data: [DONE]\r\n\r") == (15, 15)
    assert s.terminal_seen
    assert s.feed(b"\n") == (1, -1)


def test_bom_split_across_chunks() -> None:
    s = SSEScanner()
    assert feed_all(s, b"\xef", b"\xbb", b"\xbfdata: [DONE]\n\n") == [(-1, -1), (-1, -1), (15, 15)]
    assert s.terminal_event == SSEEvent(data="[DONE]")


def test_incomplete_bom_with_predicate() -> None:
    seen: list[SSEEvent] = []
    s = SSEScanner(recorder(seen))
    feed_all(s, b"\xef", b"\xbb", b"data: x\n\n")
    assert seen == [SSEEvent()]  # a field named "\ufffddata", hence no data


def test_incomplete_bom_is_content() -> None:
    s = SSEScanner(max_partial=10)
    s.feed(b"\xef\xbb")
    assert s.partial == b"\xef\xbb"
    assert s.in_partial
    assert s.feed(b"data: x\n\n") == (9, -1)
    assert s.events == 1  # a field named "\ufffddata"
    s = SSEScanner()
    s.feed(b"\xef\xbb\xbf")
    assert s.partial_size == 0
    assert not s.in_partial


def test_bom_only_at_stream_start() -> None:
    seen: list[SSEEvent] = []
    s = SSEScanner(recorder(seen))
    s.feed(BOM + b"data: a\n\n" + BOM + b"data: b\n\n")
    assert [e.data for e in seen] == ["a", ""]  # the second block's field is "\ufeffdata"


def test_comment_only_blocks_are_boundaries_not_events() -> None:
    s = SSEScanner()
    assert s.feed(b": ping\n\n") == (8, -1)
    assert s.events == 0
    assert s.feed(b": a\n: b\n\ndata: x\n\n: c") == (18, -1)
    assert s.events == 1
    assert s.partial == b": c"
    assert not s.in_partial  # a pending comment loses no event
    assert s.partial_size == 3


def test_comment_only_chunk_in_fast_state() -> None:
    s = SSEScanner()
    s.feed(b"data: 1\n\n")
    assert s.feed(b": ping\n\n") == (8, -1)
    assert s.feed(b":\r\n\r\n") == (5, -1)
    assert s.events == 1


def test_partial_comment_line_after_fast_chunk() -> None:
    for bulk in (None, 1):
        with bulk_threshold(bulk):
            s = SSEScanner()
            s.feed(b"\n")
            assert s.feed(b"data: 1\n\n: partial comm") == (9, -1)
            assert not s.in_partial
            assert s.feed(b"ent\n\ndata: 2\n\n") == (14, -1)
            assert s.events == 2


def test_block_split_between_fast_and_slow_chunks() -> None:
    for bulk in (None, 1):
        with bulk_threshold(bulk):
            s = SSEScanner()
            s.feed(b"\n")
            assert s.feed(b"data: 1\n\ndata: x\n") == (9, -1)
            assert s.feed(b"data: [DONE]\n\n") == (14, -1)  # data is "x\n[DONE]"
            assert s.feed(b"data: 2\n\nevent: foo\n") == (9, -1)
            assert s.feed(b"data: [DONE]\n\n") == (14, 14)
            assert s.terminal_event == SSEEvent(event="foo", data="[DONE]")


def test_event_split_across_two_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read boundary inside an event: the first part opens the block without the
    line-by-line path, unless it is a comment or could be the start of a terminal line."""
    general = SSEScanner._general
    calls: list[bytes] = []

    def spy(self: SSEScanner, chunk: bytes, *args: int) -> ScanResult:
        calls.append(chunk)
        return general(self, chunk, *args)

    monkeypatch.setattr(SSEScanner, "_general", spy)
    s = SSEScanner(max_partial=8)
    s.feed(b"data: 1\n\n")
    calls.clear()
    assert s.feed(b'data: {"x": 1') == (-1, -1)
    assert calls == []
    assert (s.in_partial, s.partial, s.partial_size) == (True, b'data: {"', 13)
    assert s.feed(b"}\n\n") == (3, -1)
    assert (s.events, s.in_partial, s.partial_size) == (2, False, 0)
    assert s.feed(b": keep") == (-1, -1)  # a comment: the general path, not an event
    assert s.feed(b"alive\n\n") == (7, -1)
    assert (s.events, s.in_partial) == (2, False)
    assert s.feed(b"data: [DO") == (-1, -1)  # maybe the terminal line: the general path
    assert s.feed(b"NE]\n\n") == (5, 5)
    assert calls == [b": keep", b"alive\n\n", b"data: [DO", b"NE]\n\n"]
    assert s.terminal_seen
    assert s.feed(b"data: [DO") == (-1, -1)  # after the terminal event nothing is a candidate
    assert calls[-1] == b"NE]\n\n"


@pytest.mark.parametrize("nl", [b"\n", b"\r\n"])
@pytest.mark.parametrize("size", [0, 700, 4096])
@pytest.mark.parametrize("kind", ["chat", "anthropic"])
def test_regular_streams_stay_on_the_fast_paths(
    nl: bytes, size: int, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line-by-line path is for the first chunk (BOM), the terminal event and
    chunks that end inside a line that could be a terminal one (``data: [DO``)."""
    calls = []
    general = SSEScanner._general

    def spy(self: SSEScanner, chunk: bytes, *args: int) -> ScanResult:
        calls.append(chunk)
        return general(self, chunk, *args)

    monkeypatch.setattr(SSEScanner, "_general", spy)
    stream = chat_stream(200, nl) if kind == "chat" else anthropic_stream(200, nl)
    if size:
        cuts = list(range(size, len(stream), size))
    else:  # one event per chunk (a CRLF empty line whole)
        cuts = [c for c in reference(stream).cuts if stream[c - 1] == 10]
    r = check(stream, cuts)
    assert len(calls) <= 3 + len(cuts) // 3
    assert r.scanner.terminal_seen


def test_runs_of_empty_lines() -> None:
    s = SSEScanner(None)
    assert s.feed(b"\n\n\ndata: x\n\n\n\n") == (12, -1)
    assert s.events == 1
    assert s.partial_size == 0


@pytest.mark.parametrize(
    ("line", "data"),
    [
        (b"data", ""),
        (b"data:", ""),
        (b"data: ", ""),
        (b"data:x", "x"),
        (b"data: x", "x"),
        (b"data:  x", " x"),
        (b"data: a: b", "a: b"),
    ],
)
def test_data_field_forms(line: bytes, data: str) -> None:
    seen: list[SSEEvent] = []
    s = SSEScanner(recorder(seen))
    s.feed(line + b"\n\n")
    assert seen == [SSEEvent(data=data)]


def test_event_without_data_is_counted() -> None:
    s = SSEScanner(None)
    s.feed(b"event: ping\n\nid: 3\n\nretry: 5\n\nfoo\n\n")
    assert s.events == 4


def test_id_and_retry() -> None:
    seen: list[SSEEvent] = []
    s = SSEScanner(recorder(seen))
    s.feed(b"id: 1\nretry: 30\ndata: a\n\nid: x\0y\nretry: 3s\ndata: b\n\nid\ndata: c\n\n")
    assert seen == [
        SSEEvent(data="a", id="1", retry=30),
        SSEEvent(data="b"),
        SSEEvent(data="c", id=""),
    ]


def test_openai_assistants_done() -> None:
    s = SSEScanner()
    stream = b"event: thread.run.completed\ndata: {}\n\nevent: done\ndata: [DONE]\n\n"
    assert s.feed(stream) == (len(stream), len(stream))
    assert s.terminal_event == SSEEvent(event="done", data="[DONE]")
    assert s.events == 2


def test_openai_chat_done_in_a_chunk_with_more_events() -> None:
    s = SSEScanner()
    head = chat_stream(3, terminal=False)
    chunk = head + b"data: [DONE]\n\n" + b"data: late\n\ndata: tr"
    r = s.feed(chunk)
    assert r == (len(chunk) - 8, len(head) + 14)
    assert s.events == 5
    assert s.events_after_terminal == 1
    assert s.partial == b"data: tr"
    # the predicate is not consulted any more, terminal_end is reported once
    assert s.feed(b"uncated\n\ndata: [DONE]\n\n") == (23, -1)
    assert s.events_after_terminal == 3


def test_anthropic_message_stop() -> None:
    stream = anthropic_stream(5)
    s = SSEScanner()
    cut = stream.index(b"event: message_stop") + 9
    r1 = s.feed(stream[:cut])
    assert r1.terminal_end == -1
    r2 = s.feed(stream[cut:])
    assert r2 == (len(stream) - cut, len(stream) - cut)
    assert s.terminal_event is not None
    assert s.terminal_event.event == "message_stop"
    assert s.terminal_event.data == '{"type":"message_stop"}'


@pytest.mark.parametrize("name", ["response.completed", "response.failed", "response.incomplete"])
def test_openai_responses_terminal(name: str) -> None:
    s = SSEScanner()
    stream = (
        b"event: response.output_text.delta\r\ndata: {}\r\n\r\n"
        b"event: " + name.encode() + b"\r\ndata: {}\r\n\r\n"
    )
    r = s.feed(stream)
    assert r == (len(stream), len(stream) - 1)
    assert s.terminal_event == SSEEvent(event=name, data="{}")


def test_terminal_needs_exact_values() -> None:
    s = SSEScanner()
    s.feed(
        b"data: [DONE] \n\ndata:  [DONE]\n\ndata: [DONE]\ndata: x\n\n"
        b"event: done2\ndata: x\n\nevent: done\nevent: other\n\nDATA: [DONE]\n\n"
    )
    assert s.events == 6
    assert not s.terminal_seen


def test_terminal_event_without_data_and_no_space() -> None:
    s = SSEScanner()
    assert s.feed(b"event:done\n\n") == (12, 12)
    assert s.terminal_event == SSEEvent(event="done")


def test_long_terminal_data_is_truncated_for_logging() -> None:
    s = SSEScanner()
    s.feed(b"event: message_stop\ndata: " + b"x" * 10_000 + b"\n\n")
    e = s.terminal_event
    assert e is not None
    assert e.event == "message_stop"
    assert 0 < len(e.data) <= 64
    assert e.data == "x" * len(e.data)
    assert e.id is None


def test_long_lines_with_terminal_events() -> None:
    long = b"z" * 200
    s = SSEScanner()
    s.feed(b"data: [DONE]\n" + long + b"\ndata: x\n\n")  # a field with a long name
    s.feed(b"data: " + b"a" * 40 + b"\ndata: " + b"b" * 40 + b"\n\n")  # data over the cap
    s.feed(b"data: [DONE]\ndata: " + long + b"\ndata: c\n\n")  # [DONE] plus more data
    s.feed(b"event: " + long + b"\ndata: [DONE]\n\n")  # a long event name, data matches
    assert s.events == 4
    assert s.terminal_event is not None
    assert s.terminal_event.data == "[DONE]"
    assert s.terminal_event.event == "z" * 57


def test_bulk_path_with_irregular_chunks() -> None:
    with bulk_threshold(1):
        s = SSEScanner()
        s.feed(b"\n")  # settle the BOM question
        assert s.feed(b"data: 1\r\n\r\ndata: 2\n\n") == (20, -1)  # mixed line ends
        assert s.feed(b"data: 3\n\n: c\n\ndata: 4\n\n") == (23, -1)  # a comment
        assert s.feed(b"data: 5\n\n\ndata: 6\n\n") == (19, -1)  # an extra empty line
        assert s.feed(b"data: 7\n\nevent: done\n\n") == (22, 22)  # a terminal event
        assert s.events == 8


def test_custom_predicate() -> None:
    seen: list[SSEEvent] = []

    def predicate(event: SSEEvent) -> bool:
        seen.append(event)
        return event.event == "end"

    s = SSEScanner(predicate)
    stream = b"data: 1\n\n: c\n\nevent: end\nid: 7\ndata: a\ndata: b\n\ndata: 2\n\n"
    r = s.feed(stream)
    assert r == (len(stream), len(stream) - 9)
    assert seen == [SSEEvent(data="1"), SSEEvent(event="end", data="a\nb", id="7")]
    assert s.terminal_event == seen[-1]
    assert s.events == 3
    assert s.events_after_terminal == 1


def test_terminal_events_subclass_is_a_custom_predicate() -> None:
    class Never(TerminalEvents):
        def __call__(self, event: SSEEvent) -> bool:
            return False

    s = SSEScanner(Never())
    assert s.feed(b"data: [DONE]\n\n") == (14, -1)


def test_is_terminal_none() -> None:
    s = SSEScanner(None)
    assert s.feed(b"data: [DONE]\n\nevent: message_stop\ndata: x\n\n") == (43, -1)
    assert s.events == 2
    assert not s.terminal_seen
    assert s.terminal_event is None
    assert s.is_terminal is None
    assert s.max_partial == 1024


def test_terminal_events_matcher() -> None:
    m = TerminalEvents(events=["bye"], data=["end"])
    assert m == TerminalEvents(events=("bye",), data={"end"})
    assert hash(m) == hash(TerminalEvents(events=["bye"], data=["end"]))
    assert m(SSEEvent(event="bye"))
    assert m(SSEEvent(data="end"))
    assert not m(SSEEvent(data="[DONE]"))
    assert DEFAULT_TERMINAL(SSEEvent(data="[DONE]"))
    assert DEFAULT_TERMINAL(SSEEvent(event="message_stop", data="{}"))
    with pytest.raises(TypeError):
        TerminalEvents(events="done")
    s = SSEScanner(m)
    assert s.feed(b"data: [DONE]\n\nevent: bye\n\n") == (26, 26)


def test_message_event_name_matches_blocks_without_event() -> None:
    s = SSEScanner(TerminalEvents(events=["message"], data=()))
    assert s.feed(b"event: x\ndata: 1\n\ndata: 2\n\n") == (27, 27)


@pytest.mark.parametrize("predicate", [DEFAULT_TERMINAL, None])
def test_bounded_partial_for_huge_event(predicate: TerminalPredicate | None) -> None:
    s = SSEScanner(predicate, max_partial=100)
    s.feed(b"data: [DONE]\n\n" if predicate is None else b"data: 1\n\n")
    s.feed(b"event: big\ndata: ")
    piece = b"y" * 65536
    for _ in range(160):  # 10 MiB
        assert s.feed(piece) == (-1, -1)
    s.feed(b"\ndata: " + piece)
    assert s.partial_size == 17 + 160 * 65536 + 7 + 65536
    assert s.partial == b"event: big\ndata: " + b"y" * 83
    assert s.in_partial
    # the scanner's own buffers stay small
    assert len(s._line) <= 100
    assert s.feed(b"\n\n") == (2, -1)
    assert s.partial_size == 0
    assert s.events == 2


def test_max_partial_zero_and_validation() -> None:
    s = SSEScanner(max_partial=0)
    s.feed(b"data: x")
    assert s.partial == b""
    assert s.partial_size == 7
    with pytest.raises(ValueError, match="max_partial"):
        SSEScanner(max_partial=-1)


def test_empty_chunks_change_nothing() -> None:
    s = SSEScanner()
    assert feed_all(s, b"", b"data: [DONE]\r", b"", b"\n\r", b"", b"\n") == [
        (-1, -1),
        (-1, -1),
        (-1, -1),
        (2, 2),
        (-1, -1),
        (1, -1),
    ]


def test_repr() -> None:
    assert "events=0" in repr(SSEScanner())


def test_take_is_feed_for_one_ordinary_event() -> None:
    # take() is feed()'s hot path: true only where feed() would report the whole chunk as one
    # complete, non-terminal event, and then with the same effect on the scanner.
    scanner = SSEScanner()
    assert not scanner.take(b"data: 1\n\n")  # the BOM question is not settled yet
    assert scanner.feed(b"data: 1\n\n") == (9, -1)
    for chunk in (b"data: " + b"x" * 5000 + b"\n\n", b"id: 7\n\n"):
        assert scanner.take(chunk)
    assert scanner.events == 3
    for chunk in (
        b"event: a\ndata: 2\n\n",  # two lines
        b"data: 3\r\n\r\n",  # CR line ends
        b": comment\n\n",  # not an event
        b"\n\n",  # no line
        b"data: 4\n",  # no empty line
        b"data: [DONE]\n\n",  # terminal
    ):
        assert not scanner.take(chunk)
    assert scanner.events == 3
    assert not scanner.terminal_seen


def test_feed_untaken_agrees_with_feed() -> None:
    chunks = [
        b"data: 1\n\n",
        b"data: " + b"x" * 5000 + b"\n\n",
        b"event: a\ndata: 2\n\n",
        b"data: 3\r\n\r\n",
        b": comment\n\n",
        b"data: [DONE]\n\n",
    ]
    fed, untaken = SSEScanner(), SSEScanner()
    for chunk in chunks:
        assert untaken.feed_untaken(chunk) == fed.feed(chunk)
    assert (untaken.events, untaken.terminal_seen) == (fed.events, fed.terminal_seen) == (5, True)
