"""Key paths and problem lines: every configuration problem is reported as `key.path[0].name: message`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeyPath", "Problem", "format_path", "is_under"]

# A location in the YAML document: mapping keys as str, sequence indexes as int.
KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    """`("channels", 0, "platform")` → `channels[0].platform`, the form operators see in every message."""
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out += f".{segment}" if out else segment
    return out


def is_under(path: str, prefix: str) -> bool:
    """Whether the display path `path` is `prefix` itself or lies inside it."""
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[")


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: `where` is a key path (`file:line:column` for YAML syntax), `message` what is wrong."""

    where: str
    message: str

    @classmethod
    def at(cls, path: KeyPath, message: str) -> Problem:
        return cls(format_path(path), message)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message
