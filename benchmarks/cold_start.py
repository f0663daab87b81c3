"""Cold start: from an empty template cache to the first flow's result, beyond `import prefect`.

    python benchmarks/cold_start.py [--repeat 1]

Each measurement runs in a new Python process (so Prefect's server modules are imported cold, as
in a new CI job) which imports `prefect`, then starts the clock and:

* **fast template**: builds the template database into an empty cache directory the way every
  session does now (Prefect's migrations through the synchronous sqlite3 driver), starts the
  isolated backend on a copy of it and runs a 3-task flow;
* **migrated template**: the same, with the template built by Prefect's own migration path (what
  the plugin did before);
* **native**: enters `prefect_test_harness()` (it migrates a new database and starts a server
  subprocess) and runs the same flow.

Prints the seconds of each (median of `--repeat` runs), the ratios, and the machine's load average
before and after: the numbers are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-benchmark-home-")
import prefect
from prefect import flow, task

@task
def step(x):
    return x + 1

@flow
def three_tasks():
    return sum(step(i) for i in range(3))

how, cache = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if how == "native":
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness():
        result = three_tasks()
        elapsed = time.perf_counter() - start
else:
    import functools
    from pytest_prefect_flows import backend as harness
    from pytest_prefect_flows.backend import template
    template._build_template = functools.partial(template._build_template, how=how)
    from pytest_prefect_flows.recording import record_runs
    from pytest_prefect_flows.runner import no_events
    with harness.IsolatedBackend(template_dir=Path(cache)) as backend:
        backend.activate()
        backend.ensure_started()  # in a session: on the first flow's first request
        with record_runs(), no_events():
            result = three_tasks()
        elapsed = time.perf_counter() - start
assert result == 6, result
print(json.dumps({{"seconds": elapsed}}))
"""

CASES = {
    "fast template (now)": "auto",
    "migrated template (before)": "migrations",
    "native prefect_test_harness": "native",
}


def run_case(how: str) -> float:
    with tempfile.TemporaryDirectory(prefix="pytest-prefect-flows-cold-") as cache:
        completed = subprocess.run(
            [sys.executable, "-c", CHILD.format(root=str(ROOT)), how, cache],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
    if completed.returncode != 0:
        raise SystemExit(f"{how} failed:\n{completed.stderr[-3000:]}")
    return float(json.loads(completed.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    import prefect

    load_before = os.getloadavg()
    print(
        f"prefect {prefect.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"median of {args.repeat} run(s) each; load average before: "
        + ", ".join(f"{value:.2f}" for value in load_before)
    )
    print("The machine may be shared with other work: compare the ratios, not the seconds.")
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeat):
        for name, how in CASES.items():  # interleaved, so that load changes hit every case
            samples[name].append(run_case(how))
    seconds = {name: statistics.median(values) for name, values in samples.items()}

    fast = seconds["fast template (now)"]
    print()
    print("| empty cache to first flow result (beyond `import prefect`) | seconds | ratio to fast |")
    print("|---|---:|---:|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.2f} | {value / fast:.1f}x |")
    print()
    print(
        "load average after: "
        + ", ".join(f"{value:.2f}" for value in os.getloadavg())
        + f" (all runs: {json.dumps({k: [round(v, 2) for v in vs] for k, vs in samples.items()})})"
    )


if __name__ == "__main__":
    main()
