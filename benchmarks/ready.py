"""Ready: how long the first flow of a pytest session waits for the backend, and the whole session.

    python benchmarks/ready.py [--repeat 3] [--modules 8] [--native] [--example]

Runs a small generated suite in new pytest processes (warm template cache): `--modules` test
modules that import a flows module and test plain functions, then one module whose test runs a
3-task flow (pytest runs the modules in name order, so the flow runs last, as in many suites):

* **ahead**: `prefect_start = ahead` (the default): Prefect's server is imported during collection
  once a collected module holds a flow;
* **lazy**: `prefect_start = lazy`: the backend starts when the first flow run connects;
* **native** (with `--native`; a minute a session on a loaded machine): `-p no:prefect_flows` and
  a session-scoped `prefect_test_harness()` fixture.

For each it prints the median over `--repeat` sessions of: how long the first flow waited for the
isolated backend (the plugin's own measurement, printed with `-v`), the time from the session's
start to the first flow's result, and the session's wall time (process start to exit). With
`--example` it also runs `example_flows/tests` in the plugin's two modes.

The machine's load average is printed before and after: compare within one run, not across runs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._suites import NATIVE_HARNESS_FIXTURE, THREE_TASK_FLOWS  # noqa: E402

FLOWS = THREE_TASK_FLOWS + "\n\ndef plain(x):\n    return x * 2\n"

UNIT_MODULE = """
import flows


def test_plain_{n}_a():
    assert flows.plain({n}) == {double}


def test_plain_{n}_b():
    assert flows.plain(0) == 0
"""

FLOW_MODULE = """
import os
import time

from flows import three_tasks


def test_flow():
    assert three_tasks() == 6
    with open(os.environ["BENCH_OUT"], "w") as handle:
        handle.write(str(time.time() - float(os.environ["BENCH_T0"])))
"""

CONFTEST = (
    """
import os
import time

import pytest


def pytest_sessionstart(session):
    os.environ["BENCH_T0"] = str(time.time())

"""
    + NATIVE_HARNESS_FIXTURE
)

WAITED = re.compile(r"the first flow waited ([0-9.]+) s")


def make_suite(where: Path, modules: int) -> None:
    (where / "flows.py").write_text(FLOWS)
    (where / "conftest.py").write_text(CONFTEST)
    for n in range(modules):
        (where / f"test_unit_{n:02d}.py").write_text(UNIT_MODULE.format(n=n, double=2 * n))
    (where / "test_zz_flow.py").write_text(FLOW_MODULE)


def run_session(where: Path, mode: str, paths: list[str]) -> dict[str, float | None]:
    out = where / "first-flow.txt"
    out.unlink(missing_ok=True)
    env = {
        **os.environ,
        "BENCH_OUT": str(out),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # native's server would phone home
    }
    args = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p", "no:randomly", *paths]
    if mode == "native":
        env["BENCH_NATIVE"] = "1"
        args += ["-p", "no:prefect_flows"]
    else:
        args += ["-o", f"prefect_start={mode}"]
    start = time.perf_counter()
    result = subprocess.run(args, cwd=where, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{mode} session failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    waited = WAITED.search(result.stdout)
    return {
        "waited": float(waited.group(1)) if waited else None,
        "first_flow": float(out.read_text()) if out.exists() else None,
        "wall": wall,
    }


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def measure(
    where: Path, modes: list[str], paths: list[str], repeat: int
) -> dict[str, dict[str, float | None]]:
    runs: dict[str, list[dict[str, float | None]]] = {mode: [] for mode in modes}
    for _ in range(repeat):
        for mode in modes:  # interleaved, so a change in the machine's load hits every mode alike
            runs[mode].append(run_session(where, mode, paths))
    return {
        mode: {key: median([run[key] for run in results]) for key in ("waited", "first_flow", "wall")}
        for mode, results in runs.items()
    }


def table(title: str, medians: dict[str, dict[str, float | None]]) -> None:
    print(f"\n{title}\n")
    print(
        "| mode | first flow waited for the backend (s) | session start to first flow result (s) "
        "| session wall (s) |"
    )
    print("|---|---:|---:|---:|")
    for mode, row in medians.items():
        print(f"| {mode} | {cell(row['waited'])} | {cell(row['first_flow'])} | {cell(row['wall'])} |")
    lazy = medians.get("lazy", {}).get("wall")
    for mode in ("ahead", "native"):
        wall = medians.get(mode, {}).get("wall")
        if lazy and wall:
            print(f"session wall, {mode} / lazy: {wall / lazy:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modules", type=int, default=8, help="test modules before the flow's")
    parser.add_argument("--native", action="store_true", help="also run native prefect_test_harness (slow)")
    parser.add_argument("--example", action="store_true", help="also run example_flows/tests")
    args = parser.parse_args()

    load_before = os.getloadavg()
    print(f"prefect-flows ready benchmark: python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print("The machine may be shared with other work: compare the modes within this run.")
    with tempfile.TemporaryDirectory(prefix="prefect-ready-bench-") as tmp:
        suite = Path(tmp)
        make_suite(suite, args.modules)
        run_session(suite, "lazy", [])  # warm the template cache and the file-system cache
        modes = ["ahead", "lazy", *(["native"] if args.native else [])]
        medians = measure(suite, modes, [], args.repeat)
        table(
            f"generated suite: {args.modules} modules of plain tests, then one 3-task flow "
            f"(median of {args.repeat} sessions)",
            medians,
        )
    if args.example:
        example = measure(ROOT, ["ahead", "lazy"], ["example_flows/tests"], args.repeat)
        table(f"example_flows/tests (median of {args.repeat} sessions)", example)
    load_after = os.getloadavg()
    print(
        "\nload average before: "
        + ", ".join(f"{value:.2f}" for value in load_before)
        + "; after: "
        + ", ".join(f"{value:.2f}" for value in load_after)
    )


if __name__ == "__main__":
    main()
