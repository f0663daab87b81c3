"""Inside pytest: the figures users meet, each side by side with native Prefect in the same run.

    python benchmarks/session.py [--only per-flow,session,suite] [--runs 40] [--flows 25] [--tests 480]
                                 [--parallel "-n 2 --dist worksteal"] [--profile]

Every case is a new `python -m pytest` process on a generated suite in a temporary directory, with
Prefect's default logging (INFO, its console handler under pytest's capture: no
`PREFECT_LOGGING_LEVEL`) and the plugin's run records on, as a user's suite runs:

* **per-flow**: one test runs a 3-task flow `--warmup` times, then `--runs` times, timing each call
  inside the test; the median in ms. Native is the same test file with `-p no:prefect_flows` and a
  session-scoped `prefect_test_harness()` fixture; the plugin's session also checks that every run
  was recorded (`prefect_runs`). `--profile` also writes a cProfile of the plugin's timed runs.
* **session**: `--flows` tests (5 modules), each running the 3-task flow once; the wall time of
  the whole process (start to exit), native against the plugin with a warm template cache and
  with an empty one (cold: a CI job without a cache).
* **suite**: `--tests` tests (in modules of 20), each running the 3-task flow once through
  `run_flow`; the plugin serial against `--parallel` (pytest-xdist), both warm; per test, the
  session's seconds divided by the tests, and, from the serial session's own durations, the median
  time from one test's end to the next's against the median time in the test function: the
  difference is the per-test cost beyond the flow (scope setup, recording, cleanup, pytest).

Prints medians, ratios, the CPU count and the load average before and after: the machine may be
shared, so compare within one run. The child processes may write bytecode (a user's Python caches
that of their test modules), and the script warns when Prefect itself was installed without it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._suites import NATIVE_HARNESS_FIXTURE, THREE_TASK_FLOWS  # noqa: E402

FLOWS = THREE_TASK_FLOWS

CONFTEST = (
    """
import os

import pytest

"""
    + NATIVE_HARNESS_FIXTURE
    + """

@pytest.fixture
def records(request):
    return None if os.environ.get("BENCH_NATIVE") else request.getfixturevalue("prefect_runs")


_CALLS, _TESTS, _LAST = [], [], []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _CALLS.append(report.duration)


def pytest_runtest_logfinish(nodeid, location):
    import time

    now = time.perf_counter()
    if _LAST:
        _TESTS.append(now - _LAST[-1])
    _LAST.append(now)


def pytest_sessionfinish(session):
    if os.environ.get("BENCH_DURATIONS") and _CALLS:
        import json
        import statistics

        with open(os.environ["BENCH_DURATIONS"], "w") as handle:
            json.dump({"call": statistics.median(_CALLS), "test": statistics.median(_TESTS)}, handle)
"""
)

PER_FLOW_TEST = """
import json
import os
import statistics
import time

from flows import three_tasks


def test_per_flow(records):
    warmup, runs = int(os.environ["BENCH_WARMUP"]), int(os.environ["BENCH_RUNS"])
    for _ in range(warmup):
        assert three_tasks() == 6
    profile = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    samples, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        assert three_tasks() == 6
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    if records is not None:
        assert len(records.flow_runs) == warmup + runs, "every run recorded"
    with open(os.environ["BENCH_OUT"], "w") as handle:
        json.dump(
            {
                "median_ms": 1000 * statistics.median(samples),
                "cpu_ms": 1000 * statistics.median(cpu),
                "samples": samples,
            },
            handle,
        )
"""

SESSION_TEST = """
from flows import three_tasks


{tests}
"""

SESSION_CASE = """
def test_flow_{n}():
    assert three_tasks() == 6
"""

SUITE_CASE = """
def test_flow_{n}(run_flow):
    run = run_flow(three_tasks)
    assert run.state_name == "Completed"
"""

_SECONDS = re.compile(r" in (?P<seconds>[\d.]+)s")
_REMOVED_ENV = (
    "PYTEST_ADDOPTS",
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_PROFILE",
    "PREFECT_LOGGING_LEVEL",
    "PYTHONDONTWRITEBYTECODE",  # a user's Python caches the bytecode of the test modules
)


def make_suite(where: Path, modules: dict[str, str]) -> Path:
    where.mkdir(parents=True)
    (where / "flows.py").write_text(FLOWS)
    (where / "conftest.py").write_text(CONFTEST)
    (where / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    for name, text in modules.items():
        (where / name).write_text(text)
    return where


def run_pytest(
    where: Path, *args: str, native: bool = False, cache: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(wall seconds from process start to exit, pytest's own session seconds)."""
    environment = {key: value for key, value in os.environ.items() if key not in _REMOVED_ENV}
    environment.update(env or {})
    environment["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # native's server would phone home
    environment["PYTEST_PREFECT_FLOWS_CACHE"] = str(cache)
    with tempfile.TemporaryDirectory(prefix="prefect-session-bench-home-") as home:
        environment["PREFECT_HOME"] = home  # not ~/.prefect
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
        if native:
            environment["BENCH_NATIVE"] = "1"
            command += ["-p", "no:prefect_flows"]
        start = time.perf_counter()
        done = subprocess.run(
            command, cwd=where, env=environment, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"`{shlex.join(command)}` in {where} exited {done.returncode}:\n"
            f"{done.stdout[-4000:]}{done.stderr[-2000:]}"
        )
    found = _SECONDS.findall(done.stdout.strip().splitlines()[-1])
    return wall, float(found[-1]) if found else float("nan")


def per_flow(tmp: Path, args: argparse.Namespace, warm: Path) -> dict[str, float]:
    suite = make_suite(tmp / "per-flow", {"test_per_flow.py": PER_FLOW_TEST})
    cases = [("native", True, {}), ("plugin", False, {})]
    cases += [(name, False, env) for name, env in args.variant]
    medians, cpu = {}, {}
    for name, native, extra in cases:
        out = tmp / f"per-flow-{len(medians)}.json"
        env = {"BENCH_OUT": str(out), "BENCH_RUNS": str(args.native_runs if native else args.runs)}
        env.update(BENCH_WARMUP=str(args.warmup), **extra)
        if args.profile and name == "plugin":
            env["BENCH_PROFILE"] = str(ROOT / "per-flow.prof")
        run_pytest(suite, native=native, cache=warm, env=env)
        result = json.loads(out.read_text())
        medians[name], cpu[name] = result["median_ms"], result["cpu_ms"]
    print(
        "per flow, 3-task flow inside pytest (default logging, records on): "
        f"plugin {medians['plugin']:.1f} ms, "
        f"native {medians['native']:.1f} ms: {medians['native'] / medians['plugin']:.1f}x "
        f"(median of {args.runs} plugin / {args.native_runs} native runs after {args.warmup} warm-up runs; "
        "targets: at most 50 ms, at least 20x)"
    )
    for name in medians:
        print(f"  {name}: {medians[name]:.1f} ms wall, {cpu[name]:.1f} ms CPU (all threads of the process)")
    if args.profile:
        print(f"  cProfile of the plugin's timed runs: {ROOT / 'per-flow.prof'}")
    return medians


def variant(value: str) -> tuple[str, dict[str, str]]:
    """`NAME:KEY=VALUE,KEY=VALUE`: another plugin row of the per-flow case, with that environment."""
    name, _, assignments = value.partition(":")
    return name, dict(item.split("=", 1) for item in assignments.split(",") if item)


def session(tmp: Path, args: argparse.Namespace, warm: Path) -> None:
    per_module = 5
    modules = {
        f"test_session_{m}.py": SESSION_TEST.format(
            tests="".join(SESSION_CASE.format(n=n) for n in range(m * per_module, (m + 1) * per_module))
        )
        for m in range(args.flows // per_module)
    }
    suite = make_suite(tmp / "session", modules)
    cold = Path(tempfile.mkdtemp(dir=tmp, prefix="cold-cache-"))
    native, _ = run_pytest(suite, native=True, cache=Path(tempfile.mkdtemp(dir=tmp)))
    plugin_cold, _ = run_pytest(suite, cache=cold)
    plugin_warm, _ = run_pytest(suite, cache=warm)
    print(
        f"{len(modules) * per_module}-flow session, wall: native {native:.1f} s, "
        f"plugin warm {plugin_warm:.1f} s ({native / plugin_warm:.1f}x, target 8x), "
        f"cold {plugin_cold:.1f} s ({native / plugin_cold:.1f}x, target 5x)"
    )


def suite(tmp: Path, args: argparse.Namespace, warm: Path, flow_ms: float | None) -> None:
    per_module = 20
    modules = {
        f"test_suite_{m:03d}.py": SESSION_TEST.format(
            tests="".join(SUITE_CASE.format(n=n) for n in range(m * per_module, (m + 1) * per_module))
        )
        for m in range(args.tests // per_module)
    }
    tests = len(modules) * per_module
    where = make_suite(tmp / "suite", modules)
    durations = tmp / "suite-durations.json"
    serial, serial_session = run_pytest(where, cache=warm, env={"BENCH_DURATIONS": str(durations)})
    parallel, _ = run_pytest(where, *shlex.split(args.parallel), cache=warm)
    per_test = 1000 * serial_session / tests
    median = {key: 1000 * value for key, value in json.loads(durations.read_text()).items()}
    print(
        f"{tests}-test suite (one 3-task flow each, through run_flow), wall: serial {serial:.1f} s "
        f"(target 40 s), {args.parallel} {parallel:.1f} s: {serial / parallel:.2f}x (target 1.6x); "
        f"per test {per_test:.0f} ms of pytest's session\n"
        f"  serial, medians per test: {median['test']:.1f} ms from one test's end to the next's, "
        f"{median['call']:.1f} ms in the test function (its flow run through run_flow): "
        f"{median['test'] - median['call']:.1f} ms a test beyond its flow (target 15 ms: setup, "
        "recording, cleanup, pytest's own reports)"
        + (f"; per-flow median of the per-flow case: {flow_ms:.1f} ms" if flow_ms else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="per-flow,session,suite")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--native-runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--flows", type=int, default=25)
    parser.add_argument("--tests", type=int, default=480)
    parser.add_argument("--parallel", default="-n 2 --dist worksteal")
    parser.add_argument(
        "--variant",
        type=variant,
        action="append",
        default=[],
        help="NAME:KEY=VALUE,...: another plugin row of the per-flow case with that environment",
    )
    parser.add_argument(
        "--profile", action="store_true", help="write per-flow.prof (cProfile of the plugin's runs)"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))

    import prefect

    bytecode = Path(importlib.util.cache_from_source(prefect.__file__))
    if not bytecode.exists():
        print(
            f"WARNING: {bytecode} does not exist: Prefect was installed without bytecode (uv does that "
            "unless --compile-bytecode; pip compiles it), so every process below compiles Prefect "
            "from source (about 5 s here) and no figure is what users meet. Run "
            f"`{sys.executable} -m compileall -q {Path(prefect.__file__).parents[1]}` first."
        )
    load_before = os.getloadavg()
    print(
        f"prefect {prefect.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores; "
        "load average before: " + ", ".join(f"{value:.2f}" for value in load_before)
    )
    tmp = Path(tempfile.mkdtemp(prefix="prefect-session-bench-"))
    try:
        warm = tmp / "warm-cache"
        warm.mkdir()
        run_pytest(
            make_suite(tmp / "warm-up", {"test_one.py": SESSION_TEST.format(tests=SESSION_CASE.format(n=0))}),
            cache=warm,
        )
        flow_ms = per_flow(tmp, args, warm)["plugin"] if "per-flow" in only else None
        if "session" in only:
            session(tmp, args, warm)
        if "suite" in only:
            suite(tmp, args, warm, flow_ms)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("load average after: " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))


if __name__ == "__main__":
    main()
