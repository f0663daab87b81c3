"""Cold start: from an empty template cache to the first flow's result, beyond `import prefect`.

    python benchmarks/cold_start.py [--repeat 3]

Each measurement runs in a new Python process (so Prefect's server modules are imported cold, as
in a new CI job) which imports `prefect`, then starts the clock and:

* **shipped template** (the default): takes the template database shipped in the package for the
  installed Prefect into an empty cache directory, starts the isolated backend on a copy of it and
  runs a 3-task flow;
* **built template**: the same with `PYTEST_PREFECT_FLOWS_TEMPLATE=build`, which builds the template
  (Prefect's migrations through the synchronous sqlite3 driver, block registration) in a
  subprocess, as a Prefect release without a shipped template does;
* **warm cache**: the same with the template already in the cache (every session after the first);
* **native**: enters `prefect_test_harness()` (it migrates a new database and starts a server
  subprocess) and runs the same flow.

For the plugin's cases it also prints when the backend was ready and how long the first flow took,
and, in another new process, the shipped case's steps one after the other (template, import of
Prefect's server, server start, first flow) to show where the rest of the time goes. Prints
medians of `--repeat` runs, the ratios, and the load average before and after: the numbers are only
comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._suites import THREE_TASK_FLOWS  # noqa: E402

CHILD = r"""
import json, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-benchmark-home-")
import prefect
{flows}
how, cache = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if how == "phases":  # the shipped case one step after the other, each step timed
    from pytest_prefect_flows import backend as harness
    from pytest_prefect_flows.recording import record_runs
    from pytest_prefect_flows.runner import no_events
    phases = {{}}
    with harness.IsolatedBackend(template_dir=Path(cache)) as backend:
        backend.activate()
        mark = time.perf_counter()
        harness.template_database(Path(cache))
        phases["template into the empty cache"] = time.perf_counter() - mark
        mark = time.perf_counter()
        import prefect.server.api.server
        phases["import prefect.server.api.server"] = time.perf_counter() - mark
        mark = time.perf_counter()
        backend.ensure_started()
        phases["copy, FastAPI app, uvicorn, lifespan, first answer"] = time.perf_counter() - mark
        mark = time.perf_counter()
        with record_runs(), no_events():
            assert three_tasks() == 6
        phases["first 3-task flow"] = time.perf_counter() - mark
    print(json.dumps(phases))
    sys.exit(0)
if how == "native":
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness():
        ready = time.perf_counter() - start
        result = three_tasks()
        elapsed = time.perf_counter() - start
else:
    from pytest_prefect_flows import backend as harness
    from pytest_prefect_flows.recording import record_runs
    from pytest_prefect_flows.runner import no_events
    with harness.IsolatedBackend(template_dir=Path(cache)) as backend:
        backend.activate()
        backend.ensure_started()  # in a session: on the first flow's first request
        ready = time.perf_counter() - start
        with record_runs(), no_events():
            result = three_tasks()
        elapsed = time.perf_counter() - start
assert result == 6, result
print(json.dumps({{"seconds": elapsed, "ready": ready}}))
"""

SHIPPED = "shipped template (default)"
CASES = {  # name: (child's case, template source, warm cache)
    SHIPPED: ("plugin", "auto", False),
    "built template (PYTEST_PREFECT_FLOWS_TEMPLATE=build)": ("plugin", "build", False),
    "warm cache (template already cached)": ("plugin", "auto", True),
    "native prefect_test_harness": ("native", "", False),
}


def run_child(how: str, cache: str, source: str = "") -> dict[str, float]:
    env = {**os.environ, "PYTEST_PREFECT_FLOWS_TEMPLATE": source}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), flows=THREE_TASK_FLOWS), how, cache],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{how} ({source or 'default'}) failed:\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def run_case(name: str, warm_cache: str) -> dict[str, float]:
    how, source, warm = CASES[name]
    if warm:
        return run_child(how, warm_cache, source)
    with tempfile.TemporaryDirectory(prefix="pytest-prefect-flows-cold-") as cache:
        return run_child(how, cache, source)


def materialise_seconds(repeat: int) -> float | None:
    """Median time to decompress the installed Prefect's shipped template into a new file."""
    import prefect

    from pytest_prefect_flows.backend import shipped

    ready_made = shipped.shipped_template(prefect.__version__)
    if ready_made is None:
        return None
    samples = []
    with tempfile.TemporaryDirectory(prefix="pytest-prefect-flows-cold-") as scratch:
        for attempt in range(max(repeat, 5)):
            start = time.perf_counter()
            shipped.materialise(ready_made, Path(scratch) / f"{attempt}.db")
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    import prefect

    print(
        f"prefect {prefect.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"median of {args.repeat} run(s) each; load average before: {load()}"
    )
    print("The machine may be shared with other work: compare the ratios, not the seconds.")
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in CASES}
    phases: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="pytest-prefect-flows-warm-") as warm_cache:
        run_child("plugin", warm_cache)  # fills the warm cache, not measured
        for _ in range(args.repeat):
            for name in CASES:  # interleaved, so that load changes hit every case
                samples[name].append(run_case(name, warm_cache))
            with tempfile.TemporaryDirectory(prefix="pytest-prefect-flows-cold-") as cache:
                phases.append(run_child("phases", cache))

    def median(name: str, key: str) -> float:
        return statistics.median(sample[key] for sample in samples[name])

    shipped = median(SHIPPED, "seconds")
    print()
    print(
        "| empty cache to first flow result (beyond `import prefect`) | backend ready, s "
        "| first flow, s | total, s | ratio to shipped |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in CASES:
        ready, total = median(name, "ready"), median(name, "seconds")
        print(f"| {name} | {ready:.2f} | {total - ready:.2f} | {total:.2f} | {total / shipped:.1f}x |")
    print()
    print("| where the shipped cold start goes (the steps one after the other) | seconds |")
    print("|---|---:|")
    for step in phases[0]:
        print(f"| {step} | {statistics.median(sample[step] for sample in phases):.2f} |")
    decompress = materialise_seconds(args.repeat)
    if decompress is None:
        print(f"\nno template is shipped for prefect {prefect.__version__}: the default case built it")
    else:
        print(f"\ndecompress the shipped template alone (warm file cache): {decompress * 1000:.0f} ms")
    print()
    everything = {
        name: [round(sample["seconds"], 2) for sample in values] for name, values in samples.items()
    }
    print(f"load average after: {load()} (all runs: {json.dumps(everything)})")


if __name__ == "__main__":
    main()
