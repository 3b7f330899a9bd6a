"""The adapter's `KeyValue` handle: a `Store`'s key-values seen through one namespace.

Adapters never import the store; the core hands each one a `StoreKeyValue` bound to the channel's own
namespace, so two channels cannot read or overwrite each other's secrets.
"""

from __future__ import annotations

from bridge.store.base import Store

__all__ = ["StoreKeyValue"]


class StoreKeyValue:
    """Implements `bridge.adapter.KeyValue` over `store` within `namespace`."""

    __slots__ = ("namespace", "store")

    def __init__(self, store: Store, namespace: str) -> None:
        if not namespace:
            raise ValueError("a key-value namespace must not be empty")
        self.store = store
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"StoreKeyValue({self.store!r}, {self.namespace!r})"

    async def get(self, key: str) -> bytes | None:
        return await self.store.kv_get(self.namespace, key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.store.kv_set(self.namespace, key, value, ttl=ttl)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return await self.store.kv_set_if_absent(self.namespace, key, value, ttl=ttl)

    async def delete(self, key: str) -> None:
        await self.store.kv_delete(self.namespace, key)
