"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "median",
    "ms",
    "p99",
    "parser",
    "percentile",
    "sdk_client",
    "time_calls",
    "write_json",
]


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring's first paragraph, and ``--json``."""
    result = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    result.add_argument("--json", help="write the rows here")
    return result


def write_json(rows: Any, path: str | None) -> None:
    """Write ``rows`` to ``path`` as JSON, if a path was given."""
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def p99(values: Sequence[float]) -> float:
    return percentile(values, 99)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def sdk_client(sdk: Any, url: str, kind: str, *, verify: Any = True, **transport: Any) -> Any:
    """An openai or anthropic sync client; ``kind`` is ``"bare"`` or a drain mode.

    With a drain mode, the SDK's default httpx2 client gets our transport, as the README
    shows (so the transport's own pool limits apply: httpx's defaults).
    """
    from httpx_drain.httpx2 import DrainTransport

    if kind == "bare":
        http_client = sdk.DefaultHttpxClient(verify=verify)
    else:
        http_client = sdk.DefaultHttpxClient(
            transport=DrainTransport(mode=kind, verify=verify, **transport)  # type: ignore[arg-type]
        )
    if sdk.__name__ == "openai":
        return sdk.OpenAI(
            base_url=url + "/v1", api_key="sk-bench", max_retries=0, http_client=http_client
        )
    return sdk.Anthropic(base_url=url, api_key="sk-bench", max_retries=0, http_client=http_client)


def time_calls(
    call: Callable[[Any], object], client: Any, n: int, off_cpu: list[float] | None = None
) -> list[float]:
    """Seconds each of ``n`` sequential ``call(client)`` took.

    With ``off_cpu``, also appends to it the seconds of each call that the calling thread
    spent off the CPU (waiting for the network, the GIL or the scheduler): its time less its
    own CPU time. A machine whose speed drifts changes both alike, so this figure holds still
    where the time itself does not.
    """
    times = []
    for _ in range(n):
        started, cpu = time.perf_counter(), time.thread_time()
        call(client)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        if off_cpu is not None:
            off_cpu.append(elapsed - (time.thread_time() - cpu))
    return times
