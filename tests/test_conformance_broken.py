"""Deliberately broken adapters fail the conformance suite, each with a message that says what is wrong.

The suite runs in a separate pytest process, exactly as an adapter package runs it: the example
template's own test module, plus subclasses whose adapter breaks one rule each. A correct adapter in the same run
passes the same tests, so each failure is the broken rule's and not the harness's.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TEMPLATE_TESTS = Path(__file__).resolve().parents[1] / "examples" / "adapter-template" / "tests"

BROKEN = '''

import asyncio

from bridge import Outbound, OutboundText, PermanentSendError


class SwallowingChirp(ChirpAdapter):
    """Logs a refusal and carries on: the message would vanish without a dead letter."""

    async def do_send(self, message: Outbound) -> None:
        try:
            await super().do_send(message)
        except PermanentSendError:
            self.log.warning("Chirp refused a message; ignoring it")


class ShufflingChirp(ChirpAdapter):
    """Holds back the first part of a long text and sends it after the second."""

    held: dict[str, Outbound] = {}

    async def do_send(self, message: Outbound) -> None:
        content = message.content
        if isinstance(content, OutboundText) and len(content.text) > 200 and message.message_id.endswith(":0"):
            self.held[message.native_chat_id] = message
            return
        await super().do_send(message)
        held = self.held.pop(message.native_chat_id, None)
        if held is not None:
            await super().do_send(held)


class LeakyChirp(ChirpAdapter):
    """Starts a background task and forgets it in do_stop."""

    async def do_start(self) -> None:
        await super().do_start()
        self.poller = asyncio.create_task(asyncio.Event().wait(), name="chirp-poller")


class ChattyChirp(ChirpAdapter):
    """Quotes the request, token included, in its send errors: they end up stored as failure reasons."""

    async def do_send(self, message: Outbound) -> None:
        try:
            await super().do_send(message)
        except PermanentSendError as exc:
            raise PermanentSendError(f"{exc} (POST /v1/messages?access_token={self.config.api_token})") from None


class TestSwallowing(TestChirpConformance):
    adapter_class = SwallowingChirp


class TestShuffling(TestChirpConformance):
    adapter_class = ShufflingChirp


class TestLeaky(TestChirpConformance):
    adapter_class = LeakyChirp


class TestChatty(TestChirpConformance):
    adapter_class = ChattyChirp
'''

SELECTED = " or ".join([
    "(TestChirpConformance and (permanent or long_text or start_and_stop or secrets))",
    "(TestSwallowing and permanent)",
    "(TestShuffling and long_text)",
    "(TestLeaky and start_and_stop)",
    "(TestChatty and secrets)",
])


@dataclass(frozen=True)
class Outcome:
    returncode: int
    output: str

    def has(self, *fragments: str) -> bool:
        """Some line holds every fragment, in order."""
        for line in self.output.splitlines():
            position = 0
            for fragment in fragments:
                position = line.find(fragment, position)
                if position < 0:
                    break
                position += len(fragment)
            else:
                return True
        return False


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """One run of the suite in its own pytest process, shared by the tests here."""
    directory = tmp_path_factory.mktemp("broken-adapters")
    (directory / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    source = (TEMPLATE_TESTS / "test_chirp_conformance.py").read_text(encoding="utf-8")
    (directory / "test_broken_chirps.py").write_text(source + BROKEN, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf", "--tb=short", "--show-capture=no",
         "-k", SELECTED, str(directory)],
        cwd=directory, capture_output=True, text=True, timeout=240, check=False,
    )
    return Outcome(done.returncode, done.stdout + done.stderr)


def failed(outcome: Outcome, test: str) -> bool:
    return outcome.has(f"FAILED test_broken_chirps.py::{test}")


def test_correct_adapter_passes_the_same_tests(outcome: Outcome) -> None:
    assert outcome.has("4 failed, 4 passed"), outcome.output
    assert not failed(outcome, "TestChirpConformance")


def test_swallowed_permanent_error_is_named(outcome: Outcome) -> None:
    assert failed(outcome, "TestSwallowing::test_permanent_error_is_classified"), outcome.output
    assert outcome.has(
        "adapter.send returned normally although the messenger refused the message for good: the failure was "
        "swallowed, so the message would be lost without a dead letter; raise PermanentSendError",
    ), outcome.output


def test_parts_out_of_order_are_named(outcome: Outcome) -> None:
    assert failed(outcome, "TestShuffling::test_outbound_long_text_arrives_whole_and_in_order"), outcome.output
    assert outcome.has(
        "parts of a long text arrived out of order: part 2 ('Paragraph 1 ", "belongs before part 1 ('Paragraph ",
    ), outcome.output


def test_task_left_running_is_named(outcome: Outcome) -> None:
    assert failed(outcome, "TestLeaky::test_start_and_stop_are_clean"), outcome.output
    assert outcome.has("the adapter left tasks running after start, start, stop, stop: chirp-poller"), outcome.output


def test_secret_in_an_error_is_named_and_masked(outcome: Outcome) -> None:
    assert failed(outcome, "TestChatty::test_secrets_stay_out_of_logs"), outcome.output
    assert outcome.has(
        "the secret `api_token` (****6789) appeared in the permanent send error's message, which the bridge "
        "stores as the delivery's failure reason",
    ), outcome.output
    failures = [line for line in outcome.output.splitlines() if "appeared in" in line]
    assert failures and not any("chirp-api-token-0123456789" in line for line in failures)
