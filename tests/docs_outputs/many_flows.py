"""Runs pytest on a generated repository of 150 flows and 500 tasks that no test runs (50 modules of 3
flows and 10 tasks each), for the terminal report docs/coverage.md shows: `python many_flows.py`."""

import subprocess
import sys
import tempfile
from pathlib import Path

TASK = """
@task
def step_{i}_{t}(rows):
    return rows
"""
FLOW = """
@flow(name="pipeline-{i}-{f}")
def pipeline_{i}_{f}(rows):
    return step_{i}_0(rows)
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as root:
        flows = Path(root, "flows")
        flows.mkdir()
        for i in range(50):
            code = "from prefect import flow, task\n" + "".join(TASK.format(i=i, t=t) for t in range(10))
            code += "".join(FLOW.format(i=i, f=f) for f in range(3))
            (flows / f"pipeline_{i:03}.py").write_text(code)
        Path(root, "pytest.ini").write_text("[pytest]\nprefect_flow_paths = flows\n")
        Path(root, "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        return subprocess.run(command, cwd=root, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
