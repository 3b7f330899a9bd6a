"""`omnichannel-bridge adapters`, run as a subprocess like an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from bridge.commands.adapters import config_keys, type_name


def run(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run([sys.executable, "-m", "bridge", "adapters", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_lists_builtin_and_third_party_adapters_with_versions_and_keys() -> None:
    done = run()
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "http  (omnichannel-bridge 0.1.0, adapters.http:HttpAdapter)" in out
    # The example is a separate distribution, found only through its entry point.
    assert "chirp  (omnichannel-bridge-example-adapter 0.1.0, omnichannel_example_adapter:ChirpAdapter)" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["auth", '"bearer"', "|", '"hmac"', "required"] in lines
    assert ["max_skew", "float", "300.0"] in lines
    assert ["token", "str", "|", "null", "null"] in lines
    assert done.stderr == ""


def test_json_output() -> None:
    done = run("--json")
    assert done.returncode == 0, done.stderr
    adapters = {a["name"]: a for a in json.loads(done.stdout)}
    http = adapters["http"]
    assert (http["distribution"], http["version"], http["error"]) == ("omnichannel-bridge", "0.1.0", None)
    keys = {k["key"]: k for k in http["config"]}
    assert keys["callback_url"] == {"key": "callback_url", "type": "str", "required": True, "default": None}
    assert keys["timeout"] == {"key": "timeout", "type": "float", "required": False, "default": 10.0}
    assert adapters["chirp"]["version"] == "0.1.0"


def test_broken_plugins_are_listed_with_the_reason_and_exit_1(tmp_path: Path) -> None:
    dist = tmp_path / "broken_plugin-2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 2.3\n")
    (dist / "entry_points.txt").write_text(
        "[omnichannel_bridge.adapters]\nghost = no_such_module_anywhere:Adapter\nnotadapter = json:loads\n"
    )
    done = run(pythonpath=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    out = done.stdout
    assert "ghost  (broken-plugin 2.3, no_such_module_anywhere:Adapter)\n  error: adapter 'ghost'" in out
    assert "failed to import: No module named 'no_such_module_anywhere'" in out
    assert "notadapter  (broken-plugin 2.3, json:loads)\n  error:" in out and "is not a subclass" in out
    # The working adapters are still listed.
    assert "http  (omnichannel-bridge 0.1.0" in out


class Inner(msgspec.Struct):
    rate: float = 1.5


class Sample(msgspec.Struct, kw_only=True):
    name: str
    mode: Any = None
    tags: list[str] = msgspec.field(default_factory=list)
    inner: Inner = msgspec.field(default_factory=Inner)
    limit: int | None = None


def test_config_keys_of_a_struct() -> None:
    assert [(k.key, k.type, k.required, k.default) for k in config_keys(Sample)] == [
        ("name", "str", True, None),
        ("mode", "any", False, None),
        ("tags", "list[str]", False, []),
        ("inner.rate", "float", False, 1.5),
        ("limit", "int | null", False, None),
    ]
    assert type_name(dict[str, int]) == "dict[str, int]"
