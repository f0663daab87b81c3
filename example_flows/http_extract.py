"""Page through a JSON API with httpx.

Connection errors and 5xx answers are transient: the page is fetched again. A 4xx answer or a page
that does not match the expected schema is a bug on one side or the other: retrying cannot fix it,
so `retry_condition_fn` fails the task at once.
"""

from __future__ import annotations

from typing import Any

import httpx
from prefect import Task, flow, get_run_logger, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from pydantic import BaseModel, ValidationError


class Item(BaseModel):
    id: int
    name: str
    price: float


class Page(BaseModel):
    items: list[Item]
    next_page: int | None = None


def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry connection problems and server errors; never client errors or invalid payloads."""
    try:
        state.result()
    except httpx.TransportError:
        return True
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code >= 500
    except (ValidationError, ValueError):
        return False
    return False


@task(
    name="fetch_page",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=is_transient,
    task_run_name="fetch_page-{page}",
)
def fetch_page(base_url: str, page: int, timeout: float = 10.0) -> Page:
    """One page of items; raises for a non-2xx answer or a payload that is not a `Page`."""
    response = httpx.get(f"{base_url}/items", params={"page": page}, timeout=timeout)
    response.raise_for_status()
    return Page.model_validate(response.json())


@flow(name="http-extract")
def http_extract(base_url: str = "https://api.example.test", max_pages: int = 50) -> list[dict[str, Any]]:
    """Every item of every page, following `next_page` until it is null (at most `max_pages`)."""
    logger = get_run_logger()
    items: list[Item] = []
    page_number: int | None = 1
    pages = 0
    while page_number is not None and pages < max_pages:
        page = fetch_page(base_url, page_number)
        items.extend(page.items)
        pages += 1
        page_number = page.next_page
    if page_number is not None:
        logger.warning("Stopped after %d pages; page %d and later were not fetched", pages, page_number)
    logger.info("Fetched %d items from %d pages", len(items), pages)
    return [item.model_dump() for item in items]
