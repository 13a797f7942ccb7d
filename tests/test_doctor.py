"""The doctor's probes and report, through its API (the CLI's are in ``test_cli.py``)."""

from __future__ import annotations

import dataclasses

import anyio
import httpx
import pytest

from httpx_drain import _doctor
from httpx_drain.testing import Gate, RawServer, Step, Terminator, WaitFor, openai_chat

CHAT = "/v1/chat/completions"


def held(before: str) -> list[Step]:
    """The steps of a short chat stream, stopped for good before ``data: [DONE]`` or before
    the terminator after it (the server's close unblocks the step)."""
    steps = list(openai_chat(events=1).steps)
    wait = WaitFor(Gate())
    if before == "terminal event":
        return [*steps[:-2], wait, *steps[-2:]]  # steps[-2] is data: [DONE]
    return [*steps[:-1], wait, Terminator()]


def probe_once(url: str, options: _doctor.Options, timeout: httpx.Timeout) -> _doctor.Probe:
    async def main() -> _doctor.Probe:
        async with httpx.AsyncClient(timeout=timeout) as client:
            target = _doctor.Target("POST", url + CHAT)
            return await _doctor._probe(
                client, target, options, _doctor._Tracer(), stop_at_terminal=False
            )

    return anyio.run(main, backend="asyncio")


@pytest.mark.parametrize(
    ("before", "end"), [("terminal event", "error"), ("terminator", "timeout")]
)
def test_probe_gives_up_after_timeout(before: str, end: str) -> None:
    # --timeout caps the whole request: after the terminal event, that is a terminator that
    # did not come; before it, a failed request. No read timeout and a long terminator wait,
    # so only the overall cap can end the probe.
    scenario = dataclasses.replace(openai_chat(events=1), steps=held(before))
    options = _doctor.Options(timeout=0.1, terminator_timeout=30)
    with RawServer(scenario) as server:
        probe = probe_once(server.url, options, httpx.Timeout(None))
    assert probe.end == end
    assert probe.error == "no complete answer within 0.1 s (--timeout)"
    assert (probe.terminal is not None) == (end == "timeout")


def test_probe_read_timeout_after_the_terminal_event() -> None:
    # The client's own read timeout, before the overall cap or the terminator wait: the
    # terminator did not come in time.
    scenario = dataclasses.replace(openai_chat(events=1), steps=held("terminator"))
    options = _doctor.Options(timeout=30, terminator_timeout=30)
    with RawServer(scenario) as server:
        probe = probe_once(server.url, options, httpx.Timeout(30, read=0.1))
    assert (probe.end, probe.terminal) == ("timeout", "data: [DONE]")
    assert probe.error is not None
    assert probe.error.startswith("ReadTimeout")


def test_no_probes_nothing_to_report() -> None:
    # Options(probes=0) is the API's business (the CLI wants at least 1): no request, and
    # a report that says so rather than a verdict it has nothing to base on.
    with RawServer(openai_chat(events=1)) as server:
        target = _doctor.Target("POST", server.url + CHAT)
        report = _doctor.run(target, _doctor.Options(probes=0))
        assert server.facts.request_count == 0
    assert (report.verdict().id, report.exit_code, report.recommendation) == ("unknown", 0, None)
    text = _doctor.render_text(report)
    assert "response" not in text  # nothing answered
    assert "verdict     unknown: nothing to report" in text
    assert report.as_json()["verdict"] == "unknown"
