"""An events client that keeps the engine's events in memory instead of sending them."""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.events.clients import EventsClient


class RecordingEventsClient(EventsClient):
    sink: ClassVar[list[Any] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def _emit(self, event: Any) -> None:
        if RecordingEventsClient.sink is not None:
            RecordingEventsClient.sink.append(event)
