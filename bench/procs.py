"""Child processes of a benchmark run: servers pinned to the app's core, the upstream and load generator on
the other, and the CPU time each server used (read from /proc, so noise from other processes on the machine
shows up as lower throughput but not as more CPU per request)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from common import cpus_for

__all__ = [
    "BENCH_DIR",
    "Meter",
    "Server",
    "core_busy",
    "cpu_seconds",
    "fetch_json",
    "run_json",
    "script",
    "start_server",
    "stopping",
    "wait_http",
]

BENCH_DIR = Path(__file__).resolve().parent
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads included."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def core_busy(core: int) -> float:
    """Seconds one CPU spent busy (user, nice, system, interrupts, steal) since boot, whoever ran there."""
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            if line.startswith(f"cpu{core} "):
                ticks = [int(value) for value in line.split()[1:]]
                return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]) / _TICKS
    raise RuntimeError(f"no CPU {core} in /proc/stat")


class Meter:
    """CPU a server used over a phase, and the share of its core that other processes took meanwhile: the
    noise indicator (other test suites on a shared machine show up here, not in the server's CPU per request)."""

    def __init__(self, server: Server, core: int) -> None:
        self.server = server
        self.core = core
        self._start = (server.cpu(), core_busy(core), time.monotonic())

    def read(self) -> tuple[float, float]:
        """(server CPU seconds, share of the core used by other processes) since the meter started."""
        cpu0, busy0, wall0 = self._start
        cpu = self.server.cpu() - cpu0
        wall = time.monotonic() - wall0
        others = max(0.0, core_busy(self.core) - busy0 - cpu)
        return cpu, (others / wall if wall > 0 else 0.0)


class Server:
    """A running child process; `stop()` sends SIGTERM, then SIGKILL after `grace` seconds."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with status {code}; last lines of {self.log_path}:\n"
                               + self.tail())

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, grace: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5.0)


def start_server(name: str, argv: Sequence[str], *, core: int, log_dir: Path,
                 env: dict[str, str] | None = None) -> Server:
    """Start `argv` pinned to `core` from its first instruction (threads it starts inherit the pinning)."""
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")
    cpus = cpus_for(core)

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    process = subprocess.Popen(
        list(argv), stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin, env=env, cwd=BENCH_DIR.parent
    )
    log.close()
    return Server(name, process, log_path)


def wait_http(url: str, server: Server, *, timeout: float = 30.0) -> None:
    """Wait until `url` answers anything below 500 (the app finished its startup)."""
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not become ready at {url} in {timeout:g}s:\n{server.tail()}")
        time.sleep(0.1)


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10.0) as response:
        return json.loads(response.read())


def run_json(argv: Sequence[str], *, timeout: float) -> Any:
    """Run a bench script to completion and decode the JSON object it prints last."""
    done = subprocess.run(list(argv), capture_output=True, timeout=timeout, cwd=BENCH_DIR.parent, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(BENCH_DIR / name), *args]


@contextlib.contextmanager
def stopping(*servers: Server) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()
