"""Message, visitor and file ids must never change across versions: the platform dedupes by them."""

from __future__ import annotations

import uuid

import pytest

from bridge.core import stable_id

NAMESPACE = uuid.UUID("5b0c9a43-7f0e-4b59-9a4c-3d1f6f0b2a71")


def test_a_known_id_stays_what_it_was() -> None:
    # Written down once; a change here means every redelivered message would get a new id.
    assert stable_id("message", "tg", "42", "42:7") == "f3dfc1ee-e6e1-5d67-8505-5c2520195aed"


@pytest.mark.parametrize(
    "parts",
    [
        ("visitor", "tg", "42"),
        ("message", "web", "v1.abc", "m-1"),
        ("file", "tg", "AgACAgQAAxkBAAIB"),
        ("message", "ch", "ünïcødé 😀", ""),
        ("",),
    ],
)
def test_ids_are_uuid5_of_the_joined_parts(parts: tuple[str, ...]) -> None:
    assert stable_id(*parts) == str(uuid.uuid5(NAMESPACE, "\x1f".join(parts)))


def test_visitor_ids_are_the_same_from_the_bridge_as_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bridge remembers visitor ids (bounded); remembered or not, an id is the computed one."""
    from bridge import core

    monkeypatch.setattr(core, "_VISITOR_IDS_KEPT", 3)
    bridge = core.Bridge(channels={}, store=None, platform=None, handoff=None, file_urls=None)  # type: ignore[arg-type]
    users = [("tg", str(n)) for n in range(5)] + [("web", "0")]
    for _ in range(2):
        for channel, user in users:
            assert bridge._visitor_id(channel, user) == stable_id("visitor", channel, user)
    assert 0 < len(bridge._visitor_ids) <= 3
