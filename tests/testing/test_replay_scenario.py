"""Scenarios, their wire plans, gates and facts, without sockets."""

from __future__ import annotations

import json
import threading

import anyio
import anyio.lowlevel
import pytest

from httpx_drain.testing import (
    Chunk,
    Endless,
    Fin,
    Gate,
    Pause,
    Raw,
    RequestInfo,
    Reset,
    Scenario,
    ServerFacts,
    Signal,
    Split,
    Terminator,
    Trickle,
    UnsupportedStep,
    WaitFor,
    anthropic_messages,
    generic_sse,
    openai_assistants,
    openai_chat,
    openai_responses,
    sample_text,
)
from httpx_drain.testing._asgi import check_asgi
from httpx_drain.testing._wire import Close, Open, Repeat, RequestParser, Send, Sleep, Wait, plan

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def test_plan_chunked_adds_the_terminator() -> None:
    p = plan(Scenario(steps=[Chunk(b"hello"), Chunk(b"world!")]))
    assert p.ops == (
        Send(HEAD),
        Send(b"5\r\nhello\r\n"),
        Send(b"6\r\nworld!\r\n"),
        Send(b"0\r\n\r\n", completes=True),
    )
    assert not p.closes


def test_plan_chunk_with_terminator_is_one_write() -> None:
    p = plan(Scenario(steps=[Chunk(b"abc", terminator=True)]))
    assert p.ops[1:] == (Send(b"3\r\nabc\r\n0\r\n\r\n", completes=True),)


def test_plan_every_step() -> None:
    gate, signal = Gate(), Gate()
    p = plan(
        Scenario(
            steps=[
                Split(b"abcdef", at=[1, 3]),
                Trickle(b"xyz", interval=0.5, size=2),
                Pause(1.5),
                WaitFor(gate),
                Signal(signal),
                Raw(b"zz\r\n"),
                Terminator(trailers=[("x-checksum", "1")]),
                Pause(0.1),
                Fin(),
                Chunk(b"unreachable"),
            ]
        )
    )
    assert p.ops[1:] == (
        Send(b"1\r\na\r\n"),
        Send(b"2\r\nbc\r\n"),
        Send(b"3\r\ndef\r\n"),
        Send(b"2\r\nxy\r\n"),
        Sleep(0.5),
        Send(b"1\r\nz\r\n"),
        Sleep(1.5),
        Wait(gate),
        Open(signal),
        Send(b"zz\r\n"),
        Send(b"0\r\nx-checksum: 1\r\n\r\n", completes=True),
        Sleep(0.1),
        Close(),
    )
    assert p.closes


def test_plan_reset_and_endless_close() -> None:
    assert plan(Scenario(steps=[Chunk(b"a"), Reset()])).ops[-1] == Close(reset=True)
    p = plan(Scenario(steps=[Endless(b"tick", interval=0.1)]))
    assert p.ops[1:] == (Repeat(b"4\r\ntick\r\n", 0.1),)
    assert p.closes


def test_plan_content_length_is_computed() -> None:
    p = plan(Scenario(steps=[Chunk(b"abc"), Split(b"defg", at=[2])], framing="content-length"))
    assert p.ops == (
        Send(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 7\r\n\r\n"),
        Send(b"abc"),
        Send(b"de"),
        Send(b"fg", completes=True),
    )


def test_plan_content_length_given_allows_extra_bytes() -> None:
    headers = (("content-length", "3"),)
    p = plan(Scenario(steps=[Chunk(b"abcEXTRA")], headers=headers, framing="content-length"))
    assert p.ops == (
        Send(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n"),
        Send(b"abcEXTRA", completes=True),
    )


def test_plan_empty_content_length_completes_with_the_head() -> None:
    p = plan(Scenario(framing="content-length", status=204, headers=()))
    assert p.ops == (Send(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n", completes=True),)


def test_plan_eof_framing_ends_with_a_close() -> None:
    p = plan(Scenario(steps=[Chunk(b"abc")], framing="eof", connection_close=True))
    assert p.ops == (
        Send(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"),
        Send(b"abc"),
        Close(completes=True),
    )
    assert plan(Scenario(steps=[Chunk(b"abc"), Fin()], framing="eof")).ops[-1] == Close(
        completes=True
    )


def test_plan_no_automatic_terminator_after_fin_or_terminator() -> None:
    assert plan(Scenario(steps=[Chunk(b"a"), Fin()])).ops[-1] == Close()
    p = plan(Scenario(steps=[Terminator(), Chunk(b"after")]))
    assert p.ops[1:] == (Send(b"0\r\n\r\n", completes=True), Send(b"5\r\nafter\r\n"))


def test_plan_empty_chunk_writes_nothing() -> None:
    assert plan(Scenario(steps=[Chunk(b"")])).ops[1:] == (Send(b"0\r\n\r\n", completes=True),)


def test_plan_unknown_status_has_no_reason() -> None:
    p = plan(Scenario(status=599, headers=()))
    assert p.ops[0] == Send(b"HTTP/1.1 599\r\ntransfer-encoding: chunked\r\n\r\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Split(b"abc", at=[0]), "strictly inside"),
        (lambda: Split(b"abc", at=[2, 1]), "increasing"),
        (lambda: Trickle(b"abc", interval=0.1, size=0), "size"),
        (lambda: Pause(-1), "seconds"),
        (lambda: Endless(b""), "empty"),
        (lambda: Scenario(steps=[Terminator()], framing="eof"), "chunked"),
        (lambda: Scenario(steps=[Chunk(b"a", terminator=True)], framing="eof"), "chunked"),
        (lambda: Scenario(steps=[Endless(b"a")], framing="content-length"), "Content-Length"),
        (lambda: Scenario(framing="gzip"), "framing"),  # type: ignore[arg-type]
    ],
)
def test_invalid_scenarios(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(steps=[Raw(b"x")]),
        Scenario(steps=[Reset()]),
        Scenario(steps=[Terminator(trailers=[("a", "b")])]),
        Scenario(framing="eof"),
        Scenario(
            steps=[Chunk(b"abc")], headers=[("content-length", "2")], framing="content-length"
        ),
        Scenario(steps=[Terminator(), Chunk(b"after")]),
        Scenario(steps=[Terminator(), Fin()]),
    ],
)
def test_asgi_rejects_what_it_cannot_express(scenario: Scenario) -> None:
    with pytest.raises(UnsupportedStep):
        check_asgi(scenario)


def test_asgi_accepts_gates_after_the_terminator_and_fin_mid_body() -> None:
    check_asgi(Scenario(steps=[Chunk(b"a"), Terminator(), Signal(Gate()), Pause(0.1)]))
    check_asgi(Scenario(steps=[Chunk(b"a"), Fin()]))


def test_request_parser_reads_pipelined_requests_and_bodies() -> None:
    parser = RequestParser()
    parser.feed(
        b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /b HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\nGET /c"
    )
    first = parser.next_request(4, 0)
    assert first == (
        RequestInfo(
            method="POST",
            path="/a?x=1",
            headers=[("host", "h"), ("content-length", "3")],
            body=b"abc",
            connection_index=4,
            request_index=0,
        ),
        True,
    )
    second = parser.next_request(4, 1)
    assert second is not None
    assert second[0].path == "/b"
    assert second[1] is False  # connection: close
    assert parser.next_request(4, 2) is None
    assert parser.pending


def test_request_parser_end_of_stream() -> None:
    parser = RequestParser()
    assert not parser.pending
    parser.feed(b"")
    with pytest.raises(EOFError):
        parser.next_request(0, 0)


def test_request_info_header_lookup() -> None:
    info = RequestInfo(method="GET", path="/", headers=[("x-a", "1")])
    assert info.header("X-A") == "1"
    assert info.header("x-b") is None


def test_gate_threads() -> None:
    gate = Gate("g")
    assert not gate.wait(0.01)
    calls: list[str] = []
    unsubscribe = gate.subscribe(lambda: calls.append("early"))
    gate.subscribe(lambda: calls.append("kept"))
    unsubscribe()
    setter = threading.Thread(target=gate.set)
    setter.start()
    assert gate.wait(10)
    setter.join()
    assert gate.is_set()
    assert calls == ["kept"]
    gate.subscribe(lambda: calls.append("late"))  # already open: at once
    assert calls == ["kept", "late"]
    assert "set" in repr(gate)
    gate.clear()
    assert not gate.is_set()


@pytest.mark.anyio
async def test_gate_wait_async_set_from_a_thread() -> None:
    gate = Gate()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(gate.wait_async)
            await anyio.lowlevel.checkpoint()
            await anyio.to_thread.run_sync(gate.set)
    assert gate.is_set()
    with anyio.fail_after(10):
        await gate.wait_async()  # already open


@pytest.mark.anyio
async def test_facts_wait_async() -> None:
    facts = ServerFacts()
    index = facts.connection_opened(("127.0.0.1", 1))
    assert not await facts.wait_for_requests_async(1, 0.01)

    def record() -> None:
        facts.request_received(index)
        facts.client_closed_early(index)
        facts.connection_closed(index)

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, record)
        assert await facts.wait_for_requests_async(1, 10)
    assert await facts.wait_for_closed_async(1, 10)
    assert await facts.wait_for_early_disconnects_async(1, 10)
    assert facts.index_of(("127.0.0.1", 1)) == 0
    assert "requests=1" in repr(facts)


def test_facts_copies_and_waits() -> None:
    facts = ServerFacts()
    index = facts.connection_opened(("127.0.0.1", 1))
    facts.connections[0].requests = 99  # a copy
    assert facts.request_count == 0
    facts.request_received(index)
    facts.response_completed(index)
    facts.response_failed(index)
    facts.bytes_written(index, 10)
    assert facts.wait_for_requests(1, 0)
    assert not facts.wait_for_closed(1, 0.01)
    assert facts.responses_completed == 0
    assert facts.connections[0].bytes_sent == 10
    assert facts.index_of(("127.0.0.1", 2)) is None


def _events(scenario: Scenario) -> list[bytes]:
    return [step.data for step in scenario.steps if isinstance(step, Chunk)]


def _data(event: bytes) -> str:
    lines = event.decode().splitlines()
    return next(line[len("data: ") :] for line in lines if line.startswith("data: "))


def test_preset_openai_chat() -> None:
    gate, sent = Gate(), Gate()
    scenario = openai_chat(3, terminator_gate=gate, last_event_sent=sent, terminator_delay=0.5)
    events = _events(scenario)
    assert len(events) == 1 + 3 + 1 + 1
    assert events[-1] == b"data: [DONE]\n\n"
    deltas = [json.loads(_data(e))["choices"][0]["delta"].get("content") for e in events[1:4]]
    assert "".join(deltas) == sample_text(3)
    assert scenario.steps[-4:] == (Signal(sent), WaitFor(gate), Pause(0.5), Terminator())


def test_preset_event_delay_pauses_between_events() -> None:
    scenario = generic_sse(3, event="tick", data="n={index}", event_delay=0.25)
    assert scenario.steps == (
        Chunk(b"event: tick\ndata: n=0\n\n"),
        Pause(0.25),
        Chunk(b"event: tick\ndata: n=1\n\n"),
        Pause(0.25),
        Chunk(b"event: tick\ndata: n=2\n\n"),
        Terminator(),
    )


@pytest.mark.parametrize(
    ("preset", "first", "last"),
    [
        (openai_responses, "response.created", "response.completed"),
        (openai_assistants, "thread.run.created", "done"),
        (anthropic_messages, "message_start", "message_stop"),
    ],
)
def test_preset_event_names(preset: object, first: str, last: str) -> None:
    events = _events(preset(4))  # type: ignore[operator]
    assert events[0].startswith(f"event: {first}\n".encode())
    assert events[-1].startswith(f"event: {last}\n".encode())
    for event in events:
        assert event.endswith(b"\n\n")
        data = _data(event)
        if data != "[DONE]":
            json.loads(data)
