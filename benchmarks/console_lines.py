"""CPU cost of Prefect's console log lines under pytest's capture, with Rich and with `plain_console_lines`.

    python benchmarks/console_lines.py [--flows 300]

Emits the 6 console records of a 3-task flow run (begin, 3 created task runs... as Prefect words
them) to a non-terminal stream, as pytest's capture gives the handler, `--flows` times; prints the
best of 5 CPU times per flow run with Prefect's own handler (Rich) and inside `plain_console_lines()`,
and whether both wrote the same text.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow  # noqa: F401  (configures Prefect's logging)
from prefect.logging.configuration import setup_logging
from prefect.logging.handlers import PrefectConsoleHandler

from pytest_prefect_flows._console import plain_console_lines

MESSAGES = [
    ("Beginning flow run %r for flow %r", ("glorious-ant", "three-tasks")),
    ("Created task run %r for task %r", ("step-0", "step")),
    ("Finished in state %s", ("Completed()",)),
    ("Finished in state %s", ("Completed()",)),
    ("Finished in state %s", ("Completed()",)),
    ("Finished in state %s", ("Completed()",)),
]


def records() -> list[logging.LogRecord]:
    made = []
    for message, args in MESSAGES:
        record = logging.LogRecord("prefect.flow_runs", logging.INFO, __file__, 1, message, args, None)
        record.flow_run_name, record.flow_run_id, record.flow_name = "glorious-ant", "1", "three-tasks"
        record.created, record.msecs = 1_700_000_000.0, 0.0  # the same text in both runs
        made.append(record)
    return made


def cpu_ms_per_flow(handler: logging.Handler, flows: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(flows):
            for record in records():
                handler.emit(record)
        best = min(best, (time.process_time() - start) / flows)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flows", type=int, default=300)
    args = parser.parse_args()
    setup_logging()
    handler = next(
        h for h in logging.getLogger("prefect").handlers + logging.getLogger().handlers
        if isinstance(h, PrefectConsoleHandler)
    )  # fmt: skip
    sink = io.StringIO()
    handler.stream = handler.console.file = sink
    rich = cpu_ms_per_flow(handler, args.flows)
    rich_text = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    with plain_console_lines():
        plain = cpu_ms_per_flow(handler, args.flows)
    same = rich_text == sink.getvalue()
    print(
        f"6 console records of a 3-task flow run, CPU ms per flow run (best of 5 x {args.flows}): "
        f"Rich {rich:.2f}, plain_console_lines {plain:.2f}; same text: {same}; load average "
        + ", ".join(f"{value:.2f}" for value in os.getloadavg())
    )


if __name__ == "__main__":
    main()
