"""Docs scripts that start their own backend, run as the scripts they are, in a process of their own.

The docs' blocks run inside the suite's process (tests/docs_blocks.py), where the plugin's backend
already serves Prefect's in-process API server. A second `IsolatedBackend` there shares that
server's process-wide state (its database engine, its events distributor) and leaves the suite's
backend failing. So such a block is marked `<!-- not-run -->` on its page and run here instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.docs_blocks import not_run_blocks

ROOT = Path(__file__).parents[2]


def _script(page: str, marker: str) -> str:
    [block] = [block for block in not_run_blocks(ROOT / page) if marker in block]
    return block


def test_events_without_pytest_script() -> None:
    script = _script("docs/events.md", "IsolatedBackend()")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert (
        "inventory.stock.low         inventory.sku.apple  {'on_hand': 3, 'reorder_point': 10}"
        in result.stdout
    )
    assert "run-deployment 'reorder-stock' with parameters {'sku': 'apple'}" in result.stdout
