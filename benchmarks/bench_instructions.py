"""Per-chunk cost in instructions, which a machine shared with other work cannot blur.

The per-chunk CPU times of ``bench_overhead`` scatter by ±10 % on a busy machine, more than
the 3-5 % being measured. This counts the instructions the client executes instead, with
valgrind's cachegrind: the same in-memory-stream source as ``bench_overhead`` (httpx's or
httpx2's own transport, httpcore's pool and h11's chunk parsing over ``MockBackend``), read
once with ``N1`` and once with ``N2`` 1 KiB chunks; the difference divided by ``N2 - N1``
cancels start-up and imports. The hash seed is fixed, so a count repeats exactly. Needs
``valgrind`` on PATH (skipped, saying so, without it); about 20 s a run.

    python -m benchmarks.bench_instructions [--json out.json]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Any

from . import _common

SIZES = (1024, 5120)
CLIENTS = ("bare", "ours, scanning off", "ours, scanning on")


def _child(flavour: str, client: str, chunks: int) -> None:
    """Read ``chunks`` events through one client (run under valgrind by :func:`measure`)."""
    from . import bench_overhead as overhead

    for name, lib, core, drain in overhead._flavours():
        if name != flavour:
            continue
        inner = overhead._parse_transport(lib, core, overhead._reads(chunks))
        transport = inner if client == "bare" else drain(inner, sse=client.endswith("on"))
        with lib.Client(transport=transport) as c:
            n = overhead._read_all(c, "http://bench.invalid/")
        if n != chunks * overhead.CHUNK:
            raise SystemExit(f"read {n} bytes, expected {chunks * overhead.CHUNK}")


def _instructions(flavour: str, client: str, chunks: int) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.bench_instructions",
        "--child",
        flavour,
        client,
        str(chunks),
    ]
    # A fixed hash seed: with a random one, set and dict layouts (and so the counts) move by a
    # few hundred instructions a chunk from run to run, as much as the margins being measured.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    match = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{result.stderr}")
    return int(match.group(1).replace(",", ""))


def measure() -> list[dict[str, Any]]:
    """Instructions per chunk of each client, per flavour; [] without valgrind."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts")
        return []
    from . import bench_overhead as overhead

    rows: list[dict[str, Any]] = []
    small, large = SIZES
    for flavour, *_ in overhead._flavours():
        per_chunk = {}
        for client in CLIENTS:
            counts = [_instructions(flavour, client, n) for n in SIZES]
            per_chunk[client] = (counts[1] - counts[0]) / (large - small)
        bare = per_chunk["bare"]
        for client, value in per_chunk.items():
            rows.append(
                {
                    "flavour": flavour,
                    "client": client,
                    "instructions_per_chunk": round(value),
                    "extra_per_chunk": round(value - bare),
                    "ratio": round(value / bare, 4),
                }
            )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print("Per-chunk instructions (cachegrind), 1 KiB chunks, in-memory stream")
    print(f"{'flavour':<7} {'client':<19} {'instr/chunk':>11} {'extra':>7} {'ratio':>7}")
    for r in rows:
        print(
            f"{r['flavour']:<7} {r['client']:<19} {r['instructions_per_chunk']:>11} "
            f"{r['extra_per_chunk']:>7} {r['ratio']:>7.3f}"
        )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        _child(args[1], args[2], int(args[3]))
        return
    parser = _common.parser(__doc__)
    options = parser.parse_args(args)
    rows = measure()
    if rows:
        print_rows(rows)
    _common.write_json(rows, options.json)


if __name__ == "__main__":
    main()
