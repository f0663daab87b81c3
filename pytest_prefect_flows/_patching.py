"""Replace attributes of classes and modules for a while, and put back exactly what was there."""

from __future__ import annotations

from typing import Any

_ABSENT = object()  # the attribute was inherited or missing on the owner itself: delete, not set


class AttributePatches:
    """`replace(owner, name, value)` any number of times; `restore()` undoes them in reverse."""

    def __init__(self) -> None:
        self._restore: list[tuple[Any, str, Any]] = []

    def replace(self, owner: Any, name: str, value: Any) -> None:
        self._restore.append((owner, name, vars(owner).get(name, _ABSENT)))
        setattr(owner, name, value)

    def restore(self) -> None:
        for owner, name, original in reversed(self._restore):
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._restore.clear()
