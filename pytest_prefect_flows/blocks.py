"""Fake Secrets, variables, blocks and notification sinks, served client-side while active.

Works without pytest (the `fake_blocks` fixture is a thin wrapper)::

    with FakeBlocks() as blocks:
        blocks.secret("database-password", "s3cr3t")
        blocks.variable("database-config", {"host": "db", "port": 5432})
        alerts = blocks.notifications("alerts")
        my_flow()
    assert [m.body for m in alerts.messages] == ["..."]

While any `FakeBlocks` is active, `Block.load`/`Block.aload` (on every Block subclass, including
slug names such as `Block.load("secret/database-password")`), `Block.save`/`Block.asave` and
`Variable.get/aget/set/aset/unset/aunset` are served from memory: nothing is read from or written to
a Prefect API. That makes the fakes fast, keeps them out of a `server:` backend shared with other
tests, and guarantees they are gone when the block exits. `Variable.set` and `Block.save` inside a
flow register into the innermost active `FakeBlocks`, so a later `get`/`load` in the same test sees
them. The fakes dispatch sync/async exactly as Prefect does (`Secret.load(name)` returns a coroutine
inside an async flow; `Secret.aload(name)` always does).

Prefect 3 removed the `JSON` and `String` blocks that older docs use for configuration documents;
variables (`prefect.variables.Variable`) are their replacement, and `FakeBlocks.variable` fakes them.

Names follow Prefect's rules (block document names: lowercase letters, digits, dashes; variable
names: also underscores). One block is registered per name. A block loads through any class it is
an instance of, so a test double subclass (`class FakeBucket(S3Bucket)`) loads with
`S3Bucket.load(name)`. A notification sink loads through any `NotificationBlock` subclass and
records every `notify(body, subject)` call instead of sending it.

Secret values never appear in reprs or error messages: errors list names only.
"""

from __future__ import annotations

import copy
import difflib
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import pydantic
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.client.schemas.actions import VariableCreate
from prefect.types.names import BlockDocumentName, VariableName
from prefect.utilities.dispatch import lookup_type
from prefect.variables import Variable

from pytest_prefect_flows._patching import AttributePatches
from pytest_prefect_flows.exceptions import UnknownBlockError, UsageError

_BlockT = TypeVar("_BlockT", bound=Block)

_REGISTER_HINT = (
    "Register it first: fake_blocks.secret(name, value), fake_blocks.add(name, block) or "
    "fake_blocks.notifications(name)."
)


@dataclass(frozen=True)
class Message:
    """One `notify(body, subject)` call on a faked notification block."""

    body: str
    subject: str | None
    block_type: str


@dataclass(eq=False)
class NotificationSink:
    """Records what every notification block loaded under `name` was asked to send."""

    name: str
    messages: list[Message] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<NotificationSink {self.name!r} messages={len(self.messages)}>"


class RecordingNotification(NotificationBlock):
    """What `AnyNotificationBlock.load(name)` returns for a sink: `notify` records, sends nothing."""

    _block_type_name = "pytest-prefect-flows recording notification"
    _block_type_slug = "pytest-prefect-flows-recording-notification"

    block_type: str
    sink_name: str
    _sink: NotificationSink | None = pydantic.PrivateAttr(default=None)

    def _record(self, body: str, subject: str | None) -> None:
        if self._sink is None:
            raise UsageError(f"{self!r} is not bound to a sink; load it through fake_blocks.notifications().")
        self._sink.messages.append(Message(body, subject, self.block_type))

    async def anotify(self, body: str, subject: str | None = None) -> None:
        self._record(body, subject)

    @async_dispatch(anotify)
    def notify(self, body: str, subject: str | None = None) -> None:  # type: ignore[override]
        self._record(body, subject)


def _validated_name(kind: str, name: Any, adapter: pydantic.TypeAdapter[Any], rule: str) -> str:
    try:
        adapter.validate_python(name)
    except pydantic.ValidationError:
        raise UsageError(
            f"{kind} name {name!r} is not a valid Prefect {kind} name: {rule}. "
            f"Prefect would reject it too; rename it, e.g. {_suggest(name)!r}."
        ) from None
    return str(name)


def _suggest(name: Any) -> str:
    text = "".join(char if char.isalnum() else "-" for char in str(name).lower())
    return text.strip("-") or "my-block"


_BLOCK_NAMES: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(BlockDocumentName)
_VARIABLE_NAMES: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(VariableName)
_BLOCK_RULE = "lowercase letters, digits and dashes only"
_VARIABLE_RULE = "lowercase letters, digits, dashes and underscores only"


class FakeBlocks:
    """In-memory Secrets, variables, blocks and notification sinks for flows run inside the block."""

    def __init__(
        self,
        *,
        secrets: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._blocks: dict[str, Block | NotificationSink] = {}
        self._variables: dict[str, Any] = {}
        self._active = False
        for name, value in (secrets or {}).items():
            self.secret(name, value)
        for name, value in (variables or {}).items():
            self.variable(name, value)

    def secret(self, name: str, value: Any) -> Secret[Any]:
        """Register a `Secret` so `Secret.load(name).get()` returns `value`."""
        name = _validated_name("block", name, _BLOCK_NAMES, _BLOCK_RULE)
        try:
            block = Secret(value=value)
        except pydantic.ValidationError:
            raise UsageError(
                f"fake_blocks.secret({name!r}, <{type(value).__name__}>): a Secret holds a string or a "
                "JSON-like value; pass one of those."
            ) from None
        self._set_block(name, block)
        return block

    def add(self, name: str, block: _BlockT) -> _BlockT:
        """Register any Block instance: `type(block).load(name)` and `Block.load("<slug>/name")` return it."""
        name = _validated_name("block", name, _BLOCK_NAMES, _BLOCK_RULE)
        if isinstance(block, type) and issubclass(block, Block):
            raise UsageError(
                f"fake_blocks.add({name!r}, {block.__name__}) got the class; pass an instance, "
                f"e.g. fake_blocks.add({name!r}, {block.__name__}(...))."
            )
        if not isinstance(block, Block):
            raise UsageError(
                f"fake_blocks.add({name!r}, <{type(block).__name__}>) takes a prefect Block instance. "
                "Use fake_blocks.variable(name, value) for JSON-like configuration, "
                "fake_blocks.secret(name, value) for a secret."
            )
        self._set_block(name, block)
        return block

    def notifications(self, name: str) -> NotificationSink:
        """Register a sink: any NotificationBlock subclass loads `name` as a recorder of `notify` calls."""
        name = _validated_name("block", name, _BLOCK_NAMES, _BLOCK_RULE)
        sink = NotificationSink(name)
        self._set_block(name, sink)
        return sink

    def variable(self, name: str, value: Any) -> None:
        """Register a variable so `Variable.get(name)` returns (a copy of) `value`."""
        name = _validated_name("variable", name, _VARIABLE_NAMES, _VARIABLE_RULE)
        try:
            VariableCreate(name=name, value=value)
        except pydantic.ValidationError:
            raise UsageError(
                f"fake_blocks.variable({name!r}, <{type(value).__name__}>): a Prefect variable holds a "
                "JSON-like value (str, int, float, bool, None, list, dict); convert it first."
            ) from None
        self._set_variable(name, value)

    @property
    def names(self) -> list[str]:
        """Registered block, secret and sink names."""
        with self._lock:
            return list(self._blocks)

    @property
    def variable_names(self) -> list[str]:
        with self._lock:
            return list(self._variables)

    def _set_block(self, name: str, block: Block | NotificationSink) -> None:
        with self._lock:
            self._blocks[name] = block

    def _set_variable(self, name: str, value: Any) -> None:
        with self._lock:
            self._variables[name] = copy.deepcopy(value)

    def __enter__(self) -> FakeBlocks:
        if self._active:
            raise UsageError(f"{self!r} is already active; create a new FakeBlocks() to nest one.")
        self._active = True
        _PATCHES.push(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _PATCHES.pop(self)
        self._active = False
        with self._lock:
            self._blocks.clear()
            self._variables.clear()

    def __repr__(self) -> str:
        with self._lock:
            blocks = ", ".join(f"{name} ({_kind(block)})" for name, block in self._blocks.items())
            variables = ", ".join(self._variables)
        return f"<FakeBlocks blocks=[{blocks}] variables=[{variables}]>"


def _kind(block: Block | NotificationSink) -> str:
    if isinstance(block, NotificationSink):
        return "notifications"
    return type(block).get_block_type_slug()


def _describe(blocks: Mapping[str, Block | NotificationSink]) -> str:
    return ", ".join(f"{name} ({_kind(block)})" for name, block in blocks.items()) or "(none)"


def _did_you_mean(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _slugs(block_class: type[Block]) -> set[str]:
    return {
        base.get_block_type_slug()
        for base in block_class.__mro__
        if isinstance(base, type) and issubclass(base, Block)
    }


class _Store:
    """Process-wide: patches Prefect's entry points while any FakeBlocks is active; answers from them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._active: list[FakeBlocks] = []
        self._patches = AttributePatches()

    def push(self, fakes: FakeBlocks) -> None:
        with self._lock:
            if not self._active:
                self._install()
            self._active.append(fakes)

    def pop(self, fakes: FakeBlocks) -> None:
        with self._lock:
            self._active.remove(fakes)
            if not self._active:
                self._uninstall()

    def _install(self) -> None:
        for owner, name, replacement in _REPLACEMENTS:
            # `Block.asave` is new in Prefect 3.6: where it is missing the fake adds it meanwhile.
            self._patches.replace(owner, name, replacement)

    def _uninstall(self) -> None:
        self._patches.restore()

    @property
    def innermost(self) -> FakeBlocks:
        with self._lock:
            return self._active[-1]

    def blocks(self) -> dict[str, Block | NotificationSink]:
        merged: dict[str, Block | NotificationSink] = {}
        with self._lock:
            for fakes in self._active:
                with fakes._lock:
                    merged.update(fakes._blocks)
        return merged

    def variables(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        with self._lock:
            for fakes in self._active:
                with fakes._lock:
                    merged.update(fakes._variables)
        return merged

    def load(self, cls: type[Block], name: str) -> Block:
        __tracebackhide__ = True
        call = f"{cls.__name__}.load({name!r})"
        slug, _, doc_name = name.rpartition("/") if "/" in name else (None, "", name)
        blocks = self.blocks()
        entry = blocks.get(doc_name)
        if entry is None:
            raise UnknownBlockError(
                f"{call}: no block named {doc_name!r} in fake_blocks (while fakes are active they serve "
                f"every Block.load).{_did_you_mean(doc_name, list(blocks))}\n"
                f"Registered: {_describe(blocks)}\n{_REGISTER_HINT}"
            )
        if cls is Block and slug is None:
            raise UnknownBlockError(
                f"{call}: Prefect looks a block name up per block type and `Block` has none. "
                f"Load it with {_how_to_load(entry, doc_name)}."
            )
        if isinstance(entry, NotificationSink):
            return self._notification(entry, cls, slug, call)
        _check_block_type(entry, cls, slug, call)
        return entry

    def _notification(
        self, sink: NotificationSink, cls: type[Block], slug: str | None, call: str
    ) -> RecordingNotification:
        requested: type[Block] | None = cls
        if slug is not None:
            requested = _lookup_block_class(slug)
        if requested is not None and not issubclass(requested, NotificationBlock) and requested is not Block:
            raise UnknownBlockError(
                f"{call}: {sink.name!r} is a notification sink in fake_blocks and loads only through a "
                f"NotificationBlock subclass (SlackWebhook, ...), not {requested.__name__}. "
                f"Register a {requested.__name__} with fake_blocks.add({sink.name!r}, ...) instead."
            )
        block_type = slug or cls.get_block_type_slug()
        notification = RecordingNotification(block_type=block_type, sink_name=sink.name)
        notification._sink = sink
        return notification

    def save(self, block: Block, name: str | None, overwrite: bool) -> uuid.UUID:
        if name is None:
            raise ValueError("You're attempting to save a block document without a name.")
        name = _validated_name("block", name, _BLOCK_NAMES, _BLOCK_RULE)
        with self._lock:
            if name in self.blocks() and not overwrite:
                raise ValueError(
                    "You are attempting to save values with a name that is already in use for this block "
                    "type. If you would like to overwrite the values that are saved, then save with "
                    "`overwrite=True`."
                )
            self.innermost._set_block(name, block)
        block._block_document_name = name
        block._block_document_id = uuid.uuid4()
        return block._block_document_id

    def get_variable(self, name: str, default: Any) -> Any:
        __tracebackhide__ = True
        variables = self.variables()
        if name in variables:
            return copy.deepcopy(variables[name])
        if default is not _MISSING:
            return default
        raise UnknownBlockError(
            f"Variable.get({name!r}): no variable of that name in fake_blocks."
            f"{_did_you_mean(name, list(variables))}\n"
            f"Registered variables: {', '.join(variables) or '(none)'}\n"
            f"Register it with fake_blocks.variable({name!r}, value), or pass `default=` to get Prefect's "
            "behaviour for a missing variable."
        )

    def set_variable(
        self, cls: type[Variable[Any]], name: str, value: Any, tags: list[str] | None, overwrite: bool
    ) -> Variable[Any]:
        created = VariableCreate(name=name, value=value, tags=tags or [])
        with self._lock:
            if name in self.variables() and not overwrite:
                raise ValueError(f"Variable {name!r} already exists. Use `overwrite=True` to update it.")
            self.innermost._set_variable(name, value)
        return cls.model_validate(created.model_dump())

    def unset_variable(self, name: str) -> bool:
        with self._lock:
            for fakes in reversed(self._active):
                with fakes._lock:
                    if fakes._variables.pop(name, _MISSING) is not _MISSING:
                        return True
        return False


def _how_to_load(entry: Block | NotificationSink, name: str) -> str:
    if isinstance(entry, NotificationSink):
        return f"a NotificationBlock subclass, e.g. SlackWebhook.load({name!r})"
    block_class = type(entry)
    return (
        f"{block_class.__name__}.load({name!r}) or Block.load('{block_class.get_block_type_slug()}/{name}')"
    )


def _lookup_block_class(slug: str) -> type[Block] | None:
    try:
        found: type[Block] = lookup_type(Block, slug)
    except KeyError:
        return None
    return found


def _check_block_type(block: Block, cls: type[Block], slug: str | None, call: str) -> None:
    registered = type(block)
    if (slug is None or slug in _slugs(registered)) and isinstance(block, cls):
        return
    asked = f"block type {slug!r}" if slug is not None and isinstance(block, cls) else f"a {cls.__name__}"
    raise UnknownBlockError(
        f"{call}: the block registered in fake_blocks under that name is a {registered.__name__} "
        f"(slug {registered.get_block_type_slug()!r}), not {asked}. "
        f"Load it with {registered.__name__}.load(...), or register the block the flow expects "
        f"with fake_blocks.add(name, {cls.__name__ if cls is not Block else 'SomeBlock'}(...))."
    )


class _Missing:
    def __repr__(self) -> str:
        return "<no default>"


_MISSING: Any = _Missing()
_PATCHES = _Store()


def _load(cls: type[Block], name: str, validate: bool = True, client: Any = None) -> Block:
    __tracebackhide__ = True
    return _PATCHES.load(cls, name)


async def _aload(cls: type[Block], name: str, validate: bool = True, client: Any = None) -> Block:
    __tracebackhide__ = True
    return _PATCHES.load(cls, name)


def _save(self: Block, name: str | None = None, overwrite: bool = False, client: Any = None) -> uuid.UUID:
    return _PATCHES.save(self, name, overwrite)


async def _asave(
    self: Block, name: str | None = None, overwrite: bool = False, client: Any = None
) -> uuid.UUID:
    return _PATCHES.save(self, name, overwrite)


def _get(cls: type[Variable[Any]], name: str, default: Any = _MISSING) -> Any:
    __tracebackhide__ = True
    return _PATCHES.get_variable(name, default)


async def _aget(cls: type[Variable[Any]], name: str, default: Any = _MISSING) -> Any:
    __tracebackhide__ = True
    return _PATCHES.get_variable(name, default)


def _set(
    cls: type[Variable[Any]], name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
) -> Variable[Any]:
    return _PATCHES.set_variable(cls, name, value, tags, overwrite)


async def _aset(
    cls: type[Variable[Any]], name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
) -> Variable[Any]:
    return _PATCHES.set_variable(cls, name, value, tags, overwrite)


def _unset(cls: type[Variable[Any]], name: str) -> bool:
    return _PATCHES.unset_variable(name)


async def _aunset(cls: type[Variable[Any]], name: str) -> bool:
    return _PATCHES.unset_variable(name)


def _dispatching(sync: Callable[..., Any], async_: Callable[..., Any]) -> Callable[..., Any]:
    """The same sync/async dispatch Prefect applies to the originals."""
    return async_dispatch(async_)(sync)


_REPLACEMENTS: list[tuple[type[Any], str, Any]] = [
    (Block, "load", classmethod(_dispatching(_load, _aload))),
    (Block, "aload", classmethod(_aload)),
    (Block, "save", _dispatching(_save, _asave)),
    (Block, "asave", _asave),
    (Variable, "get", classmethod(_dispatching(_get, _aget))),
    (Variable, "aget", classmethod(_aget)),
    (Variable, "set", classmethod(_dispatching(_set, _aset))),
    (Variable, "aset", classmethod(_aset)),
    (Variable, "unset", classmethod(_dispatching(_unset, _aunset))),
    (Variable, "aunset", classmethod(_aunset)),
]
