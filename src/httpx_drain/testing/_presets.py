"""Scenarios shaped like the streaming APIs of OpenAI and Anthropic.

Each SSE event is one chunk, as those APIs send them. The last event is followed by an
optional :class:`Signal`, gate and delay, then the chunked terminator: the window in which a
client that stops at the last event (``data: [DONE]``, ``message_stop``) closes the response
before the terminator arrives. The payloads are realistic enough for the official SDKs to
parse. Change other fields with ``dataclasses.replace(preset(...), connection_close=True)``.
"""

from __future__ import annotations

import json
from typing import Any

from ._gate import Gate
from ._scenario import Chunk, Pause, Scenario, Signal, Step, Terminator, WaitFor

__all__ = [
    "anthropic_messages",
    "generic_sse",
    "openai_assistants",
    "openai_chat",
    "openai_responses",
    "sample_text",
]

_CREATED = 1_700_000_000
_WORDS = ("Hello", " from", " the", " replay", " server", ".")


def _token(index: int) -> str:
    return _WORDS[index % len(_WORDS)]


def sample_text(events: int) -> str:
    """The text the presets stream in ``events`` deltas."""
    return "".join(_token(i) for i in range(events))


def _sse(data: Any, event: str | None = None) -> bytes:
    body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event is not None else ""
    return f"{prefix}data: {body}\n\n".encode()


def _stream(
    events: list[bytes],
    *,
    headers: tuple[tuple[str, str], ...],
    event_delay: float,
    terminator_delay: float,
    terminator_gate: Gate | None,
    last_event_sent: Gate | None,
) -> Scenario:
    steps: list[Step] = []
    for index, event in enumerate(events):
        if index and event_delay:
            steps.append(Pause(event_delay))
        steps.append(Chunk(event))
    if last_event_sent is not None:
        steps.append(Signal(last_event_sent))
    if terminator_gate is not None:
        steps.append(WaitFor(terminator_gate))
    if terminator_delay:
        steps.append(Pause(terminator_delay))
    steps.append(Terminator())
    return Scenario(steps=steps, headers=headers)


def _openai_headers() -> tuple[tuple[str, str], ...]:
    return (("content-type", "text/event-stream; charset=utf-8"), ("x-request-id", "req_test"))


def openai_chat(
    events: int = 5,
    *,
    model: str = "gpt-4o-mini",
    event_delay: float = 0.0,
    terminator_delay: float = 0.0,
    terminator_gate: Gate | None = None,
    last_event_sent: Gate | None = None,
) -> Scenario:
    """Chat Completions: a role chunk, ``events`` content chunks, a finish chunk, ``[DONE]``.

    ``last_event_sent`` is opened once ``data: [DONE]`` is written; ``terminator_gate`` and
    ``terminator_delay`` hold the terminator back after it.
    """

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return _sse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": model,
                "system_fingerprint": "fp_test",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
        )

    payloads = [chunk({"role": "assistant", "content": "", "refusal": None})]
    payloads += [chunk({"content": _token(i)}) for i in range(events)]
    payloads += [chunk({}, "stop"), _sse("[DONE]")]
    return _stream(
        payloads,
        headers=_openai_headers(),
        event_delay=event_delay,
        terminator_delay=terminator_delay,
        terminator_gate=terminator_gate,
        last_event_sent=last_event_sent,
    )


def openai_responses(
    events: int = 5,
    *,
    model: str = "gpt-4o-mini",
    event_delay: float = 0.0,
    terminator_delay: float = 0.0,
    terminator_gate: Gate | None = None,
    last_event_sent: Gate | None = None,
) -> Scenario:
    """Responses API: ``response.created`` ... ``events`` text deltas ... ``response.completed``."""
    text = sample_text(events)
    part_empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    part_done = {**part_empty, "text": text}
    item = {"id": "msg_test", "type": "message", "role": "assistant"}
    item_open = {**item, "status": "in_progress", "content": []}
    item_done = {**item, "status": "completed", "content": [part_done]}
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": events,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10 + events,
    }

    def response(status: str, output: list[Any], usage: Any = None) -> dict[str, Any]:
        return {
            "id": "resp_test",
            "object": "response",
            "created_at": _CREATED,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    where = {"item_id": "msg_test", "output_index": 0, "content_index": 0}
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response("in_progress", [])}),
        ("response.in_progress", {"response": response("in_progress", [])}),
        ("response.output_item.added", {"output_index": 0, "item": item_open}),
        ("response.content_part.added", {**where, "part": part_empty}),
    ]
    bodies += [
        ("response.output_text.delta", {**where, "delta": _token(i), "logprobs": []})
        for i in range(events)
    ]
    bodies += [
        ("response.output_text.done", {**where, "text": text, "logprobs": []}),
        ("response.content_part.done", {**where, "part": part_done}),
        ("response.output_item.done", {"output_index": 0, "item": item_done}),
        ("response.completed", {"response": response("completed", [item_done], usage)}),
    ]
    payloads = [
        _sse({"type": name, "sequence_number": seq, **body}, event=name)
        for seq, (name, body) in enumerate(bodies)
    ]
    return _stream(
        payloads,
        headers=_openai_headers(),
        event_delay=event_delay,
        terminator_delay=terminator_delay,
        terminator_gate=terminator_gate,
        last_event_sent=last_event_sent,
    )


def openai_assistants(
    events: int = 5,
    *,
    model: str = "gpt-4o-mini",
    event_delay: float = 0.0,
    terminator_delay: float = 0.0,
    terminator_gate: Gate | None = None,
    last_event_sent: Gate | None = None,
) -> Scenario:
    """Assistants runs: ``thread.run.*`` and ``thread.message.*`` events, then ``event: done``."""
    text = sample_text(events)
    run = {
        "id": "run_test",
        "object": "thread.run",
        "created_at": _CREATED,
        "assistant_id": "asst_test",
        "thread_id": "thread_test",
        "status": "queued",
        "model": model,
        "instructions": "",
        "tools": [],
        "metadata": {},
        "usage": None,
        "started_at": None,
        "completed_at": None,
        "expires_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "last_error": None,
        "required_action": None,
        "incomplete_details": None,
        "parallel_tool_calls": True,
        "response_format": "auto",
        "tool_choice": "auto",
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "temperature": 1.0,
        "top_p": 1.0,
    }
    step = {
        "id": "step_test",
        "object": "thread.run.step",
        "created_at": _CREATED,
        "run_id": "run_test",
        "assistant_id": "asst_test",
        "thread_id": "thread_test",
        "type": "message_creation",
        "status": "in_progress",
        "step_details": {
            "type": "message_creation",
            "message_creation": {"message_id": "msg_test"},
        },
        "last_error": None,
        "usage": None,
        "cancelled_at": None,
        "completed_at": None,
        "expired_at": None,
        "failed_at": None,
        "metadata": {},
    }
    message = {
        "id": "msg_test",
        "object": "thread.message",
        "created_at": _CREATED,
        "assistant_id": "asst_test",
        "thread_id": "thread_test",
        "run_id": "run_test",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
        "attachments": [],
        "metadata": {},
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
    }
    done_content = [{"type": "text", "text": {"value": text, "annotations": []}}]
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("thread.run.created", run),
        ("thread.run.queued", run),
        ("thread.run.in_progress", {**run, "status": "in_progress", "started_at": _CREATED}),
        ("thread.run.step.created", step),
        ("thread.run.step.in_progress", step),
        ("thread.message.created", message),
        ("thread.message.in_progress", message),
    ]
    bodies += [
        (
            "thread.message.delta",
            {
                "id": "msg_test",
                "object": "thread.message.delta",
                "delta": {
                    "content": [
                        {
                            "index": 0,
                            "type": "text",
                            "text": {"value": _token(i), "annotations": []},
                        }
                    ]
                },
            },
        )
        for i in range(events)
    ]
    bodies += [
        (
            "thread.message.completed",
            {**message, "status": "completed", "content": done_content, "completed_at": _CREATED},
        ),
        ("thread.run.step.completed", {**step, "status": "completed", "completed_at": _CREATED}),
        ("thread.run.completed", {**run, "status": "completed", "completed_at": _CREATED}),
    ]
    payloads = [_sse(body, event=name) for name, body in bodies]
    payloads.append(_sse("[DONE]", event="done"))
    return _stream(
        payloads,
        headers=_openai_headers(),
        event_delay=event_delay,
        terminator_delay=terminator_delay,
        terminator_gate=terminator_gate,
        last_event_sent=last_event_sent,
    )


def anthropic_messages(
    events: int = 5,
    *,
    model: str = "claude-sonnet-4-5",
    event_delay: float = 0.0,
    terminator_delay: float = 0.0,
    terminator_gate: Gate | None = None,
    last_event_sent: Gate | None = None,
) -> Scenario:
    """Anthropic Messages: ``message_start``, a text block of ``events`` deltas, ``message_stop``.

    ``last_event_sent`` opens once ``message_stop`` is written.
    """
    message: dict[str, Any] = {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    bodies: list[dict[str, Any]] = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    bodies += [
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": _token(i)},
        }
        for i in range(events)
    ]
    bodies += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": events},
        },
        {"type": "message_stop"},
    ]
    headers = (("content-type", "text/event-stream; charset=utf-8"), ("request-id", "req_test"))
    return _stream(
        [_sse(body, event=body["type"]) for body in bodies],
        headers=headers,
        event_delay=event_delay,
        terminator_delay=terminator_delay,
        terminator_gate=terminator_gate,
        last_event_sent=last_event_sent,
    )


def generic_sse(
    events: int = 5,
    *,
    event: str | None = None,
    data: str = "message {index}",
    event_delay: float = 0.0,
    terminator_delay: float = 0.0,
    terminator_gate: Gate | None = None,
    last_event_sent: Gate | None = None,
) -> Scenario:
    """``events`` plain SSE events: ``event: <event>`` (if given) and ``data.format(index=i)``."""
    payloads = [_sse(data.format(index=i), event=event) for i in range(events)]
    return _stream(
        payloads,
        headers=(("content-type", "text/event-stream"),),
        event_delay=event_delay,
        terminator_delay=terminator_delay,
        terminator_gate=terminator_gate,
        last_event_sent=last_event_sent,
    )
