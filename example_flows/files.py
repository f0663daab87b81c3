"""Summarise every CSV file of a directory with one mapped task run per file, then aggregate.

Each file has a header row with an `amount` column. The number of task runs is only known at run
time: `.map()` creates one per file found.
"""

# No `from __future__ import annotations`: Prefect 3.4 cannot validate flow parameters whose
# annotations are strings naming imported classes (`Path`); see docs/supported-versions.md.
import csv
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task


@task(name="list_files")
def list_files(directory: Path, pattern: str = "*.csv") -> list[Path]:
    """The matching files, sorted so runs are reproducible."""
    return sorted(Path(directory).glob(pattern))


@task(name="summarize_file", retries=1, retry_delay_seconds=5, task_run_name="summarize-{path.name}")
def summarize_file(path: Path) -> dict[str, Any]:
    """Row count and total `amount` of one CSV file."""
    with Path(path).open(newline="") as handle:
        amounts = [float(row["amount"]) for row in csv.DictReader(handle)]
    return {"file": Path(path).name, "rows": len(amounts), "total": round(sum(amounts), 2)}


@task(name="aggregate")
def aggregate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over every file, with the per-file summaries."""
    return {
        "files": len(summaries),
        "rows": sum(summary["rows"] for summary in summaries),
        "total": round(sum(summary["total"] for summary in summaries), 2),
        "per_file": {summary["file"]: summary["total"] for summary in summaries},
    }


@flow(name="process-files")
def process_files(directory: Path, pattern: str = "*.csv") -> dict[str, Any]:
    """Summarise each matching file in parallel, then aggregate."""
    paths = list_files(directory, pattern)
    if not paths:
        get_run_logger().warning("No files matching %r in %s", pattern, directory)
    futures = summarize_file.map(paths)
    # `.result()` raises the first failure: without it a failed file would leave `aggregate`
    # NotReady and the flow run would still end Completed.
    return aggregate(futures.result())
