"""Shared by the config tests: YAML builders and adapters shaped like the real ones."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from bridge.adapter import Adapter
from bridge.config import ConfigError, parse_config
from bridge.messages import Outbound

__all__ = [
    "CHANNEL_TOKEN",
    "PLATFORM_TOKEN",
    "REGISTRY",
    "REPO",
    "URL_SECRET",
    "WEBHOOK",
    "TelegramLike",
    "TelegramSettings",
    "channel_yaml",
    "config_yaml",
    "problems_of",
    "yaml_text",
]

REPO = Path(__file__).resolve().parent.parent
PLATFORM_TOKEN = "ac650a3c369a4b9599ad52ab71943712"
WEBHOOK = f"https://app.chatbots.example.com/connector/omnichannel/omnichannel_message/{PLATFORM_TOKEN}/bot_api_webhook"
CHANNEL_TOKEN = "channel-token-0123456789abcd"
URL_SECRET = "url-secret-0123456789wxyz"


class TelegramSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    bot_token: str
    mode: Literal["webhook", "polling"] = "webhook"
    webhook_secret: str | None = None
    groups: Literal["ignore", "chat"] = "ignore"
    edits: Literal["forward", "ignore"] = "forward"
    files_as: Literal["native", "link"] = "native"
    api_base_url: str = "https://api.telegram.org"
    poll_timeout: int = 30


class TelegramLike(Adapter[TelegramSettings]):
    name = "telegram"
    config_type = TelegramSettings

    async def do_send(self, message: Outbound) -> None:
        raise NotImplementedError


class WebchatSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str = "Chat"


class WebchatLike(Adapter[WebchatSettings]):
    name = "webchat"
    config_type = WebchatSettings

    async def do_send(self, message: Outbound) -> None:
        raise NotImplementedError


REGISTRY: dict[str, type[Any]] = {"telegram": TelegramLike, "webchat": WebchatLike}


def yaml_text(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


def channel_yaml(
    *,
    id: str = "tg",
    platform: str = f"token: {CHANNEL_TOKEN}",
    adapter: str = "type: telegram\n        bot_token: '123:abc'",
) -> str:
    return f"""
  - id: {id}
    platform:
        webhook_url: {WEBHOOK}
        {platform}
    adapter:
        {adapter}
"""


def config_yaml(*channels: str, extra: str = "") -> str:
    return "channels:" + "".join(channels or (channel_yaml(),)) + yaml_text(extra)


def problems_of(text: str, adapters: dict[str, type[Any]] | None = None, **environ: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, adapters, source="test.yaml", environ=environ)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems
