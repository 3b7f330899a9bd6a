"""A full run through a real bridge with every secret configured, capturing what could carry one: every request
body the platform received, every answer the bridge gave (to the agent and to HTTP clients, headers included),
every call the bridge made to Telegram, and all the log output (at DEBUG, access lines included), as the bridge
writes it. None of the secrets may appear in any of it, raw or URL-encoded.

The signing key is left to be generated, so it is not even in the log redactor's list: its absence from the logs
is the code's doing, not redaction's.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bridge.config import FilesConfig, LoggingConfig
from bridge.emulator import Script
from bridge.emulator.script import FileStep, Rule, default_script
from tests.files.file_server import FileServer
from tests.files.loop_support import ANN, PLATFORM_TOKEN, REPLY_TOKEN, URL_SECRET, Loop, run_loop

METRICS_TOKEN = "metrics-token-files-61e0b7"


class Capture:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def answer(self, response: httpx.Response) -> httpx.Response:
        self.texts.append(f"{response.status_code} {dict(response.headers)!r} {response.text}")
        return response


def script(files: FileServer) -> Script:
    step = FileStep(url=f"{files.url}/files/report.pdf", name="report.pdf", media_type="application/pdf")
    upload = Rule(on="text", match="upload", reply=[step])
    internal = Rule(on="text", match="internal", reply=[FileStep(url="http://10.0.0.1/x.pdf", name="x.pdf")])
    return Script(rules=[upload, internal, *default_script().rules])


async def drive(loop: Loop, client: httpx.AsyncClient, capture: Capture) -> None:
    """Every path a secret could take: messages both ways, files both ways, refusals, operator endpoints."""
    tg, emulator = loop.tg, loop.emulator
    tg.max_download_size = 50_000
    tg.add_file("photo-1", b"jpeg" * 1000, file_path="photos/p.jpg")
    tg.add_file("doc-1", b"pdf" * 1000, file_path="documents/d.pdf")
    tg.add_file("voice-1", b"ogg" * 1000, file_path="voice/v.oga")
    tg.add_file("huge-1", b"h" * 60_000, file_path="documents/h.pdf")
    tg.add_file("gone-1", b"g", downloadable=False)
    updates: list[dict[str, Any]] = [
        {"text": "hello"},
        {"text": "menu"},
        {"photo": [{"file_id": "photo-1", "file_unique_id": "p", "width": 9, "height": 9, "file_size": 4000}]},
        {"document": {"file_id": "doc-1", "file_unique_id": "d", "file_name": "a.pdf", "file_size": 3000}},
        {"voice": {"file_id": "voice-1", "file_unique_id": "v", "duration": 1, "file_size": 3000}},
        {"document": {"file_id": "huge-1", "file_unique_id": "h", "file_name": "h.pdf", "file_size": 60_000}},
        {"document": {"file_id": "gone-1", "file_unique_id": "g", "file_name": "g.pdf", "file_size": 1}},
        {"text": "upload"},
        {"text": "internal"},
    ]
    for content in updates:
        tg.push_update(tg.message_update(42, from_user=ANN, **content))
    received = await emulator.wait_for_received(len(updates))
    await emulator.wait_for_replies(len(updates))
    menu = next(m for m in tg.sent_to(42) if m.get("reply_markup"))
    tg.push_update(tg.callback_update(42, "yes", message=menu, from_user=ANN))
    await emulator.wait_for_replies(len(updates) + 1)
    await emulator.wait_idle()
    links = [r.body["message"]["data"]["url"] for r in received if r.body["message"]["kind"] == "file_visitor"]
    assert len(links) == 5
    statuses = [capture.answer(await client.get(link)).status_code for link in links]
    assert statuses == [200, 200, 200, 413, 404], "huge-1 is too big for the fake Bot API, gone-1 is lost"
    token = links[0].rsplit("/", 1)[1]
    assert capture.answer(await client.get(f"{loop.url}/files/{token[:-3]}abc")).status_code == 403
    assert capture.answer(await client.get((await loop.signer(ttl=-5)).sign("tg", "doc-1"))).status_code == 410
    for path in ("/healthz", "/readyz", "/metrics", "/nowhere", f"/channels/tg/{URL_SECRET}x/send_message"):
        capture.answer(await client.get(loop.url + path))
    metrics = capture.answer(await client.get(f"{loop.url}/metrics",
                                              headers={"Authorization": f"Bearer {METRICS_TOKEN}"}))
    assert "omnichannel_bridge_files_refused_total" in metrics.text
    wrong = {"Authorization": "Token not-the-token"}
    capture.answer(await client.post(f"{loop.url}/channels/tg/send_message", json={"chat_id": 1}, headers=wrong))
    capture.answer(await client.post(f"{loop.url}/channels/tg/{URL_SECRET}/send_message", content=b"{not json"))
    await tg.wait_for("sendDocument")


async def test_no_secret_in_platform_payloads_answers_or_logs(tmp_path: Path, file_server: FileServer) -> None:
    file_server.add("report.pdf", b"%PDF report", "application/pdf")
    stream = io.StringIO()
    capture = Capture()
    files = FilesConfig(signing_key=None, allow_private_networks=["127.0.0.1/32"])
    async with run_loop(tmp_path, files=files, telegram={"files_as": "upload"}, script=script(file_server),
                        metrics_token=METRICS_TOKEN, logging_config=LoggingConfig(level="DEBUG"),
                        log_stream=stream) as loop:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            await drive(loop, client, capture)
        signing_key = await loop.signing_key()
        platform_bodies = [json.dumps(record.body) for record in loop.emulator.received()]
        agent_answers = [record.response for record in loop.emulator.replies()]
        telegram_calls = [repr(call.params) for call in loop.tg.calls]
    logs = stream.getvalue()
    # The capture holds what it should, so an empty or partial capture cannot pass for a clean one.
    for expected in ("file link refused", "file download refused", "/files/***", "sendDocument", "getUpdates"):
        assert expected in logs, expected
    assert len(platform_bodies) == 10 and len(agent_answers) == 10
    bot_token = loop.tg.token
    secrets = {
        "bot token": bot_token,
        "bot token secret part": bot_token.split(":", 1)[1],
        "platform token": PLATFORM_TOKEN,
        "reply token": REPLY_TOKEN,
        "url secret": URL_SECRET,
        "signing key": signing_key,
        "metrics token": METRICS_TOKEN,
    }
    places = {
        "platform request bodies": "\n".join(platform_bodies),
        "answers to the agent": "\n".join(agent_answers),
        "answers to HTTP clients": "\n".join(capture.texts),
        "calls to Telegram": "\n".join(telegram_calls),
        "log output": logs,
    }
    leaks = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        for where, text in places.items()
        if secret in text or quote(secret, safe="") in text
    ]
    assert leaks == []
