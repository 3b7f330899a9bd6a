"""The receiver's verification snippet, taken from docs/http-adapter.md as it is printed there.

The tests verify every callback with it, so the snippet a company copies is known to accept the bridge's real
signatures (and the tests of tampering show that it refuses the rest).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "http-adapter.md"
_BLOCK = re.compile(r"<!-- receiver-snippet -->\s*```python\n(?P<code>.*?)```", re.S)


def _load() -> Any:
    match = _BLOCK.search(DOC.read_text(encoding="utf-8"))
    if match is None:
        raise RuntimeError(f"{DOC}: no ```python block after <!-- receiver-snippet -->")
    namespace: dict[str, Any] = {}
    exec(compile(match.group("code"), str(DOC), "exec"), namespace)
    return namespace["verify_bridge_callback"]


_verify = _load()


def verify_bridge_callback(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    return bool(_verify(secret, headers, body, now=now))
