"""`omnichannel-bridge smoke -c FILE`: check a deployed bridge from the outside, and say in plain words what is wrong.

Nothing here sends a message anyone would see:
- the bridge: `/healthz` and `/readyz` answer;
- each reply endpoint: a request with a wrong credential is refused, and one with the right credential is
  accepted but names a chat that cannot exist (chat_id 0), so the bridge answers `unknown_chat` and sends nothing;
- each platform webhook: a request with an event name the platform does not know. The platform documents that it
  answers 200 and ignores such a request, and checks the channel token first (400 "no active channel").
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import httpx

from bridge.config import ChannelConfig, Config, ConfigError, load_config, masked_webhook_url, reply_base_url

__all__ = ["HELP", "Check", "add_arguments", "main", "run_checks"]

HELP = "check a running bridge and the platform webhooks from outside, in plain words"

SMOKE_EVENT = "omnichannel_bridge_smoke_test"
_UNKNOWN_CHAT = {"chat_id": 0, "message": {"kind": "operator", "text": "smoke test: never delivered"}}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", required=True, metavar="FILE", help="the bridge's YAML config file")
    parser.add_argument("--bridge-url", help="reach the bridge here instead of server.public_url")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    parser.add_argument("--skip-platform", action="store_true", help="do not contact the platform webhooks")


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    return f"{type(exc).__name__}"


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)[:200]


def _bridge_checks(client: httpx.Client, base: str) -> list[Check]:
    checks: list[Check] = []
    for path, what in (("/healthz", "bridge alive"), ("/readyz", "bridge ready")):
        try:
            r = client.get(base + path)
        except httpx.HTTPError as exc:
            checks.append(Check(what, False, f"{base}{path}: {_describe(exc)}; is the bridge running there?"))
            continue
        if r.status_code == 200:
            checks.append(Check(what, True, f"{base}{path} answered 200"))
        else:
            checks.append(Check(what, False, f"{base}{path} answered {r.status_code}: {r.text[:300]}"))
    return checks


def _reply_checks(client: httpx.Client, base: str, channel: ChannelConfig) -> list[Check]:
    checks: list[Check] = []
    platform = channel.platform
    attempts: list[tuple[str, str, dict[str, str], dict[str, str], int]] = []
    if platform.token:
        url = f"{base}/channels/{channel.id}/send_message"
        attempts.append(
            (
                "header mode",
                url,
                {"Authorization": f"Token {platform.token}"},
                {"Authorization": "Token smoke-test-wrong-token"},
                401,
            )
        )
    if platform.url_secret:
        good = f"{base}/channels/{channel.id}/{platform.url_secret}/send_message"
        attempts.append(("secret-URL mode", good, {}, {}, 404))
    for mode, url, good_headers, bad_headers, refusal in attempts:
        name = f"{channel.id}: reply endpoint ({mode})"
        bad_url = url if mode == "header mode" else f"{base}/channels/{channel.id}/smoke-test-wrong-secret/send_message"
        try:
            refused = client.post(bad_url, json=_UNKNOWN_CHAT, headers=bad_headers)
            accepted = client.post(url, json=_UNKNOWN_CHAT, headers=good_headers)
        except httpx.HTTPError as exc:
            checks.append(Check(name, False, f"cannot reach the reply endpoint: {_describe(exc)}"))
            continue
        if refused.status_code != refusal:
            checks.append(
                Check(
                    name,
                    False,
                    f"a wrong credential was answered {refused.status_code}, "
                    f"expected {refusal}: is something else serving this URL?",
                )
            )
        elif accepted.status_code == 404 and _error_of(accepted) == "unknown_chat":
            checks.append(Check(name, True, "authenticates: wrong credential refused, right one accepted"))
        elif accepted.status_code in (401, 404):
            checks.append(
                Check(
                    name,
                    False,
                    f"the configured credential was refused ({accepted.status_code} "
                    f"{_error_of(accepted)}): is the bridge running this config?",
                )
            )
        else:
            checks.append(Check(name, False, f"unexpected answer {accepted.status_code}: {accepted.text[:200]}"))
    return checks


def _platform_check(client: httpx.Client, channel: ChannelConfig) -> Check:
    name = f"{channel.id}: platform webhook"
    url = channel.platform.webhook_url
    shown = masked_webhook_url(url)
    body = {
        "event": SMOKE_EVENT,
        "chat_id": 0,
        "visitor": {"id": "smoke-test", "fields": {}},
        "message": {"id": "smoke-test", "kind": "visitor", "text": "smoke test"},
    }
    try:
        r = client.post(url, json=body)
    except httpx.HTTPError as exc:
        return Check(name, False, f"{shown}: {_describe(exc)}")
    if r.status_code == 200:
        return Check(name, True, f"{shown} answered 200 (channel active, token accepted)")
    if r.status_code == 400:
        return Check(
            name,
            False,
            f"{shown} answered 400 ({_error_of(r)}): the agent channel is inactive "
            "or the token in webhook_url is wrong",
        )
    if r.status_code == 404:
        return Check(name, False, f"{shown} answered 404: webhook_url is not the platform's webhook address")
    return Check(name, False, f"{shown} answered {r.status_code}: the platform has a problem right now")


def run_checks(config: Config, *, bridge_url: str | None, timeout: float, platform: bool) -> list[Check]:
    base = (bridge_url or reply_base_url(config)).rstrip("/")
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        checks = _bridge_checks(client, base)
        for channel in config.channels:
            checks += _reply_checks(client, base, channel)
            if platform:
                checks.append(_platform_check(client, channel))
    return checks


def main(args: argparse.Namespace) -> int:
    from bridge.plugins import discover_adapters

    try:
        config = load_config(args.config, discover_adapters())
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    checks = run_checks(config, bridge_url=args.bridge_url, timeout=args.timeout, platform=not args.skip_platform)
    for check in checks:
        print(f"{'ok     ' if check.ok else 'PROBLEM'}  {check.name}: {check.detail}")
    failed = sum(not c.ok for c in checks)
    print(
        f"smoke: {len(checks) - failed} of {len(checks)} checks ok" + (f", {failed} with a problem" if failed else "")
    )
    return 0 if failed == 0 else 1
