"""An expensive computation computed once per input: later runs read the cached result.

The cache key is the task's inputs plus its source code (`INPUTS + TASK_SOURCE`), so it survives
across flow runs, and changing the function invalidates it. Results are persisted so another process
can read them; entries expire after a day.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, TASK_SOURCE


@task(
    name="expensive_score",
    cache_policy=INPUTS + TASK_SOURCE,
    cache_expiration=dt.timedelta(days=1),
    persist_result=True,
)
def expensive_score(dataset: str, values: list[int]) -> str:
    """A stand-in for hours of work: a digest of the dataset's values, computed many times over."""
    digest = dataset.encode()
    for _ in range(2_000):
        digest = hashlib.sha256(digest + repr(values).encode()).digest()
    get_run_logger().info("Computed score of %s over %d values", dataset, len(values))
    return digest.hex()[:16]


@flow(name="score-dataset")
def score_dataset(dataset: str, values: list[int]) -> str:
    return expensive_score(dataset, values)
