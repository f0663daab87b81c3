"""Memory over a long suite: RSS of a pytest session running flows through the plugin.

    python benchmarks/memory.py [--tests 1000] [--big 4] [--big-mb 100]

Two generated suites, each run by pytest in a process of its own (the plugin as users load it):

* `--tests` tests, each running a small flow with two tasks through `run_flow` and writing a few
  log lines; prints the session's RSS after test 100 and after the last test (the growth between
  them is what a long suite keeps per test);
* `--big` tests, each running a flow that returns a `--big-mb` MB result; prints RSS after each.

RSS is read from /proc/self/status (VmRSS) in `pytest_runtest_logfinish`, after the test's report
was made, so what the plugin still holds of a finished test counts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONFTEST = """
import pytest

SHOW = {shows}
_seen = [0]

def _rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def pytest_runtest_logfinish(nodeid, location):
    _seen[0] += 1
    if _seen[0] in SHOW:
        print(f"\\nRSS after test {{_seen[0]}}: {{_rss_mb():.1f}} MB", flush=True)
"""

SMALL = """
import pytest
from prefect import flow, get_run_logger, task

@task
def extract(n):
    get_run_logger().info("extracting %s", n)
    return list(range(n))

@task
def load(rows):
    return len(rows)

@flow
def pipeline(n: int = 50):
    get_run_logger().info("starting")
    return load(extract(n))

@pytest.mark.parametrize("n", range({tests}))
def test_pipeline(run_flow, n):
    assert run_flow(pipeline).result() == 50
"""

BIG = """
import pytest
from prefect import flow

@flow
def big():
    return bytearray({mb} * 1024 * 1024)

@pytest.mark.parametrize("n", range({tests}))
def test_big(run_flow, n):
    assert len(run_flow(big).result()) == {mb} * 1024 * 1024
"""


def run_suite(test_module: str, conftest: str) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="prefect-flows-memory-") as tmp:
        Path(tmp, "conftest.py").write_text(conftest)
        Path(tmp, "test_suite.py").write_text(test_module)
        command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "no:randomly"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        completed = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=3600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RSS after test")]
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else completed.stderr
    return [*lines, f"pytest: {summary}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--big", type=int, default=4)
    parser.add_argument("--big-mb", type=int, default=100)
    args = parser.parse_args()

    print(f"{args.tests} tests, each a flow with two tasks:")
    shows = {1, min(100, args.tests), args.tests}
    for line in run_suite(SMALL.format(tests=args.tests), CONFTEST.format(shows=shows)):
        print(f"  {line}")
    print(f"{args.big} tests, each a flow returning {args.big_mb} MB:")
    shows = set(range(1, args.big + 1))
    for line in run_suite(BIG.format(tests=args.big, mb=args.big_mb), CONFTEST.format(shows=shows)):
        print(f"  {line}")


if __name__ == "__main__":
    main()
