"""A digest of the open issues of several repositories, fetched with `requests` and published as a
markdown artifact.

One `fetch_issues` run per repository (`.map`). Connection errors, timeouts and 5xx answers are
transient: the repository is fetched again. A 4xx answer (a repository that was renamed, a token
without access) cannot be fixed by retrying, so `retry_condition_fn` fails the task at once. The
digest is published only when every repository was read: a partial digest would look complete.
"""

from __future__ import annotations

from typing import Any

import requests
from prefect import Task, flow, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

TRACKER = "https://tracker.example.test"


def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry connection problems, timeouts and server errors; never client errors."""
    try:
        state.result()
    except (requests.ConnectionError, requests.Timeout):
        return True
    except requests.HTTPError as exc:
        return exc.response is not None and exc.response.status_code >= 500
    return False


@task(
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=is_transient,
    task_run_name="fetch_issues-{repo}",
)
def fetch_issues(repo: str, base_url: str = TRACKER, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The open issues of one repository (`owner/name`); raises for a non-2xx answer."""
    response = requests.get(f"{base_url}/repos/{repo}/issues", params={"state": "open"}, timeout=timeout)
    response.raise_for_status()
    issues: list[dict[str, Any]] = response.json()
    return issues


@task
def publish_digest(issues_by_repo: dict[str, list[dict[str, Any]]]) -> str:
    """The digest as markdown, saved as the `issue-digest` artifact."""
    total = sum(len(issues) for issues in issues_by_repo.values())
    lines = [f"# Open issues: {total}", ""]
    for repo, issues in issues_by_repo.items():
        lines.append(f"## {repo} ({len(issues)})")
        lines += [f"- #{issue['number']} {issue['title']}" for issue in issues] or ["- none"]
        lines.append("")
    markdown = "\n".join(lines)
    create_markdown_artifact(
        markdown,
        key="issue-digest",
        description=f"{total} open issues in {len(issues_by_repo)} repositories",
    )
    return markdown


@flow(name="issue-digest")
def issue_digest(repos: list[str], base_url: str = TRACKER) -> dict[str, int]:
    """Fetch every repository's open issues, publish the digest; the count per repository."""
    futures = fetch_issues.map(repos, base_url=unmapped(base_url))
    issues = {repo: future.result() for repo, future in zip(repos, futures, strict=True)}
    publish_digest(issues)
    return {repo: len(found) for repo, found in issues.items()}
