"""nginx in the loop: a reverse proxy with upstream keepalive, as in front of many LLM APIs.

The test starts Debian's nginx with its own config and prefix in a temporary directory, in
front of the replay server. What nginx logs for each request, and the connections the replay
server sees behind it, show what an early close costs on both sides of a proxy: with our
transport, one client connection carries every request and each completes (``OK``); without
it, each request ends as a client abort on its own connection, and nginx drops its upstream
connection too.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from httpx_drain.testing import Gate, RawServer, RequestInfo, Scenario, openai_chat

from .conftest import Flavour, wait_for

N = 5
DONE = b"data: [DONE]"
LINE = re.compile(
    r"conn=(?P<conn>\d+) requests=(?P<requests>\d+) completion=(?P<completion>\S*) "
    r"status=(?P<status>\d+) upstream=(?P<upstream>\S+)"
)


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


NGINX = find_nginx()
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx not found on PATH or in /usr/sbin (apt-get install nginx)"
)

CONFIG = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;  # info: where nginx reports client aborts
{user}
events {{ worker_connections 64; }}

http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    log_format drain 'conn=$connection requests=$connection_requests '
                     'completion=$request_completion status=$status upstream=$upstream_addr';
    access_log {prefix}/access.log drain;

    upstream replay {{
        server 127.0.0.1:{upstream_port};
        keepalive 4;
    }}

    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000;
        location / {{
            proxy_pass http://replay;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


def free_port() -> int:
    # nginx cannot listen on port 0: take a port the OS hands out, and give it back.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_directive() -> str:
    # As root, nginx's workers would drop to "nobody", who cannot enter a private temporary
    # directory. Elsewhere the directive is pointless (nginx ignores it with a warning).
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(os.getegid()).gr_name};"


@dataclass
class Nginx:
    """A running nginx: its URL and logs."""

    url: str
    prefix: Path

    def access_log(self) -> list[dict[str, str]]:
        """The access log's lines, parsed."""
        path = self.prefix / "access.log"
        text = path.read_text() if path.exists() else ""
        return [m.groupdict() for m in map(LINE.match, text.splitlines()) if m is not None]

    def error_log(self) -> str:
        return (self.prefix / "error.log").read_text()


def start(prefix: Path, upstream_port: int) -> tuple[subprocess.Popen[bytes], int]:
    assert NGINX is not None
    port = free_port()
    (prefix / "nginx.conf").write_text(
        CONFIG.format(prefix=prefix, port=port, upstream_port=upstream_port, user=user_directive())
    )
    command = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    # -e: errors from before the config is read go to the temporary directory too.
    command += ["-e", str(prefix / "error.log")]
    with (prefix / "nginx.out").open("wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.01)
        else:
            return process, port
    stop(process)
    logs = [prefix / "nginx.out", prefix / "error.log"]
    text = "".join(path.read_text() for path in logs if path.exists())
    raise RuntimeError(f"nginx did not start on port {port}: {text}")


def stop(process: subprocess.Popen[bytes]) -> None:
    # SIGQUIT: graceful shutdown, workers finish and exit; SIGKILL only if that hangs.
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[int], Nginx]]:
    """Start nginx in front of an upstream port; stopped at the end of the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def run(upstream_port: int) -> Nginx:
        for attempt in range(3):  # the free port may be taken again before nginx binds it
            prefix = tmp_path / f"nginx{attempt}"
            prefix.mkdir()
            try:
                process, port = start(prefix, upstream_port)
            except RuntimeError as exc:
                if "Address already in use" not in str(exc) or attempt == 2:
                    raise
                continue
            processes.append(process)
            return Nginx(f"http://127.0.0.1:{port}", prefix)
        raise AssertionError("unreachable")

    yield run
    for process in processes:
        stop(process)


class LateTerminators:
    """Each response holds its chunked terminator until the test opens that response's gate."""

    def __init__(self, n: int) -> None:
        self.gates = [Gate(f"terminator {i}") for i in range(n)]
        self._requests = 0

    def __call__(self, _request: RequestInfo) -> Scenario:
        self._requests += 1
        return openai_chat(terminator_gate=self.gates[self._requests - 1])


def stream_until_done(client: Any, url: str) -> None:
    with client.stream("POST", f"{url}/v1/chat/completions", content=b"{}") as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            if DONE in chunk:
                break


def test_through_nginx_with_our_transport(flavour: Flavour, nginx: Any) -> None:
    late = LateTerminators(N)
    with RawServer(late) as upstream:
        proxy = nginx(upstream.port)
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            for i in range(N):
                stream_until_done(client, proxy.url)
                late.gates[i].set()  # close() has returned; the drain waits for this
                assert wait_for(lambda i=i: transport.stats.connections_kept == i + 1)
                assert wait_for(lambda i=i: len(proxy.access_log()) == i + 1)
        assert upstream.facts.connection_count == 1
    lines = proxy.access_log()
    assert [line["requests"] for line in lines] == [str(i) for i in range(1, N + 1)]
    assert {line["conn"] for line in lines} == {lines[0]["conn"]}
    assert {(line["completion"], line["status"]) for line in lines} == {("OK", "200")}
    assert "prematurely closed" not in proxy.error_log()


def test_through_nginx_bare(flavour: Flavour, nginx: Any) -> None:
    late = LateTerminators(N)
    with RawServer(late) as upstream:
        proxy = nginx(upstream.port)
        with flavour.lib.Client() as client:
            for i in range(N):
                stream_until_done(client, proxy.url)
                # nginx logs the request once it sees the client gone; only then the end.
                assert wait_for(lambda i=i: len(proxy.access_log()) == i + 1)
                late.gates[i].set()
        assert upstream.facts.connection_count == N
    lines = proxy.access_log()
    assert [line["requests"] for line in lines] == ["1"] * N
    assert len({line["conn"] for line in lines}) == N
    assert {line["completion"] for line in lines} == {""}
    assert proxy.error_log().count("client prematurely closed connection") == N
