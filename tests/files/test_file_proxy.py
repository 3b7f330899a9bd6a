"""Visitors' files through a running bridge: fake Telegram → platform emulator as `file_visitor`, then fetched
through the signed proxy; and every way a link can be refused (403, 404, 410, 413), counted in the metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.config import FilesConfig
from bridge.core import stable_id
from bridge.files import FileUrlSigner
from tests.files.loop_support import ANN, SIGNING_KEY, Loop, run_loop


@pytest.fixture
async def loop(tmp_path: Path) -> AsyncIterator[Loop]:
    async with run_loop(tmp_path) as running:
        yield running


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        return await client.get(url)


async def refused_counts(loop: Loop) -> dict[tuple[str, str], float]:
    response = await get(f"{loop.url}/metrics")
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "omnichannel_bridge_files_refused_total":
                counts[(sample.labels["channel"], sample.labels["reason"])] = sample.value
    return counts


def file_message(loop: Loop, index: int) -> dict[str, Any]:
    message: dict[str, Any] = loop.emulator.received()[index].body["message"]
    assert message["kind"] == "file_visitor"
    return message


async def send_document(loop: Loop, file_id: str, content: bytes, name: str = "report.pdf",
                        *, message_id: int | None = None) -> dict[str, Any]:
    """A document from Ann; returns the `file_visitor` message the platform got for it."""
    tg = loop.tg
    tg.add_file(file_id, content, file_path=f"documents/{file_id}.pdf")
    document = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": name,
                "mime_type": "application/pdf", "file_size": len(content)}
    seen = len(loop.emulator.received())
    tg.push_update(tg.message_update(42, document=document, from_user=ANN, message_id=message_id))
    await loop.emulator.wait_for_received(seen + 1)
    return file_message(loop, seen)


async def test_photo_document_and_voice_arrive_and_download_exactly(loop: Loop) -> None:
    tg = loop.tg
    photo = b"\xff\xd8\xff\xe0 jpeg " + bytes(range(256)) * 300
    document = b"%PDF-1.7\n" + bytes(range(256)) * 900  # several chunks
    voice = b"OggS voice " * 500
    tg.add_file("photo-big", photo, file_path="photos/file_1.jpg")
    tg.add_file("doc-1", document, file_path="documents/file_2.pdf")
    tg.add_file("voice-1", voice, file_path="voice/file_3.oga")
    sizes = [{"file_id": "photo-small", "file_unique_id": "ps", "width": 90, "height": 90, "file_size": 10},
             {"file_id": "photo-big", "file_unique_id": "pb", "width": 900, "height": 900, "file_size": len(photo)}]
    tg.push_update(tg.message_update(42, message_id=11, photo=sizes, from_user=ANN))
    tg.push_update(tg.message_update(42, message_id=12, from_user=ANN, document={
        "file_id": "doc-1", "file_unique_id": "d1", "file_name": "Quarterly report.pdf",
        "mime_type": "application/pdf", "file_size": len(document)}))
    tg.push_update(tg.message_update(42, message_id=13, from_user=ANN, voice={
        "file_id": "voice-1", "file_unique_id": "v1", "duration": 3, "mime_type": "audio/ogg",
        "file_size": len(voice)}))
    await loop.emulator.wait_for_received(3)
    expected = [
        ("photo-big", "photo_11.jpg", "image/jpeg", photo),
        ("doc-1", "Quarterly report.pdf", "application/pdf", document),
        ("voice-1", "voice_13.ogg", "audio/ogg", voice),
    ]
    for index, (file_id, name, content_type, content) in enumerate(expected):
        data = file_message(loop, index)["data"]
        assert (data["state"], data["name"], data["content_type"], data["size"]) == (
            "ready", name, content_type, len(content))
        assert data["id"] == stable_id("file", "tg", file_id)
        assert data["url"].startswith(f"{loop.url}/files/")
        assert tg.token not in data["url"] and tg.token.split(":")[1] not in data["url"]
        response = await get(data["url"])
        assert response.status_code == 200
        assert response.content == content
        assert response.headers["content-type"] == content_type
        assert response.headers["content-length"] == str(len(content))
        assert name.replace(" ", "%20") in response.headers["content-disposition"]
    assert [call.params["file_id"] for call in tg.calls_to("getFile")] == ["photo-big", "doc-1", "voice-1"]


async def test_data_id_is_stable_for_the_same_file(loop: Loop) -> None:
    first = await send_document(loop, "doc-same", b"same bytes")
    again = await send_document(loop, "doc-same", b"same bytes")
    other = await send_document(loop, "doc-other", b"other bytes")
    assert first["data"]["id"] == again["data"]["id"] == stable_id("file", "tg", "doc-same")
    assert first["id"] != again["id"], "two messages, one file"
    assert other["data"]["id"] != first["data"]["id"]


async def test_tampered_and_malformed_links_are_403(loop: Loop) -> None:
    data = (await send_document(loop, "doc-t", b"secret document"))["data"]
    token = data["url"].rsplit("/", 1)[1]
    body, mac = token.split(".")
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    other_body = FileUrlSigner(SIGNING_KEY, public_url=loop.url, ttl=60).sign("tg", "doc-other").rsplit("/", 1)[1]
    for bad in (f"{body}.{flipped}", f"{other_body.split('.')[0]}.{mac}", body, "x", "not.a-token", f"{body}."):
        response = await get(f"{loop.url}/files/{bad}")
        assert response.status_code == 403, bad
        assert response.json() == {"error": "forbidden", "desc": "this file link is not valid"}
        assert b"secret document" not in response.content
    assert (await refused_counts(loop))[("", "invalid")] == 6
    assert loop.tg.calls_to("getFile") == [], "a refused link never reaches the messenger"


async def test_expired_link_is_410(loop: Loop) -> None:
    await send_document(loop, "doc-e", b"old")
    expired = (await loop.signer(ttl=-1)).sign("tg", "doc-e", name="report.pdf")
    response = await get(expired)
    assert response.status_code == 410
    assert response.json() == {"error": "expired", "desc": "this file link has expired"}
    assert (await refused_counts(loop))[("tg", "expired")] == 1
    assert loop.tg.calls_to("getFile") == []


async def test_deleted_at_the_messenger_is_404(loop: Loop) -> None:
    data = (await send_document(loop, "doc-d", b"soon gone"))["data"]
    loop.tg.fail("getFile", error_code=400, description="Bad Request: invalid file_id", times=None)
    response = await get(data["url"])
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "desc": "the messenger no longer has this file"}
    assert (await refused_counts(loop))[("tg", "gone")] == 1
    loop.tg.clear_failures()
    loop.tg.add_file("doc-d", b"soon gone", downloadable=False)  # getFile answers, the download is lost
    assert (await get(data["url"])).status_code == 404
    assert (await refused_counts(loop))[("tg", "gone")] == 2


async def test_a_file_over_the_messengers_limit_reaches_the_platform_and_answers_413(loop: Loop) -> None:
    loop.tg.max_download_size = 4000  # what the fake Bot API serves; the real one serves 20 MB
    content = b"v" * 5000
    message = await send_document(loop, "doc-huge", content, name="huge.pdf")
    data = message["data"]
    assert (data["name"], data["size"], data["state"]) == ("huge.pdf", 5000, "ready")
    response = await get(data["url"])
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["error"] == "too_large"
    assert answer["size"] == 5000
    assert "larger than the Bot API lets a bot download" in answer["desc"]
    assert (await refused_counts(loop))[("tg", "too_large")] == 1
    assert [c.params["file_id"] for c in loop.tg.calls_to("getFile")] == ["doc-huge"]


async def test_a_file_over_the_bridges_limit_is_refused_without_asking_the_messenger(tmp_path: Path) -> None:
    files = FilesConfig(signing_key=SIGNING_KEY, max_size_mb=4000 / (1024 * 1024))
    async with run_loop(tmp_path, files=files) as loop:
        data = (await send_document(loop, "doc-big", b"b" * 5000, name="big.pdf"))["data"]
        assert (data["name"], data["size"]) == ("big.pdf", 5000)
        response = await get(data["url"])
        assert response.status_code == 413
        assert response.json() == {"error": "too_large", "desc": "the file is 5000 bytes; the limit is 4000 bytes",
                                   "size": 5000, "limit": 4000}
        assert loop.tg.calls_to("getFile") == []
        assert (await refused_counts(loop))[("tg", "too_large")] == 1
        small = (await send_document(loop, "doc-small", b"s" * 3000))["data"]
        assert (await get(small["url"])).content == b"s" * 3000


async def test_links_are_bound_to_their_channel(tmp_path: Path) -> None:
    """Two bots on one bridge: a link resolves its file only through the channel it was signed for."""
    async with run_loop(tmp_path, second_channel=True) as loop:
        assert loop.tg2 is not None
        loop.tg2.add_file("only-at-bot-2", b"bot two's file")
        signer = await loop.signer()
        genuine = signer.sign("tg2", "only-at-bot-2").rsplit("/", 1)[1]
        assert (await get(f"{loop.url}/files/{genuine}")).content == b"bot two's file"
        # Signed for channel tg with bot 2's file reference: asked of bot 1, which has no such file.
        response = await get(signer.sign("tg", "only-at-bot-2"))
        assert response.status_code == 404
        assert [c.params["file_id"] for c in loop.tg.calls_to("getFile")] == ["only-at-bot-2"]
        # The genuine tg2 link rewritten to name channel tg keeps tg2's signature: refused.
        forged = FileUrlSigner("attacker-key", public_url=loop.url, ttl=60).sign("tg", "only-at-bot-2")
        swapped_body = forged.rsplit("/", 1)[1].split(".")[0]
        response = await get(f"{loop.url}/files/{swapped_body}.{genuine.split('.')[1]}")
        assert response.status_code == 403
        # Signed by another bridge's key.
        assert (await get(f"{loop.url}/files/{forged.rsplit('/', 1)[1]}")).status_code == 403
        # Signed with this key for a channel this bridge does not serve.
        response = await get(signer.sign("gone-channel", "only-at-bot-2"))
        assert response.status_code == 404
        assert response.json()["desc"] == "the channel of this file is not configured"
        assert len(loop.tg2.calls_to("getFile")) == 1
        counts = await refused_counts(loop)
        assert (counts[("", "invalid")], counts[("tg", "gone")], counts[("gone-channel", "unknown_channel")]) == (
            2, 1, 1)
