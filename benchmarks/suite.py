"""Whole suite: `example_flows/tests` on Prefect's own test harness and on pytest-prefect-flows.

    python benchmarks/suite.py [--repeat 1] [--durations 0] [--dry-run]

Every case is one new `python -m pytest example_flows/tests -p no:cacheprovider -q` process, timed
by its wall clock (interpreter start to exit, as a CI step sees it), with its own empty
`PREFECT_HOME` and no `PYTEST_ADDOPTS`:

* **native prefect_test_harness**: the same test files, fixtures and assertions, with the backend
  swapped for Prefect's own: `-p benchmarks._native_server` enters `prefect_test_harness()` for the
  session (Prefect migrates a new SQLite database and starts a `prefect server` subprocess with its
  services) and sets `prefect_backend = server:<its URL>`. The reference tests use the plugin's
  fixtures (`run_flow`, `prefect_events`, `fail_task`, ...), so they cannot run with
  `-p no:prefect_flows`; this is what a suite gets from Prefect alone, plus the plugin's
  client-side work (run records, recorded retry delays instead of sleeps), which both columns pay.
  A suite written for Prefect alone would also sleep its retry delays. Native keeps no cache
  between sessions (every session migrates a new database), so one native column serves both the
  warm and the cold ratio; its `PYTEST_PREFECT_FLOWS_CACHE` is a new empty directory, and the
  script stops if the session left anything there (it would not have measured Prefect's backend);
* **plugin, warm cache**: the plugin's isolated backend with its template database already built
  (`PYTEST_PREFECT_FLOWS_CACHE` pointed at a directory the first cold case filled);
* **plugin, cold cache**: the same with `PYTEST_PREFECT_FLOWS_CACHE` pointed at a new empty
  directory, as in a CI job that does not cache it: the session builds the template first;
* **plugin, warm cache, -n 2**: the warm case under pytest-xdist with 2 workers (each worker
  starts its own backend); compared with the serial warm case.

No case clears Python's bytecode cache or the OS page cache: both columns run equally warm there.
Prints the median wall seconds of `--repeat` runs (cases interleaved, so that load changes hit
each), pytest's own session seconds, the outcome counts (the same tests must run in every case),
the ratios, the Prefect/Python versions, the CPU count and the load average before and after.
`--durations N` also prints the N slowest test phases of the last warm serial run.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = "example_flows/tests"
PYTEST = [sys.executable, "-m", "pytest", SUITE, "-p", "no:cacheprovider", "-q"]
NATIVE = "native prefect_test_harness"
COLD = "plugin, cold cache"
WARM = "plugin, warm cache"
PARALLEL = "plugin, warm cache, -n 2"

# Environment a developer's shell may hold that would change what the sessions do.
_REMOVED_ENV = ("PYTEST_ADDOPTS", "PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE")

# Extras the reference suite needs in full: module -> what the suite skips without it.
EXTRAS = {
    "prefect_dask": "example_flows/tests/test_dask_flow.py (install the `dask` extra)",
    "syrupy": "example_flows/tests/test_snapshots.py (install the `snapshot` extra)",
}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # after PYTEST
    cache: str  # "warm", "cold" or "unused" (a new empty directory that must stay empty)

    def command(self) -> list[str]:
        return [*PYTEST, *self.args]


@dataclasses.dataclass(frozen=True)
class Outcome:
    wall: float  # seconds, process start to exit
    session: float  # seconds, pytest's own "in N s" (from collection to the summary)
    counts: dict[str, int]  # "passed", "skipped", "failed", ...
    output: str


def cases(parallel: bool) -> list[Case]:
    found = [
        Case(NATIVE, ("-p", "benchmarks._native_server"), "unused"),
        Case(COLD, (), "cold"),
        Case(WARM, (), "warm"),
    ]
    if parallel:
        found.append(Case(PARALLEL, ("-n", "2"), "warm"))
    return found


def environment(home: Path, cache: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _REMOVED_ENV}
    env["PREFECT_HOME"] = str(home)  # not ~/.prefect
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # native's server would phone home
    env["PYTEST_PREFECT_FLOWS_CACHE"] = str(cache)
    return env


_SUMMARY = re.compile(r"^=*\s*(?P<counts>\d+ \w+.*) in (?P<seconds>[\d.]+)s", re.MULTILINE)


def parse_summary(output: str) -> tuple[dict[str, int], float]:
    """Outcome counts and seconds of pytest's last summary line (`1 failed, 73 passed in 92.45s`)."""
    matches = list(_SUMMARY.finditer(output))
    if not matches:
        raise ValueError("no pytest summary line")
    last = matches[-1]
    counts = {}
    for part in last["counts"].split(","):
        number, _, word = part.strip().partition(" ")
        counts[word.rstrip("s") if word in ("errors", "warnings") else word] = int(number)
    return counts, float(last["seconds"])


def run_case(case: Case, cache: Path, extra: Sequence[str] = ()) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="pytest-prefect-flows-suite-home-") as home:
        command = [*case.command(), *extra]
        start = time.perf_counter()
        completed = subprocess.run(
            command,
            cwd=ROOT,
            env=environment(Path(home), cache),
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
    output = completed.stdout + completed.stderr
    try:
        counts, session = parse_summary(completed.stdout)
    except ValueError:
        raise SystemExit(
            f"{case.name}: `{shlex.join(command)}` exited {completed.returncode} without a test "
            f"summary; its output ends:\n{output[-3000:]}"
        ) from None
    if completed.returncode not in (0, 1):  # 1: some tests failed, reported below the table
        raise SystemExit(
            f"{case.name}: pytest exited {completed.returncode}; its output ends:\n{output[-3000:]}"
        )
    if case.cache == "unused" and any(cache.iterdir()):
        raise SystemExit(
            f"{case.name} used the plugin's template cache ({sorted(p.name for p in cache.iterdir())}): "
            "it would not measure Prefect's own backend; check benchmarks/_native_server.py"
        )
    return Outcome(wall, session, counts, completed.stdout)


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{number} {word}" for word, number in counts.items())


def failed_tests(output: str) -> list[str]:
    return re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)


def missing_extras() -> list[str]:
    return [skipped for module, skipped in EXTRAS.items() if importlib.util.find_spec(module) is None]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case; the table shows medians")
    parser.add_argument(
        "--durations", type=int, default=0, help="print the N slowest test phases of the last warm serial run"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat takes a number of runs, 1 or more; got {args.repeat}")

    parallel = importlib.util.find_spec("xdist") is not None
    plan = cases(parallel)
    if args.dry_run:
        for case in plan:
            cache = {
                "warm": "<built by the first cold case>",
                "cold": "<new empty directory>",
                "unused": "<new empty directory, must stay empty>",
            }[case.cache]
            print(
                f"{case.name}: PYTEST_PREFECT_FLOWS_CACHE={cache} PREFECT_HOME=<new empty directory> "
                + shlex.join(case.command())
            )
        return

    import prefect

    load_before = os.getloadavg()
    print(
        f"prefect {prefect.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"median of {args.repeat} run(s) each; load average before: "
        + ", ".join(f"{value:.2f}" for value in load_before)
    )
    print("The machine may be shared with other work: compare the ratios, not the seconds.")
    for skipped in missing_extras():
        print(f"not installed, so every case skips {skipped}")
    if not parallel:
        print("pytest-xdist is not installed: no -n 2 case (install the `dev` extra)")

    caches = Path(tempfile.mkdtemp(prefix="pytest-prefect-flows-suite-cache-"))
    warm_cache = caches / "warm"  # filled by the first cold case
    outcomes: dict[str, list[Outcome]] = {case.name: [] for case in plan}
    try:
        for repeat in range(args.repeat):
            for case in plan:  # interleaved, so that load changes hit every case
                if case.cache == "warm" or (case.cache == "cold" and repeat == 0):
                    cache = warm_cache
                else:
                    cache = Path(tempfile.mkdtemp(dir=caches))
                last_warm = case.name == WARM and repeat == args.repeat - 1
                extra = [f"--durations={args.durations}"] if last_warm and args.durations else []
                outcome = run_case(case, cache, extra)
                outcomes[case.name].append(outcome)
                print(f"  {case.name}: {outcome.wall:.1f} s ({describe(outcome.counts)})", flush=True)
    finally:
        shutil.rmtree(caches, ignore_errors=True)

    wall = {name: statistics.median(o.wall for o in runs) for name, runs in outcomes.items()}
    session = {name: statistics.median(o.session for o in runs) for name, runs in outcomes.items()}
    print()
    print("| `pytest example_flows/tests` | wall (s) | pytest's session (s) | tests | native / this |")
    print("|---|---:|---:|---|---:|")
    for name, runs in outcomes.items():
        print(
            f"| {name} | {wall[name]:.1f} | {session[name]:.1f} | {describe(runs[-1].counts)} "
            f"| {wall[NATIVE] / wall[name]:.1f}x |"
        )
    print()
    print(f"native / plugin, warm cache: {wall[NATIVE] / wall[WARM]:.1f}x (target 8x)")
    print(f"native / plugin, cold cache: {wall[NATIVE] / wall[COLD]:.1f}x (target 5x)")
    if PARALLEL in wall:
        print(f"plugin serial / plugin -n 2 (warm): {wall[WARM] / wall[PARALLEL]:.2f}x (target 1.6x)")
    for name, runs in outcomes.items():
        failed = sorted({test for outcome in runs for test in failed_tests(outcome.output)})
        if failed:
            print(f"failed in {name} (the time still counts): {', '.join(failed)}")
    if args.durations:
        durations = outcomes[WARM][-1].output.partition("slowest")[2].partition("\n\n")[0]
        print(f"\nslowest {args.durations} test phases of the last warm serial run:{durations}")
    print()
    print(
        "load average after: "
        + ", ".join(f"{value:.2f}" for value in os.getloadavg())
        + " (all runs, wall s: "
        + "; ".join(f"{name}: {', '.join(f'{o.wall:.1f}' for o in runs)}" for name, runs in outcomes.items())
        + ")"
    )


if __name__ == "__main__":
    main()
