"""Every example in examples/ (which the docs include) runs against the embedded server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
SDKS = {"openai", "anthropic", "mcp"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(example: Path) -> None:
    text = example.read_text()
    needs = {sdk for sdk in SDKS if f"import {sdk}" in text or f"from {sdk} " in text}
    for sdk in needs:
        pytest.importorskip(sdk)
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "connection" in result.stdout or "ms" in result.stdout
