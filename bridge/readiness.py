"""What `/readyz` reports: each dependency with a status and a detail, checked concurrently and bounded in time.

Ready means "can take messages over and deliver them": the store answers, the queue answers (when the handoff
keeps one), every adapter is started and, when `server.ready_checks_platform` is set, the platform's webhook
host answers HTTP at all. That last check is off by default: an orchestrator that restarts the bridge because
the platform is down only adds an outage, while the queue would have kept every message until it is back.
Details are redacted: a store URL with a password or a webhook URL with its token must not reach the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import httpx

from bridge._errors import describe_error
from bridge.core import Channel
from bridge.handoff import Handoff
from bridge.metrics import Metrics
from bridge.store.base import Store

__all__ = ["Readiness"]

OK: Final = "ok"
ERROR: Final = "error"

Check = dict[str, str]


def _ok(detail: str) -> Check:
    return {"status": OK, "detail": detail}


def _error(detail: str) -> Check:
    return {"status": ERROR, "detail": detail}




class Readiness:
    """`report()` → `{"status": "ok"|"error", "checks": {name: {"status", "detail"}}}`.

    `channels` is read at each report (the app fills it after construction); `platform_urls` maps a channel
    id to its webhook URL, or is None when the platform is not checked."""

    def __init__(
        self,
        *,
        store: Store,
        handoff: Handoff,
        channels: Mapping[str, Channel],
        redact: Callable[[str], str],
        platform_urls: Mapping[str, str] | None = None,
        metrics: Metrics | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.store = store
        self.handoff = handoff
        self.channels = channels
        self.redact = redact
        self.platform_urls = platform_urls
        self.metrics = metrics
        self.timeout = timeout

    async def report(self) -> dict[str, Any]:
        checks: dict[str, Awaitable[Check | None]] = {"store": self._store(), "queue": self._queue()}
        for channel_id, channel in self.channels.items():
            started = channel.adapter.started
            checks[f"adapter:{channel_id}"] = _done(_ok("started") if started else _error("not started"))
        if self.platform_urls is not None:
            for channel_id, url in self.platform_urls.items():
                checks[f"platform:{channel_id}"] = self._platform(url)
        names = list(checks)
        results = await asyncio.gather(*(self._bounded(checks[name]) for name in names))
        report = {name: result for name, result in zip(names, results, strict=True) if result is not None}
        status = OK if all(check["status"] == OK for check in report.values()) else ERROR
        return {"status": status, "checks": report}

    async def _bounded(self, check: Awaitable[Check | None]) -> Check | None:
        try:
            result = await asyncio.wait_for(check, self.timeout)
        except TimeoutError:
            return _error(f"no answer within {self.timeout:g}s")
        except Exception as exc:
            return _error(self.redact(describe_error(exc)))
        if result is not None:
            result["detail"] = self.redact(result["detail"])
        return result

    async def _store(self) -> Check:
        try:
            await self.store.ping()
        except Exception:
            if self.metrics is not None:
                self.metrics.count_store_error("ping")
            raise
        return _ok("reachable")

    async def _queue(self) -> Check | None:
        try:
            rows = await self.handoff.status()
        except NotImplementedError:
            return None  # a handoff without a backlog has no queue to check
        queued = sum(row.queued for row in rows)
        in_flight = sum(row.in_flight for row in rows)
        dead = sum(row.dead_letters for row in rows)
        return _ok(f"reachable: {queued} queued, {in_flight} in flight, {dead} dead letters")

    async def _platform(self, url: str) -> Check:
        # Reachability only: any HTTP answer below 500 means the platform's host is up (a GET on the webhook
        # cannot tell a valid token from a wrong one without posting a message).
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            response = await client.get(url)
        if response.status_code >= 500:
            return _error(f"the webhook host answered HTTP {response.status_code}")
        return _ok(f"reachable (HTTP {response.status_code})")


async def _done(check: Check) -> Check:
    return check
