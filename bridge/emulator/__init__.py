"""A platform emulator: the Omnichannel side of the wire, strictly as the public API documents it, with a
scripted agent that replies through the bridge's `/send_message` endpoint.

Used by the bridge's end-to-end tests, by plugin authors' tests (`run_emulator`), and by hand
(`omnichannel-bridge emulator`). It records everything it received and sent, and can be told to fail.
"""

from bridge.emulator.app import WEBHOOK_PATH, create_emulator_app, emulator_of
from bridge.emulator.config import EmulatorChannel, EmulatorConfig, EmulatorConfigError, load_emulator_config
from bridge.emulator.core import NO_ACTIVE_CHANNEL, Emulator
from bridge.emulator.inbound import file_type
from bridge.emulator.records import FaultRule, ReceivedRecord, ReplyRecord
from bridge.emulator.runner import RunningEmulator, run_emulator
from bridge.emulator.script import (
    FileStep,
    KeyboardStep,
    OperatorStep,
    RawStep,
    Rule,
    Script,
    ScriptButton,
    ScriptError,
    default_script,
    load_script,
    long_text,
    parse_script,
)

__all__ = [
    "NO_ACTIVE_CHANNEL",
    "WEBHOOK_PATH",
    "Emulator",
    "EmulatorChannel",
    "EmulatorConfig",
    "EmulatorConfigError",
    "FaultRule",
    "FileStep",
    "KeyboardStep",
    "OperatorStep",
    "RawStep",
    "ReceivedRecord",
    "ReplyRecord",
    "Rule",
    "RunningEmulator",
    "Script",
    "ScriptButton",
    "ScriptError",
    "create_emulator_app",
    "default_script",
    "emulator_of",
    "file_type",
    "load_emulator_config",
    "load_script",
    "long_text",
    "parse_script",
    "run_emulator",
]
