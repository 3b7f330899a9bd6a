"""The store seam: chat ids, visitor profiles, dedupe keys and small key-values.

One abstract base; one small module per backend (`sqlite`, `redis`), chosen by `store.url`.
Every method is one explicit lookup, so a backend can implement each with one query.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import msgspec

from bridge.protocol import VisitorFields

__all__ = ["ChatRecord", "Store", "StoreError"]


class StoreError(Exception):
    """The store is unreachable or refused an operation."""


class ChatRecord(msgspec.Struct, frozen=True):
    """One messenger chat known to the platform under `chat_id`."""

    chat_id: int
    channel_id: str
    native_chat_id: str
    adapter_data: dict[str, str] = msgspec.field(default_factory=dict)


class Store(ABC):
    """Backends must make `chat_id_for` atomic across processes: two first messages of one chat, racing in
    different replicas, get the same id; `chat_id`s are positive, never reused, unique across channels."""

    @abstractmethod
    async def open(self) -> None:
        """Connect, create files and run schema migrations. Idempotent."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise `StoreError` when the store cannot answer right now."""

    # ----------------------------------------------------------------- chat ids

    @abstractmethod
    async def chat_id_for(self, channel_id: str, native_chat_id: str) -> int:
        """The platform chat id of a messenger chat, allocated on first use."""

    @abstractmethod
    async def chat_by_id(self, chat_id: int) -> ChatRecord | None: ...

    @abstractmethod
    async def set_chat_data(self, chat_id: int, adapter_data: dict[str, str]) -> None:
        """Replace the adapter's own data kept with a chat (unknown `chat_id` raises `KeyError`)."""

    # ----------------------------------------------------------------- visitors

    @abstractmethod
    async def save_visitor(self, channel_id: str, native_user_id: str, fields: VisitorFields) -> VisitorFields:
        """Merge `fields` into the stored profile (a field given as None keeps its stored value) and return
        the merged profile, so a phone shared once stays with the visitor."""

    @abstractmethod
    async def get_visitor(self, channel_id: str, native_user_id: str) -> VisitorFields | None: ...

    # ----------------------------------------------------------------- key-values (dedupe keys, secrets)

    @abstractmethod
    async def kv_get(self, namespace: str, key: str) -> bytes | None: ...

    @abstractmethod
    async def kv_set(self, namespace: str, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    @abstractmethod
    async def kv_set_if_absent(
        self, namespace: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> bool:
        """Set only when absent (or expired); True when this call set it. Atomic across processes."""

    @abstractmethod
    async def kv_delete(self, namespace: str, key: str) -> None: ...
