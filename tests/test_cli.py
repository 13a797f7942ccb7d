"""The ``httpx-drain`` command, run as users run it: ``python -m httpx_drain`` in a subprocess."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import httpx_drain
from httpx_drain import _doctor, cli
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
    anthropic_messages,
    generic_sse,
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


# doctor, in process: the text report and the request it sends


def test_doctor_embedded_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", "-n", "2"]) == 0
    captured = capsys.readouterr()
    assert "probing the embedded replay server at http://127.0.0.1:" in captured.err
    assert "verdict     fixed: 2 connections for 2 streams without the transport" in captured.out
    # read_to_end 1 + bare 2 + drain 1, against 3 passes of 2 requests.
    assert "(the embedded server saw 4 connections for 6 requests)" in captured.out


CHAT_STEPS = steps_of(CHAT_SCENARIO)
# What the text report shows of each kind of endpoint: (scenario, more args, exit code, lines).
TEXT_REPORTS = {
    "no-terminator": (
        NO_TERMINATOR,
        (),
        1,
        ["terminator  0 of 2 arrived, 2 missing (the server closed instead)"],
    ),
    # Late rather than never: a drain waiting for a terminator that never comes would hold
    # the run for its whole deadline (1 s). 200 ms leaves a wide margin over the 20 ms wait.
    "terminator-too-late": (
        openai_chat(events=2, terminator_delay=0.2),
        ("--terminator-timeout", "20ms"),
        1,
        ["terminator  0 of 2 arrived, 2 not within 0.02 s", "verdict     terminator_timeout:"],
    ),
    # No length, the body ends at the close: nothing is ever reused, whoever reads it.
    "eof-framing": (
        with_steps(
            CHAT_SCENARIO, [s for s in CHAT_STEPS if not isinstance(s, Terminator)], framing="eof"
        ),
        (),
        1,
        [
            ", HTTP/1.1, no length (the body ends when the server closes)",
            "terminator  none: without a length, each body ended when the server closed (",
            "verdict     no_keep_alive: even reading every body to its end took 2 connections",
        ],
    ),
    "server-error-page": (
        Scenario(
            steps=[Chunk(b"overloaded " * 200)],
            status=503,
            headers=(("content-type", "text/plain"), ("server", "nginx"), ("via", "1.1 proxy")),
            framing="content-length",
        ),
        (),
        1,
        [
            "response    503 text/plain, HTTP/1.1, content-length 2200",
            "served by   server: nginx, via: 1.1 proxy",
            # An excerpt of the body, however long the body is.
            "body        " + ("overloaded " * 28)[:300] + "\n",
            "verdict     server_error: the server answered HTTP 503: overloaded",
        ],
    ),
    "no-terminal-event": (
        generic_sse(events=2),
        (),
        0,
        [
            "last: no terminal event;",
            "verdict     already_reused: 1 connection for 2 streams without the transport",
            "            info: no terminal event the transport knows",
            "use         DrainTransport()\nexit code   0",
        ],
    ),
    "named-terminal-event": (
        anthropic_messages(events=1),
        (),
        0,
        ["last: event: message_stop;", "verdict     fixed:"],
    ),
}


@pytest.mark.parametrize("name", list(TEXT_REPORTS))
def test_doctor_text_report(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    scenario, extra, code, expected = TEXT_REPORTS[name]
    with RawServer(scenario) as server:
        argv = ["doctor", "-q", "-n", "2", server.url + CHAT, "-X", "POST", *extra]
        assert cli.main(argv) == code
    captured = capsys.readouterr()
    assert captured.err == ""  # -q: no progress
    for text in expected:
        assert text in captured.out, captured.out


def test_doctor_http2_text_and_insecure(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("h2")
    with HypercornServer(openai_chat(events=2), http2=True) as server:
        # -k: the server's certificate is from a CA nobody trusts.
        argv = ["doctor", "-q", "-n", "2", "--http2", "-k", server.url + CHAT, "-X", "POST"]
        assert cli.main(argv) == 0
    out = capsys.readouterr().out
    # HTTP/2 frames end the body: no framing header to show.
    assert "response    200 text/event-stream; charset=utf-8, HTTP/2\n" in out
    assert "(2 HTTP/2 streams cancelled)" in out
    assert "verdict     http2:" in out


def recording(seen: list[RequestInfo]) -> Callable[[RequestInfo], Scenario]:
    def source(request: RequestInfo) -> Scenario:
        seen.append(request)
        return CHAT_SCENARIO

    return source


@pytest.mark.parametrize("source", ["text", "file", "stdin"])
def test_doctor_request_body(
    source: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As curl: -d TEXT, -d @FILE, -d @- (stdin); JSON gets a content-type, anything else not.
    body = b"stream, please" if source == "text" else b'{"stream": true}'
    data = body.decode()
    if source == "file":
        (tmp_path / "body.json").write_bytes(body)
        data = f"@{tmp_path / 'body.json'}"
    elif source == "stdin":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
        data = "@-"
    seen: list[RequestInfo] = []
    with RawServer(recording(seen)) as server:
        assert cli.main(["doctor", "-q", "--json", "-n", "1", server.url + CHAT, "-d", data]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "one_request"
    assert report["request"]["body_bytes"] == len(body)
    assert len(seen) == 3  # one request per client
    for request in seen:
        assert (request.method, request.body) == ("POST", body)
        expected = None if source == "text" else "application/json"
        assert request.header("content-type") == expected


@pytest.mark.parametrize("when", ["before the first request", "after the first request"])
def test_doctor_interrupted(when: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class CtrlC(io.StringIO):
        """A terminal where Ctrl-C comes with the first line of progress, or with the
        progress dot of the first request (clients open, inside the event loop)."""

        def write(self, text: str) -> int:
            if when.startswith("before") or text in (".", "x"):
                raise KeyboardInterrupt
            return super().write(text)

    monkeypatch.setattr(sys, "stderr", CtrlC())
    assert cli.main(["doctor", "-n", "3"]) == 130


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["doctor", "--timeout=-1s"], "not a duration: '-1s' (negative)"),
        (["doctor", "-n", "ten"], "not a number: 'ten'"),
        (["doctor", "-H", "no colon"], "a header is 'Name: value'"),
        (["doctor", "--cacert", "/nonexistent/ca.pem"], "--cacert /nonexistent/ca.pem: "),
    ],
)
def test_doctor_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_doctor_http2_needs_h2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "h2", None)  # what find_spec reports for a missing package
    with pytest.raises(SystemExit) as exc:
        cli.main(["doctor", "--http2"])
    assert exc.value.code == 2
    assert "--http2 needs the h2 package" in capsys.readouterr().err


def test_doctor_data_file_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.json"
    assert cli.main(["doctor", "http://127.0.0.1:9/", "-d", f"@{missing}"]) == 2
    assert f"--data @{missing}: No such file or directory" in capsys.readouterr().err


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


@pytest.mark.parametrize(
    ("stats", "counters"),
    [
        (None, "none"),
        # The counters that say why, zeros left out.
        (
            {"drains_started": 3, "connections_kept": 0, "drain_errors": 3},
            "drains_started=3, drain_errors=3",
        ),
    ],
)
def test_a_transport_that_does_not_help_is_a_problem(
    stats: dict[str, int] | None, counters: str
) -> None:
    probe_passes = passes(0.01, drain_connections=3)
    probe_passes["drain"].stats = stats
    found = _doctor._findings(probe_passes, _doctor.Options())
    assert [f.id for f in found] == ["not_fixed"]
    assert found[0].message.endswith(f"drain counters: {counters})")


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


def until_ctrl_c(then: Callable[[], object]) -> SimpleNamespace:
    """A stand-in for the ``time`` module of the CLI: replay's wait for a signal runs ``then``
    (the test's requests) and ends as Ctrl-C ends it, in process and without a real signal."""

    def sleep(seconds: float) -> None:
        then()
        raise KeyboardInterrupt

    return SimpleNamespace(sleep=sleep)


def read_into(received: bytearray, response: httpx.Response) -> None:
    for data in response.iter_raw():
        received.extend(data)


def test_replay_truncated_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received = bytearray()
    started: list[str] = []

    def requests() -> None:
        out, err = capsys.readouterr()
        started.append(err)
        url = out.strip()  # the URL, alone on stdout
        with httpx.Client() as client, client.stream("POST", url + CHAT) as response:
            assert response.status_code == 202
            with pytest.raises(httpx.RemoteProtocolError):  # closed in the middle of a chunk
                read_into(received, response)

    monkeypatch.setattr(cli, "time", until_ctrl_c(requests))
    argv = ["replay", "--truncate", "--status", "202", "--keep-alive-timeout", "50ms", "-q"]
    assert cli.main(argv) == 0
    # The last event, data: [DONE], cut in half.
    assert received.endswith(b"data: [")
    assert (
        "replaying openai-chat, 5 events, terminator 0 ms after the last event; truncated "
        "before the last event, status 202, keep-alive timeout 50 ms on raw at http://127.0.0.1:"
    ) in started[0]
    assert "served 1 request on 1 connection" in capsys.readouterr().err


def test_replay_reports_errors_while_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    # replay ends by a signal, never normally, so the server's own raise-on-exit never fires:
    # an error while serving (here: its log line cannot be written) must still fail the run.
    test_thread = threading.current_thread()

    class ServerCannotLog(io.StringIO):
        def write(self, text: str) -> int:
            if threading.current_thread() is not test_thread:
                raise OSError("stderr is gone")
            return super().write(text)

    out, err = io.StringIO(), ServerCannotLog()

    def requests() -> None:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(out.getvalue().strip() + CHAT)

    monkeypatch.setattr(cli, "time", until_ctrl_c(requests))
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["replay"]) == 1
    assert "the server failed while serving: OSError('stderr is gone')" in err.getvalue()


def test_replay_into_a_closed_pipe_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `httpx-drain replay | true`: the URL cannot be printed; that is no listening failure.
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "time", until_ctrl_c(lambda: pytest.fail("replay went on")))
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["replay"]) == 1
    assert capsys.readouterr().err == ""


def test_replay_port_in_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "time", until_ctrl_c(lambda: pytest.fail("replay started")))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["replay", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}: " in capsys.readouterr().err


def test_fixed_port_is_undone() -> None:
    # replay points the servers at a port by replacing a function of theirs: only for the block.
    from httpx_drain.testing import _hypercorn, _raw

    modules = (_raw, _hypercorn)
    originals = [module.listening_socket for module in modules]
    port = free_port()
    with cli._fixed_port(port), RawServer(CHAT_SCENARIO) as server:
        assert server.port == port
    assert [module.listening_socket for module in modules] == originals
    with cli._fixed_port(0):  # any free port: nothing replaced
        assert [module.listening_socket for module in modules] == originals


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


def test_closed_stdout_ends_quietly() -> None:
    # As `httpx-drain demo | head -1` once head has exited: no traceback, no noise.
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first write fails with EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "httpx_drain", "demo", "-n", "1"],
            check=False,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=50,
            env=cli_env(PYTHONUNBUFFERED="1"),  # so the first print writes at once
        )
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (1, "")
