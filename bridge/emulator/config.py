"""The emulator's settings: which channels (tokens) it knows, where each one's agent replies, which script.

A YAML file (`omnichannel-bridge emulator -c emulator.yaml`) has the same keys; its `script` is a path to a
script file (relative to the config file) or the list of rules inline:

```yaml
channels:
  - token: demo-token
    reply_url: http://127.0.0.1:8080/channels/demo   # "Channel webhook: URL"; /send_message is appended
    reply_token: s3cret                              # header mode; omit for secret-URL mode
script: agent.yaml
reply_delay: 0.2
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from bridge.emulator._yaml import YamlError, load_yaml
from bridge.emulator.script import Rule, Script, ScriptError, default_script, load_script

__all__ = ["EmulatorChannel", "EmulatorConfig", "EmulatorConfigError", "load_emulator_config"]


class EmulatorConfigError(ValueError):
    pass


class EmulatorChannel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One agent channel: its webhook token, and how its agent reaches the bridge."""

    token: str
    reply_url: str
    # `Authorization: Token {reply_token}` on every reply (header mode); None = secret-URL mode, no header.
    reply_token: str | None = None

    def __post_init__(self) -> None:
        if not self.token or "/" in self.token:
            raise ValueError("`token` must be a non-empty URL path segment")
        if not self.reply_url.startswith(("http://", "https://")):
            raise ValueError(f"`reply_url` must be an http(s) URL, not {self.reply_url!r}")

    @property
    def base_reply_url(self) -> str:
        return self.reply_url.rstrip("/")


class EmulatorConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    channels: list[EmulatorChannel] = msgspec.field(default_factory=list)
    script: Script = msgspec.field(default_factory=default_script)
    # Seconds the agent "thinks" before each reply call.
    reply_delay: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    reply_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # The emulator's base URL as the bridge reaches it (for the file links it sends); None = the address each
    # webhook request came in on.
    public_url: str | None = None

    def __post_init__(self) -> None:
        tokens = [channel.token for channel in self.channels]
        duplicates = sorted({token for token in tokens if tokens.count(token) > 1})
        if duplicates:
            raise ValueError(f"channel tokens must be unique; repeated: {', '.join(duplicates)}")

    def channel(self, token: str) -> EmulatorChannel | None:
        return next((c for c in self.channels if c.token == token), None)


class _FileConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    channels: list[EmulatorChannel] = msgspec.field(default_factory=list)
    script: str | list[Rule] | None = None
    reply_delay: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    reply_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    public_url: str | None = None


def load_emulator_config(path: str | Path) -> EmulatorConfig:
    """Read an emulator YAML file; raise `EmulatorConfigError` naming the file and the bad key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EmulatorConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = load_yaml(text, str(path))
        raw = msgspec.convert(data if data is not None else {}, _FileConfig)
    except YamlError as exc:
        raise EmulatorConfigError(str(exc)) from None
    except msgspec.ValidationError as exc:
        raise EmulatorConfigError(f"{path}: {exc}") from None
    if raw.script is None:
        script = default_script()
    elif isinstance(raw.script, str):
        try:
            script = load_script(path.parent / raw.script)
        except ScriptError as exc:
            raise EmulatorConfigError(str(exc)) from None
    else:
        script = Script(rules=raw.script)
    try:
        return EmulatorConfig(
            channels=raw.channels,
            script=script,
            reply_delay=raw.reply_delay,
            reply_timeout=raw.reply_timeout,
            public_url=raw.public_url,
        )
    except ValueError as exc:
        raise EmulatorConfigError(f"{path}: {exc}") from None
