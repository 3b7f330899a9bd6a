"""`create_app(config)`: builds the whole bridge as one Litestar app, with no module-level state.

Construction is cheap and does no I/O (adapters are built here so their routes can be mounted); everything that
connects (store, platform client, handoff workers, adapters) starts in the lifespan, in that order, and stops
in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.exceptions import HTTPException

from bridge._errors import describe_error
from bridge.adapter import Adapter, AdapterContext, NotTakenOver
from bridge.config import Config, adapter_settings, reply_base_url, secret_values
from bridge.core import Bridge, Channel
from bridge.fetch import SafeFetcher
from bridge.file_routes import file_routes
from bridge.files import FileUrlSigner, new_signing_key
from bridge.handoff import Handoff
from bridge.logs import Redactor, redact_also
from bridge.messages import Inbound
from bridge.metrics import Metrics, install_http_metrics, metrics_routes
from bridge.platform import PlatformClient
from bridge.protocol import status_error_body
from bridge.readiness import Readiness
from bridge.routes import health_routes, reply_routes
from bridge.store import open_store
from bridge.store.base import Store, StoreError
from bridge.store.keyvalue import StoreKeyValue
from bridge.webhook import WebhookFastPath, webhook_endpoint

__all__ = ["BridgeRuntime", "create_app"]

log = logging.getLogger("bridge.app")

_SIGNING_KEY = ("bridge", "file-signing-key")


def _submitter(bridge: Bridge, channel_id: str) -> Callable[[Inbound], Any]:
    async def submit(inbound: Inbound) -> None:
        try:
            await bridge.accept_inbound(channel_id, inbound)
        except Exception as exc:
            log.warning("inbound message not taken over", extra={"channel": channel_id, "reason": str(exc)})
            raise NotTakenOver(describe_error(exc)) from exc

    return submit


class BridgeRuntime:
    """The parts one app owns; kept on `app.state.bridge` for the CLI and tests."""

    def __init__(
        self,
        config: Config,
        store: Store,
        platform: PlatformClient,
        handoff: Handoff,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.platform = platform
        self.handoff = handoff
        self.metrics = metrics
        self.public_url = reply_base_url(config)
        self.signer: FileUrlSigner | None = None
        self.bridge = Bridge(
            channels={}, store=store, platform=platform, handoff=handoff, file_urls=None, metrics=metrics
        )
        self.channels: dict[str, Channel] = {}
        checks_platform = config.server.ready_checks_platform
        self.readiness_checks = Readiness(
            store=store,
            handoff=handoff,
            channels=self.channels,
            redact=Redactor(secret_values(config)),
            platform_urls={c.id: c.platform.webhook_url for c in config.channels} if checks_platform else None,
            metrics=metrics,
        )

    def signer_or_fail(self) -> FileUrlSigner:
        if self.signer is None:
            raise HTTPException(status_code=503, detail="the bridge is starting")
        return self.signer

    async def _signing_key(self) -> str:
        if self.config.files.signing_key:
            return self.config.files.signing_key
        # Generated once and kept in the store, so every replica on one store signs alike.
        await self.store.kv_set_if_absent(*_SIGNING_KEY, new_signing_key().encode())
        key = await self.store.kv_get(*_SIGNING_KEY)
        if key is None:
            raise StoreError("the file signing key could not be stored")
        redact_also([key.decode()])
        return key.decode()

    @asynccontextmanager
    async def lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await self.store.open()
            stack.push_async_callback(self.store.close)
            self.signer = FileUrlSigner(
                await self._signing_key(), public_url=self.public_url, ttl=self.config.files.url_ttl
            )
            self.bridge.file_urls = self.signer
            await self.platform.start()
            stack.push_async_callback(self.platform.close)
            await self.handoff.start(self.bridge.deliver)
            stack.push_async_callback(self.handoff.stop)
            for channel in self.channels.values():
                log.info("starting adapter", extra={"channel": channel.config.id, "adapter": channel.adapter.name})
                await channel.adapter.start()
                stack.push_async_callback(channel.adapter.stop)
            # On the way out the handoff stops first, while the adapters still run: a send in flight finishes
            # instead of losing its connection. A polling adapter that fetches updates meanwhile finds them not
            # taken over and keeps its offset. (Stopping twice is harmless: the earlier callback is for a
            # failed start.)
            stack.push_async_callback(self.handoff.stop)
            log.info("bridge started", extra={"channels": list(self.channels)})
            yield
            log.info("bridge stopping")

    async def readiness(self) -> dict[str, Any]:
        return await self.readiness_checks.report()


def _exception_handler(_request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    headers: dict[str, str] | None = None
    if isinstance(exc, HTTPException):
        status = exc.status_code
        desc = str(exc.detail)
        headers = exc.headers  # e.g. Allow on a 405
    else:
        log.exception("unhandled error in a request", exc_info=exc)
        status, desc = 500, "internal error"
    return Response(
        content=status_error_body(status, desc), status_code=status, media_type="application/json", headers=headers
    )


def create_app(
    config: Config,
    *,
    adapters: dict[str, type[Adapter]] | None = None,  # type: ignore[type-arg]
    handoff: Handoff | None = None,
    store: Store | None = None,
) -> Litestar:
    """Build the bridge. `adapters` defaults to the installed plugins; `handoff` to the durable queue."""
    if adapters is None:
        from bridge.plugins import discover_adapters

        adapters = discover_adapters()
    store = store or open_store(config.store.url)
    platform = PlatformClient(
        timeout=max(c.platform.timeout for c in config.channels),
        connect_timeout=max(c.platform.connect_timeout for c in config.channels),
    )
    if handoff is None:
        from bridge.delivery import build_handoff

        handoff = build_handoff(config)
    metrics = Metrics(backlog=handoff.status, channels=[c.id for c in config.channels])
    runtime = BridgeRuntime(config, store, platform, handoff, metrics)
    # One guard for every adapter that downloads an agent's file itself (bridge/fetch.py).
    fetcher = SafeFetcher.from_config(config.files)
    routers: list[Any] = []
    webhooks: dict[str, Any] = {}
    for channel_config in config.channels:
        adapter_cls = adapters[channel_config.adapter_type]
        context = AdapterContext(
            channel_id=channel_config.id,
            submit=_submitter(runtime.bridge, channel_config.id),
            kv=StoreKeyValue(store, f"adapter:{channel_config.id}"),
            public_url=config.server.public_url,
            route_prefix=f"/channels/{channel_config.id}",
            logger=logging.getLogger(f"bridge.adapter.{channel_config.id}"),
            dropped=metrics.dropped_counter(channel_config.id),
            fetcher=fetcher,
            max_body_bytes=config.server.max_body_bytes,
        )
        adapter = adapter_cls(adapter_settings(channel_config, adapter_cls), context)
        runtime.channels[channel_config.id] = Channel(config=channel_config, adapter=adapter)
        handlers = list(adapter.route_handlers())
        for handler in handlers:
            endpoint = webhook_endpoint(handler)
            if endpoint is not None:
                webhooks.update({f"/channels/{channel_config.id}{path}": endpoint for path in handler.paths})
        if handlers:
            routers.append(Router(path=f"/channels/{channel_config.id}", route_handlers=handlers))
    runtime.bridge.channels = runtime.channels

    app = Litestar(
        route_handlers=[
            *routers,
            *reply_routes(runtime.bridge, {c.id: c for c in config.channels}),
            *file_routes(
                runtime.signer_or_fail,
                {cid: ch.adapter for cid, ch in runtime.channels.items()},
                int(config.files.max_size_mb * 1024 * 1024),
                metrics=metrics,
            ),
            *health_routes(runtime.readiness),
            *metrics_routes(metrics, config.metrics.token),
        ],
        lifespan=[runtime.lifespan],
        exception_handlers={Exception: _exception_handler},
        request_max_body_size=config.server.max_body_bytes,
        openapi_config=None,
        # Litestar's own handler would bypass the redacting one `bridge.logs` installs on the root logger.
        logging_config=None,
        debug=False,
    )
    install_http_metrics(app, metrics)
    app.asgi_handler = WebhookFastPath(app.asgi_handler, webhooks, metrics.observe_http)
    app.state.bridge = runtime
    return app
