"""Cost of sending run logs to the isolated API, per flow run, inside a pytest session.

    python benchmarks/api_logs.py [--runs 60] [--rounds 2]

Runs pytest sessions of one test that runs a 3-task flow (each task and the flow log one line,
besides the engine's own lines) `--runs` times and times each `run_flow` call, in three modes,
alternated `--rounds` times so a busy machine weighs on each alike:

* `off`: `PREFECT_LOGGING_TO_API_ENABLED=false` (what the plugin did before: logs only in memory);
* `api`: Prefect's default, as under `prefect_test_harness()`: logs queued to Prefect's log worker,
  sent in batches by its thread and stored by the API;
* `api+flush`: as `api`, and the test waits after each run until its logs are stored
  (`APILogHandler().flush()`), the cost of logs being readable the moment a run returns.

Prints the median and mean per flow run of each mode and the difference to `off`.
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

TEST = """
import json
import os
import time

from prefect import flow, get_run_logger, task
from prefect.logging.handlers import APILogHandler

@task
def extract(x):
    get_run_logger().info("extract %s", x)
    return x

@task
def transform(x):
    get_run_logger().info("transform %s", x)
    return x * 2

@task
def load(x):
    get_run_logger().info("load %s", x)
    return x

@flow
def three_tasks(x: int) -> int:
    get_run_logger().info("flow %s", x)
    return load(transform(extract(x)))

def test_runs(run_flow):
    flush = os.environ["BENCH_FLUSH"] == "1"
    wall, cpu = [], []
    for x in range(int(os.environ["BENCH_RUNS"]) + 5):
        start, start_cpu = time.perf_counter(), time.process_time()
        assert run_flow(three_tasks, x).result() == 2 * x
        if flush:
            APILogHandler().flush()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    with open(os.environ["BENCH_OUT"], "w") as out:
        json.dump({"wall": wall[5:], "cpu": cpu[5:]}, out)  # the first runs warm up engine and server
"""

MODES = {
    "off": {"PREFECT_LOGGING_TO_API_ENABLED": "false", "BENCH_FLUSH": "0"},
    "api": {"BENCH_FLUSH": "0"},
    "api+flush": {"BENCH_FLUSH": "1"},
}


def run_session(directory: Path, mode: str, runs: int) -> dict[str, list[float]]:
    out = directory / f"{mode}.json"
    env = {**os.environ, "BENCH_RUNS": str(runs), "BENCH_OUT": str(out)}
    env.pop("PREFECT_LOGGING_TO_API_ENABLED", None)
    env.update(MODES[mode])
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    subprocess.run([*command, "test_bench.py"], cwd=directory, env=env, check=True, capture_output=True)
    seconds: dict[str, list[float]] = json.loads(out.read_text())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    timings: dict[str, dict[str, list[float]]] = {mode: {"wall": [], "cpu": []} for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "test_bench.py").write_text(TEST)
        for _ in range(args.rounds):
            for mode in MODES:
                for kind, seconds in run_session(directory, mode, args.runs).items():
                    timings[mode][kind] += seconds
    print(f"{args.rounds} x {args.runs} runs of a 3-task flow per mode (ms per flow run, median)")
    print("CPU time is the process's, all threads (the server's and the log worker's included).")
    base = {kind: statistics.median(timings["off"][kind]) for kind in ("wall", "cpu")}
    for mode, kinds in timings.items():
        wall, cpu = statistics.median(kinds["wall"]), statistics.median(kinds["cpu"])
        print(
            f"{mode:10} wall {wall * 1000:6.1f} ({(wall - base['wall']) * 1000:+6.1f} vs off)   "
            f"cpu {cpu * 1000:6.1f} ({(cpu - base['cpu']) * 1000:+6.1f} vs off)"
        )


if __name__ == "__main__":
    main()
