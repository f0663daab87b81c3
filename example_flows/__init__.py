"""Reference flows for pytest-prefect-flows: one Prefect 3 pattern per module, each with its tests.

| module | pattern |
|---|---|
| `etl` | concurrent extraction with retries, a transform that skips bad records, SQLite upsert |
| `http_extract` | paginated JSON API with httpx; retries on connection errors and 5xx only |
| `freshness` | skip the update when the data is fresh (a `Completed` state with a message) |
| `files` | dynamic `.map()` over files, then an aggregate |
| `monitored` | `on_failure` hook that sends a notification block message |
| `config` | configuration from a `Secret` block and a `Variable` |
| `cached` | expensive task cached across runs by a cache policy |
| `composition` | subflows and an async flow |
| `deployments` | deployment with a daily 2 AM cron schedule (see also `prefect.yaml`) |
| `dask_flow` | the same map on a local Dask cluster (`pip install 'pytest-prefect-flows[dask]'`) |
"""
