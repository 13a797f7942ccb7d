"""The ``httpx-drain`` command, run as users run it: ``python -m httpx_drain`` in a subprocess."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import httpx_drain
from httpx_drain import _doctor
from httpx_drain._redact import REDACTED, redact_headers, redact_text, redact_url
from httpx_drain.testing import (
    Chunk,
    Fin,
    Gate,
    HypercornServer,
    RawServer,
    RequestInfo,
    Scenario,
    Split,
    Terminator,
    WaitFor,
    openai_chat,
)

SECRET = "sk-secret-0123456789abcdef"
CHAT = "/v1/chat/completions"


def cli_env(**extra: str) -> dict[str, str]:
    # Nothing from the developer's shell steers the command: no keys, base URLs or proxies.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().endswith(("_API_KEY", "_BASE_URL", "_PROXY"))
    }
    return {**env, **extra}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "httpx_drain", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=50,
        env=env or cli_env(),
    )


def doctor_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    result = run("doctor", "--json", "-q", *args, env=env)
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def steps_of(scenario: Scenario) -> list[Any]:
    return list(scenario.steps)


# doctor, against the embedded server


def test_doctor_without_url_uses_the_embedded_server() -> None:
    code, report = doctor_json("-n", "4")
    assert code == 0
    assert report["version"] == 1
    assert report["verdict"] == "fixed"
    clients = report["clients"]
    assert clients["bare"]["connections"] == 4
    assert clients["drain"]["connections"] == 1
    assert clients["drain"]["stats"]["connections_kept"] == 4
    assert clients["read_to_end"]["connections"] == 1
    # Counted client-side from the trace extension; the server agrees.
    assert report["server"] == {"connections": 4 + 1 + 1, "requests": 12}
    assert report["http_version"] == "HTTP/1.1"
    assert report["events"]["terminal_event"] == "data: [DONE]"
    assert report["terminator"]["arrived"] == 4
    assert report["terminator"]["delay_ms"]["max"] > 0
    assert report["recommendation"]["code"] == "DrainTransport()"
    assert report["exit_code"] == 0


def test_doctor_text_output() -> None:
    result = run("doctor", "-n", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "embedded replay server" in out
    assert "verdict     fixed: 3 connections for 3 streams without the transport" in out
    assert "httpx + DrainTransport(), stops at the terminal event            1         3" in out
    assert "use         DrainTransport()" in out
    # Progress goes to stderr, a line per client.
    assert (
        "httpx, stops at the terminal event (as SDKs do)        ... 3 connections" in result.stderr
    )


# doctor, against faults


@dataclasses.dataclass
class Fault:
    scenario: Scenario
    verdict: str
    code: int
    args: tuple[str, ...] = ()


def with_steps(scenario: Scenario, steps: list[Any], **changes: Any) -> Scenario:
    return dataclasses.replace(scenario, steps=steps, **changes)


CHAT_SCENARIO = openai_chat(events=2)
NO_TERMINATOR = with_steps(
    CHAT_SCENARIO, [Fin() if isinstance(s, Terminator) else s for s in steps_of(CHAT_SCENARIO)]
)
SPLIT = with_steps(
    CHAT_SCENARIO,
    [Split(s.data, [7]) if isinstance(s, Chunk) else s for s in steps_of(CHAT_SCENARIO)],
)
TRUNCATED = with_steps(CHAT_SCENARIO, [*steps_of(CHAT_SCENARIO)[:2], Chunk(b"data: {"), Fin()])
NOT_STREAMING = Scenario(
    steps=[Chunk(b'{"choices": []}')],
    headers=(("content-type", "application/json"),),
    framing="content-length",
)

FAULTS = {
    "no-terminator": Fault(NO_TERMINATOR, "no_terminator", 1),
    "split-events": Fault(SPLIT, "fixed", 0),
    "connection-close": Fault(
        dataclasses.replace(CHAT_SCENARIO, connection_close=True), "connection_close", 1
    ),
    "delayed-terminator": Fault(openai_chat(events=2, terminator_delay=0.03), "fixed", 0),
    "truncated": Fault(TRUNCATED, "truncated", 1),
    "server-error": Fault(dataclasses.replace(CHAT_SCENARIO, status=503), "server_error", 1),
    "not-streaming": Fault(NOT_STREAMING, "not_streaming", 1),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_doctor_diagnoses(name: str) -> None:
    fault = FAULTS[name]
    with RawServer(fault.scenario) as server:
        code, report = doctor_json("-n", "3", server.url + CHAT, "-X", "POST")
    assert (report["verdict"], code) == (fault.verdict, fault.code), report["findings"]
    findings = {f["id"] for f in report["findings"]}
    if name == "no-terminator":
        assert report["terminator"]["missing"] == 3
        # The transport turns the missing terminator into a clean end: no failed streams.
        assert report["clients"]["drain"]["failed"] == 0
        assert report["clients"]["drain"]["stats"]["missing_terminators"] == 3
    elif name == "split-events":
        assert "split_events" in findings
        assert report["events"]["split_events"] == 3 * 5  # every event of every stream
        assert report["recommendation"]["notes"][0].startswith("align_events=True")
    elif name == "connection-close":
        assert report["headers"]["connection"] == ["close"]
        assert report["clients"]["drain"]["connections"] == 3
    elif name == "delayed-terminator":
        # The server pauses 30 ms: a lower bound, whatever the machine's load.
        assert report["terminator"]["delay_ms"]["min"] >= 20
        assert report["clients"]["drain"]["connections"] == 1
        rec = report["recommendation"]
        assert rec["back_to_back"] == 'DrainTransport(mode="inline")'
    elif name in ("server-error", "not-streaming"):
        # The first answer says it all: no more requests (a vendor would bill them).
        assert server.facts.request_count == 1
        assert report["recommendation"] is None


def test_doctor_terminator_that_never_comes() -> None:
    never = Gate()
    held = [WaitFor(never) if isinstance(s, Terminator) else s for s in steps_of(CHAT_SCENARIO)]
    scenario = with_steps(CHAT_SCENARIO, [*held, Terminator()])
    with RawServer(scenario) as server:
        code, report = doctor_json(
            "-n", "1", "--terminator-timeout", "100ms", server.url + CHAT, "-d", "{}"
        )
    assert (report["verdict"], code) == ("terminator_timeout", 1)
    assert report["terminator"]["timed_out"] == 1
    assert report["request"]["method"] == "POST"  # as curl: --data means POST


def test_doctor_http2_is_fine(tmp_path: Path) -> None:
    pytest.importorskip("h2")
    ca = tmp_path / "ca.pem"
    with HypercornServer(openai_chat(events=2), http2=True) as server:
        server.ca.cert_pem.write_to_path(str(ca))
        code, report = doctor_json(
            "-n", "2", "--http2", "--cacert", str(ca), server.url + CHAT, "-X", "POST"
        )
    assert (report["verdict"], code) == ("http2", 0)
    assert report["http_version"] == "HTTP/2"
    assert report["clients"]["bare"]["connections"] == 1
    assert report["clients"]["drain"]["stats"]["streams_cancelled"] == 2


def test_doctor_unreachable() -> None:
    with RawServer(CHAT_SCENARIO) as server:
        url = server.url  # closed on leaving: nothing listens there any more
    code, report = doctor_json("-n", "2", url, "--timeout", "5s")
    assert (report["verdict"], code) == ("request_failed", 1)
    assert report["clients"]["read_to_end"]["requests"] == 1


# Secrets


def echo_credentials(request: RequestInfo) -> Scenario:
    # A server that repeats the credentials it got, as some error pages do.
    echoed = f"bad key {request.header('authorization')} {request.header('x-api-key')}"
    return Scenario(
        steps=[Chunk(echoed.encode())],
        status=401,
        headers=(("content-type", "text/plain"),),
        framing="content-length",
    )


@pytest.mark.parametrize(("server_kind", "output"), [("stream", "--text"), ("echo", "--json")])
def test_secrets_never_printed(server_kind: str, output: str) -> None:
    seen: list[RequestInfo] = []

    def stream(request: RequestInfo) -> Scenario:
        seen.append(request)
        return openai_chat(events=1)

    source = stream if server_kind == "stream" else echo_credentials
    env = cli_env(OPENAI_API_KEY=SECRET, ANTHROPIC_API_KEY=SECRET)
    flags = ["-n", "1", "--json"] if output == "--json" else ["-n", "1"]
    with RawServer(source) as server:
        results = [
            run("doctor", *flags, "--openai", server.url + "/v1", env=env),
            run("doctor", *flags, "--anthropic", "--model", "claude-x", server.url, env=env),
            run(
                "doctor",
                *flags,
                server.url + CHAT,
                "-H",
                f"Authorization: Bearer {SECRET}",
                "-H",
                f"Cookie: session={SECRET}",
                "-d",
                "{}",
                env=env,
            ),
        ]
    for result in results:
        assert SECRET not in result.stdout
        assert SECRET not in result.stderr
        assert SECRET[:12] not in result.stdout + result.stderr
        assert result.returncode == (0 if server_kind == "stream" else 1), result.stderr
        assert REDACTED in result.stdout
        if server_kind == "echo":
            assert "bad key" in result.stdout  # the excerpt is shown, scrubbed
    if server_kind == "stream":
        # The vendor presets send what the vendors expect (3 requests per run).
        openai_request, anthropic_request = seen[0], seen[3]
        assert (openai_request.method, openai_request.path) == ("POST", CHAT)
        assert openai_request.header("authorization") == f"Bearer {SECRET}"
        body = json.loads(openai_request.body)
        assert (body["stream"], body["model"]) == (True, "gpt-4o-mini")
        assert (anthropic_request.method, anthropic_request.path) == ("POST", "/v1/messages")
        assert anthropic_request.header("x-api-key") == SECRET
        assert anthropic_request.header("anthropic-version") == "2023-06-01"
        assert json.loads(anthropic_request.body)["model"] == "claude-x"


def test_vendor_presets_need_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from httpx_drain.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["doctor", "--openai"]) == 2
    assert "--openai needs OPENAI_API_KEY" in capsys.readouterr().err
    assert main(["doctor", "--anthropic", "--model", "claude-x"]) == 2
    assert "--anthropic needs ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_redaction_helpers() -> None:
    headers = [
        ("Authorization", "Bearer sk-1"),
        ("proxy-authorization", "Basic abc"),
        ("X-API-Key", "k"),
        ("api-key", "k"),
        ("Cookie", "a=b"),
        ("content-type", "application/json"),
    ]
    assert redact_headers(headers) == [
        ("Authorization", REDACTED),
        ("proxy-authorization", REDACTED),
        ("X-API-Key", REDACTED),
        ("api-key", REDACTED),
        ("Cookie", REDACTED),
        ("content-type", "application/json"),
    ]
    assert redact_url("https://u:pw@h.example/v1?key=abc&model=m&api-key=x&sig=s") == (
        f"https://u:{REDACTED}@h.example/v1?key={REDACTED}&model=m&api-key={REDACTED}"
        f"&sig={REDACTED}"
    )
    assert redact_url("http://127.0.0.1:8000/v1/chat/completions") == (
        "http://127.0.0.1:8000/v1/chat/completions"
    )
    assert redact_url("https://token@h.example/") == f"https://{REDACTED}@h.example/"
    assert redact_url("http://[bad?key=sk-1") == "[unparseable URL]"
    text = f"401: invalid key {SECRET}, header Bearer abc.def, key sk-proj-abcdefghij"
    assert redact_text(text, [SECRET]) == (
        f"401: invalid key {REDACTED}, header Bearer {REDACTED}, key {REDACTED}"
    )


# Conclusions from synthetic probes (timings a test cannot stage cheaply)


def probes(n: int, **fields: Any) -> list[_doctor.Probe]:
    defaults: dict[str, Any] = {
        "status": 200,
        "http_version": "HTTP/1.1",
        "end": "end",
        "terminal": "data: [DONE]",
        "events": 3,
    }
    return [_doctor.Probe(**{**defaults, **fields}) for _ in range(n)]


def passes(delay: float, drain_connections: int = 1) -> dict[str, _doctor.ProbePass]:
    return {
        "read_to_end": _doctor.ProbePass("read_to_end", "r", probes(3, delay=delay), 1),
        "bare": _doctor.ProbePass("bare", "b", probes(3, end="stopped"), 3),
        "drain": _doctor.ProbePass("drain", "d", probes(3, end="stopped"), drain_connections),
    }


@pytest.mark.parametrize(
    ("delay", "code", "back_to_back"),
    [
        (0.0002, "DrainTransport()", None),
        (0.02, "DrainTransport()", 'DrainTransport(mode="inline")'),
        (0.2, "DrainTransport()", 'DrainTransport(mode="inline", deadline=0.3)'),
        (0.5, "DrainTransport()", None),
        (1.5, "DrainTransport(deadline=2.5)", None),
    ],
)
def test_recommendations(delay: float, code: str, back_to_back: str | None) -> None:
    found = _doctor._findings(passes(delay), _doctor.Options())
    rec = _doctor._recommend(passes(delay), found)
    assert rec is not None
    assert (rec.code, rec.back_to_back) == (code, back_to_back)
    assert found[-1].id == "fixed"
    if delay > 1:
        assert "slow_terminator" in {f.id for f in found}


def test_a_transport_that_does_not_help_is_a_problem() -> None:
    found = _doctor._findings(passes(0.01, drain_connections=3), _doctor.Options())
    assert [f.id for f in found] == ["not_fixed"]


# replay


@pytest.fixture
def replay_process() -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        # Python leaves SIGINT ignored when the parent ignored it (a test run started in the
        # background); a user's terminal does not, so Ctrl-C gets Python's usual handler here.
        launcher = (
            "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from httpx_drain.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", launcher, "replay", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        started.append(proc)
        assert proc.stdout is not None
        return proc, proc.stdout.readline().strip()

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def stream_to_done(client: httpx.Client, url: str) -> None:
    with client.stream("POST", url) as response:
        for line in response.iter_lines():
            if line == "data: [DONE]":
                break


def test_replay_serves_until_sigterm(replay_process: Any) -> None:
    proc, url = replay_process("--scenario", "openai-chat", "--events", "2")
    assert url.startswith("http://127.0.0.1:")
    with httpx.Client(transport=httpx_drain.DrainTransport()) as client:
        for _ in range(3):
            stream_to_done(client, url + CHAT)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == ""  # the URL was the only line
    assert "connection 0 request 0: POST /v1/chat/completions" in err
    assert "served 3 requests on " in err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT as Ctrl-C is POSIX")
def test_replay_faults_and_ctrl_c(replay_process: Any) -> None:
    proc, url = replay_process("--scenario", "anthropic-messages", "--no-terminator", "--split")
    with httpx.Client() as client, client.stream("POST", url) as response:
        with pytest.raises(httpx.RemoteProtocolError):  # no terminator: the body never ends
            for _ in response.iter_raw():
                pass
        assert response.headers["transfer-encoding"] == "chunked"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "no terminator (FIN), events split across chunks" in err


def test_replay_rejects_what_hypercorn_cannot_do() -> None:
    result = run("replay", "--backend", "hypercorn", "--reset")
    assert result.returncode == 2
    assert "Reset needs RawServer" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_replay_on_hypercorn_on_a_given_port(replay_process: Any) -> None:
    port = free_port()
    proc, url = replay_process(
        "--backend", "hypercorn", "--connection-close", "-q", "--port", str(port)
    )
    assert url == f"http://127.0.0.1:{port}"
    response = httpx.post(url)
    assert response.headers["connection"] == "close"
    assert response.text.endswith("data: [DONE]\n\n")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "served 1 request on 1 connection" in err


# The rest


def test_demo() -> None:
    result = run("demo", "-n", "3")
    assert result.returncode == 0, result.stderr
    assert "httpx + DrainTransport(mode='background')" in result.stdout


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from httpx_drain.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("doctor", "replay", "demo"):
        assert command in out
    for argv in (["doctor", "-n", "0"], ["replay", "--terminator-delay", "soon"], ["nope"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    for url in ("ftp://example.com/", "http://[bad", "http://"):
        assert main(["doctor", url]) == 2
        assert "not an http(s) URL" in capsys.readouterr().err
