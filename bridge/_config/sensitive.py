"""Secrets in the config: refusing placeholders, listing values to redact, masking, and the reply URLs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bridge._config.problems import KeyPath, Problem

if TYPE_CHECKING:
    from bridge.config import ChannelConfig, Config

__all__ = [
    "PLACEHOLDER_PREFIX",
    "is_placeholder",
    "is_secret_key",
    "mask_secret",
    "masked_webhook_url",
    "placeholder_problems",
    "reply_base_url",
    "reply_urls",
    "secret_values",
    "webhook_token",
]

PLACEHOLDER_PREFIX = "change-me"
SECRET_KEY_SUFFIXES = ("token", "secret", "key")
# The platform's App.Chatbots webhook URL carries its token as a path segment:
# https://{host}/connector/omnichannel/omnichannel_message/{token}/bot_api_webhook
_WEBHOOK_TOKEN = (
    re.compile(r"/omnichannel_message/(?P<token>[^/?#]+)"),
    re.compile(r"/(?P<token>[^/?#]+)/bot_api_webhook(?:[/?#]|$)"),
)
_MASK = "****"
_MIN_SHOWN_LENGTH = (
    12  # shorter secrets are masked entirely: their last 4 characters would give too much away
)


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(PLACEHOLDER_PREFIX)


def is_secret_key(name: str) -> bool:
    """Adapter keys are the adapter's business; by convention their secrets are named `*token`, `*secret`,
    `*key`."""
    return name.lower().endswith(SECRET_KEY_SUFFIXES)


def mask_secret(value: str) -> str:
    """`****` plus the last 4 characters, enough to tell two secrets apart without revealing either."""
    return _MASK + value[-4:] if len(value) >= _MIN_SHOWN_LENGTH else _MASK


def _token_span(url: str) -> tuple[int, int] | None:
    for pattern in _WEBHOOK_TOKEN:
        if match := pattern.search(url):
            return match.span("token")
    return None


def webhook_token(url: str) -> str | None:
    """The token embedded in the platform's webhook URL, when the URL has the documented shape."""
    span = _token_span(url)
    return url[span[0] : span[1]] if span else None


def masked_webhook_url(url: str) -> str:
    """The webhook URL with its token masked (and any user:password in it)."""
    span = _token_span(url)
    if span:
        url = url[: span[0]] + mask_secret(url[span[0] : span[1]]) + url[span[1] :]
    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", f":{_MASK}@", 1)
    return url


def _adapter_secrets(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """Secret-named string values of an adapter block, nested mappings included."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and isinstance(item, str) and is_secret_key(key):
                yield (*path, key), item
            elif isinstance(key, str):
                yield from _adapter_secrets(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _adapter_secrets(item, (*path, index))


def _named_secrets(
    config: Config, channels: Sequence[tuple[int, ChannelConfig]]
) -> Iterator[tuple[KeyPath, str]]:
    for index, channel in channels:
        here: KeyPath = ("channels", index, "platform")
        if channel.platform.token:
            yield (*here, "token"), channel.platform.token
        if channel.platform.url_secret:
            yield (*here, "url_secret"), channel.platform.url_secret
        yield from _adapter_secrets(
            {k: v for k, v in channel.adapter.items() if k != "type"}, ("channels", index, "adapter")
        )
    if config.files.signing_key:
        yield ("files", "signing_key"), config.files.signing_key
    if config.metrics.token:
        yield ("metrics", "token"), config.metrics.token


def placeholder_problems(config: Config, channels: Sequence[tuple[int, ChannelConfig]]) -> list[Problem]:
    """Refuse secrets still holding config.example.yaml's `CHANGE-ME...` placeholders: a bridge must never
    run with a secret that is published in its own repository."""
    problems = [
        Problem.at(path, f"is still the placeholder {value!r}: set the real secret")
        for path, value in _named_secrets(config, channels)
        if is_placeholder(value)
    ]
    for index, channel in channels:
        segments = urlsplit(channel.platform.webhook_url).path.split("/")
        for segment in filter(is_placeholder, segments):
            problems.append(
                Problem.at(
                    ("channels", index, "platform", "webhook_url"),
                    f"holds the placeholder token {segment!r}: paste the channel's App.Chatbots webhook URL",
                )
            )
    return problems


def secret_values(config: Config) -> set[str]:
    """Every secret string the config holds, so that logs can redact them."""
    found = {value for _, value in _named_secrets(config, list(enumerate(config.channels))) if value}
    for channel in config.channels:
        if token := webhook_token(channel.platform.webhook_url):
            found.add(token)
    if password := urlsplit(config.store.url).password:
        found.add(password)
    return found


def reply_base_url(config: Config) -> str:
    """Where the platform reaches the bridge: `server.public_url`, else `http://{host}:{port}`."""
    if config.server.public_url:
        return config.server.public_url.rstrip("/")
    host = config.server.host
    if host in ("0.0.0.0", "::", ""):
        # Listening on every interface: the loopback address is the one that surely reaches it.
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.server.port}"


def reply_urls(config: Config, channel: ChannelConfig, *, reveal: bool = False) -> list[tuple[str, str]]:
    """The URL(s) to paste into the platform's "Channel webhook: URL" field, each with its auth mode.

    The platform appends `/send_message` (and other method names) itself. Secrets are masked unless
    `reveal` is true.
    """
    shown = (lambda secret: secret) if reveal else mask_secret
    base = f"{reply_base_url(config)}/channels/{channel.id}"
    urls: list[tuple[str, str]] = []
    if channel.platform.token:
        urls.append((base, f"header: Authorization: Token {shown(channel.platform.token)}"))
    if channel.platform.url_secret:
        urls.append(
            (f"{base}/{shown(channel.platform.url_secret)}", "secret URL: no header, the URL is the secret")
        )
    return urls
