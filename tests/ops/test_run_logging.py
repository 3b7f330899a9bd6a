"""`omnichannel-bridge run --log-format json` as operators start it: a real process, its real stderr."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.ops.support import METRICS_TOKEN, PLATFORM_TOKEN, REPLY_TOKEN, SIGNING_KEY, URL_SECRET
from tests.ops.test_logs import assert_no_secret, json_lines

WEBCHAT_SECRET = "webchat-secret-ops-0f1e2d3c"

CONFIG = """
server: {{host: 127.0.0.1, port: {port}}}
store: {{url: "sqlite:///{data}/bridge.db"}}
logging: {{level: INFO, format: console}}
metrics: {{token: {metrics}}}
files: {{signing_key: {signing}}}
channels:
  - id: web
    platform:
      webhook_url: http://127.0.0.1:9/connector/omnichannel/omnichannel_message/{platform}/bot_api_webhook
      token: {reply}
      url_secret: {url_secret}
    adapter: {{type: webchat, secret: {webchat}}}
"""


async def test_run_writes_json_lines_without_secrets(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.format(
            port=port, data=tmp_path, metrics=METRICS_TOKEN, signing=SIGNING_KEY, platform=PLATFORM_TOKEN,
            reply=REPLY_TOKEN, url_secret=URL_SECRET, webchat=WEBCHAT_SECRET,
        ),
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "run", "-c", str(config), "--log-format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            async with asyncio.timeout(30):
                while process.returncode is None:
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            if process.returncode is not None:
                _, stderr = await process.communicate()
                raise AssertionError(f"the bridge exited during startup:\n{stderr.decode()}")
            assert (await client.post(f"/channels/web/{URL_SECRET}/close_chat", json={})).status_code == 200
            r = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert r.status_code == 200
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells how it ended.
    assert process.returncode in (0, -signal.SIGTERM), stderr.decode()
    assert stdout == b""
    text = stderr.decode("utf-8")
    assert_no_secret(text, (PLATFORM_TOKEN, REPLY_TOKEN, URL_SECRET, METRICS_TOKEN, SIGNING_KEY, WEBCHAT_SECRET))
    lines = json_lines(text)
    events = [line["event"] for line in lines]
    assert "bridge started" in events and "bridge stopping" in events
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(line["path"] == "/channels/web/***/close_chat" and line["status"] == 200 for line in access)
    assert any(line["path"] == "/metrics" for line in access)
