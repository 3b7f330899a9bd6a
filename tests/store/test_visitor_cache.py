"""`VisitorCache`: a saved profile spares the next save's round trip while it would change nothing."""

from __future__ import annotations

import pytest

from bridge.protocol import VisitorFields
from bridge.store._shared import VisitorCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_save_that_changes_nothing_is_answered_from_the_cache() -> None:
    clock = Clock()
    cache = VisitorCache(ttl=60.0, clock=clock)
    stored = VisitorFields(name="Ann", login="ann", phone="+1 555")
    assert cache.merged("tg", "42", VisitorFields(name="Ann")) is None  # never saved here
    cache.put("tg", "42", stored)
    # Fields the message does not bring (None) keep the stored ones.
    assert cache.merged("tg", "42", VisitorFields(name="Ann", login="ann")) == stored
    assert cache.merged("tg", "42", VisitorFields()) == stored
    # A changed field needs a save; so does another visitor or channel.
    assert cache.merged("tg", "42", VisitorFields(name="Ann Lee")) is None
    assert cache.merged("tg", "43", VisitorFields(name="Ann")) is None
    assert cache.merged("web", "42", VisitorFields(name="Ann")) is None
    # After the ttl the store is asked again (another replica may have changed the profile).
    clock.now += 60.5
    assert cache.merged("tg", "42", VisitorFields(name="Ann")) is None


def test_bounded() -> None:
    cache = VisitorCache(size=2)
    for user in ("a", "b", "c"):
        cache.put("tg", user, VisitorFields(name=user))
    assert cache.merged("tg", "a", VisitorFields()) is None  # the oldest was forgotten
    assert cache.merged("tg", "c", VisitorFields()) == VisitorFields(name="c")


@pytest.mark.parametrize("options", [{"ttl": 0}, {"size": 0}])
def test_settings_are_checked(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        VisitorCache(**options)  # type: ignore[arg-type]
