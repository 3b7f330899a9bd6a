"""The measured scenarios: the bare endpoint, the naive relay, and the bridge's inbound path on one backend.

Every scenario starts its server pinned to the app core, warms it up briefly, then measures with the load
generator on the other core. Server CPU time is read before and after, so each row also says how much CPU
one request (for the bridge: one message, taken over and delivered) cost, which noise from other processes
on the machine does not inflate the way it lowers throughput.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import APP_CORE, BOT_TOKEN, PLATFORM_PATH, WEBHOOK_SECRET, free_port, percentile
from procs import Meter, Server, fetch_json, run_json, script, start_server, stopping, wait_http
from profile_bridge import start_profiler

__all__ = ["Bench", "backlog_series", "measure_bridge", "measure_endpoint"]

_WARMUP = 1.5


@dataclass
class Bench:
    """What one run shares between scenarios."""

    upstream: str  # http://127.0.0.1:PORT of the platform stub
    telegram: str  # URL of the fake Telegram Bot API
    work_dir: Path
    connections: int
    duration: float
    chats: int
    redis_url: str
    bridge_log_level: str
    profile_dir: Path | None = None
    next_id: int = 1

    def load(self, url: str, phase: str, *, duration: float, rate: float | None = None,
             headers: tuple[str, ...] = ()) -> dict[str, Any]:
        argv = script("loadgen.py", url, "--connections", str(self.connections), "--duration", f"{duration:g}",
                      "--first-id", str(self.next_id), "--chats", str(self.chats), "--phase", phase)
        if rate is not None:
            argv += ["--rate", f"{rate:.1f}"]
        for header in headers:
            argv += ["--header", header]
        result: dict[str, Any] = run_json(argv, timeout=duration + 60)
        self.next_id = int(result["next_id"])
        return result

    def stats(self, phase: str) -> dict[str, Any]:
        found: dict[str, Any] = fetch_json(f"{self.upstream}/_stats?phase={phase}")
        return found


def _summary(load: dict[str, Any], cpu: float, others: float) -> dict[str, Any]:
    ok = int(load["ok"])
    return {
        "others_on_core": others,
        "rate": load["rate"],
        "ok": ok,
        "errors": {k: v for k, v in load["statuses"].items() if not k.startswith("2")},
        "answer_p50_ms": load["answer_p50_ms"],
        "answer_p99_ms": load["answer_p99_ms"],
        "cpu_us": cpu / ok * 1e6 if ok else None,
        "gen_cpu": load["gen_cpu"],
    }


def measure_endpoint(bench: Bench, kind: str) -> dict[str, Any]:
    """Maximum rate of the bare endpoint or the naive relay (closed loop, `connections` in flight)."""
    port = free_port()
    argv = script("apps.py", kind, "--port", str(port))
    if kind == "relay":
        argv += ["--upstream", f"{bench.upstream}/relay"]
    server = start_server(kind, argv, core=APP_CORE, log_dir=bench.work_dir)
    url = f"http://127.0.0.1:{port}/webhook"
    with stopping(server):
        wait_http(url, server)
        bench.load(url, f"warm-{kind}", duration=_WARMUP)
        meter = Meter(server, APP_CORE)
        load = bench.load(url, f"max-{kind}", duration=bench.duration)
        return _summary(load, *meter.read())


# ---------------------------------------------------------------------------------------------- the bridge


def _bridge_config(bench: Bench, port: int, store_url: str) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "store": {"url": store_url},
        "logging": {"level": bench.bridge_log_level, "format": "json"},
        "channels": [{
            "id": "tg",
            "platform": {"webhook_url": f"{bench.upstream}{PLATFORM_PATH}", "token": "bench-reply-token"},
            "adapter": {"type": "telegram", "bot_token": BOT_TOKEN, "api_base_url": bench.telegram,
                        "mode": "webhook", "webhook_secret": WEBHOOK_SECRET},
        }],
    }


def _start_bridge(bench: Bench, backend: str, name: str) -> tuple[Server, str, str]:
    """A fresh bridge on a fresh store; returns the server, its webhook URL and its Redis prefix (or "")."""
    port = free_port()
    name = f"{name}-{secrets.token_hex(3)}"  # runs share the work folder: never reuse a database
    prefix = ""
    if backend == "redis":
        prefix = f"bench-{secrets.token_hex(6)}"
        store_url = f"{bench.redis_url}?prefix={prefix}"
    else:
        store_url = f"sqlite:///{bench.work_dir / (name + '.db')}"
    config_path = bench.work_dir / f"{name}.yaml"
    config_path.write_text(json.dumps(_bridge_config(bench, port, store_url), indent=2))  # JSON is YAML
    server = start_server(name, [sys.executable, "-m", "bridge", "run", "-c", str(config_path)], core=APP_CORE,
                          log_dir=bench.work_dir)
    wait_http(f"http://127.0.0.1:{port}/healthz", server, timeout=60.0)
    return server, f"http://127.0.0.1:{port}/channels/tg/telegram/webhook", prefix


def _wait_delivered(bench: Bench, phase: str, expected: int, timeout: float, server: Server) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = bench.stats(phase)
        if stats["phase_count"] >= expected or time.monotonic() > deadline:
            return stats
        server.check_alive()
        time.sleep(0.2)


def backlog_series(load: dict[str, Any], arrivals_ns: list[int], step: float = 1.0) -> list[int]:
    """Accepted but not yet delivered, sampled every `step` seconds of the load phase and at its end."""
    answered = load["ok_at_ns"]
    start = int(load["start_ns"])
    end = start + int(float(load["elapsed"]) * 1e9)
    marks = [start + int(k * step * 1e9) for k in range(1, int(float(load["elapsed"]) / step) + 1)]
    if not marks or marks[-1] < end:
        marks.append(end)
    delivered = sorted(arrivals_ns)
    series = []
    for mark in marks:
        accepted = _count_upto(answered, mark)
        series.append(accepted - _count_upto(delivered, mark))
    return series


def _count_upto(sorted_ns: list[int], mark: int) -> int:
    lo, hi = 0, len(sorted_ns)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_ns[mid] <= mark:
            lo = mid + 1
        else:
            hi = mid
    return lo


def measure_bridge(bench: Bench, backend: str) -> dict[str, Any]:
    """Ingest and drain at maximum load, the backlog it leaves, then latency at half the sustained rate."""
    headers = (f"X-Telegram-Bot-Api-Secret-Token:{WEBHOOK_SECRET}",)
    drain_timeout = max(20.0, 2 * bench.duration)
    server, url, prefix = _start_bridge(bench, backend, f"bridge-{backend}")
    servers, prefixes = [server], [prefix]
    try:
        warm = bench.load(url, f"warm-{backend}", duration=_WARMUP, headers=headers)
        _wait_delivered(bench, f"warm-{backend}", int(warm["ok"]), drain_timeout, server)

        phase = f"max-{backend}"
        meter = Meter(server, APP_CORE)
        profiler = start_profiler(server.pid, bench.duration, bench.profile_dir, backend)
        load = bench.load(url, phase, duration=bench.duration, headers=headers)
        at_end = bench.stats(phase)
        stats = _wait_delivered(bench, phase, int(load["ok"]), drain_timeout, server)
        result = _max_result(load, at_end, stats, *meter.read())
        if profiler is not None:
            result["profile"] = profiler.summary()
        result["drained"] = drained = stats["phase_count"] >= load["ok"]
        if not drained:
            # A backlog that could not drain would add its wait to every latency: measure on a fresh bridge.
            server.stop()
            server, url, prefix = _start_bridge(bench, backend, f"bridge-{backend}-half")
            servers.append(server)
            prefixes.append(prefix)
        result.update(_half_load(bench, backend, server, url, headers, result["sustained"] / 2, drain_timeout))
        return result
    finally:
        for running in servers:
            running.stop()
        if backend == "redis":
            _clean_redis(bench.redis_url, [p for p in prefixes if p])


def _max_result(
    load: dict[str, Any], at_end: dict[str, Any], stats: dict[str, Any], cpu: float, others: float
) -> dict[str, Any]:
    start = int(load["start_ns"])
    elapsed = float(load["elapsed"])
    end = start + int(elapsed * 1e9)
    arrivals = sorted(stats["arrivals_ns"])
    in_window = _count_upto(arrivals, end)
    ok = int(load["ok"])
    delivered = len(arrivals)
    last = arrivals[-1] if arrivals else end
    series = backlog_series(load, arrivals)
    half = len(series) // 2
    growth = (series[-1] - series[half - 1]) / (len(series) - half) if half and len(series) > half else 0.0
    result = _summary(load, cpu, others)
    result.update(
        ingest=load["rate"],
        drain=in_window / elapsed if elapsed else 0.0,
        # Everything taken over, divided by the time until the last of it reached the platform.
        sustained=delivered / ((last - start) / 1e9) if delivered else 0.0,
        backlog_end=ok - int(at_end["phase_count"]),
        backlog_max=max(series) if series else 0,
        backlog_growth=growth,
        backlog_series=series,
        drain_after=(last - end) / 1e9 if delivered >= ok else None,
        undelivered=ok - delivered,
        duplicates=stats["duplicates"],
    )
    result["cpu_us"] = cpu / delivered * 1e6 if delivered else None
    return result


def _half_load(bench: Bench, backend: str, server: Server, url: str, headers: tuple[str, ...], rate: float,
               drain_timeout: float) -> dict[str, Any]:
    phase = f"half-{backend}"
    meter = Meter(server, APP_CORE)
    load = bench.load(url, phase, duration=bench.duration, rate=max(rate, 1.0), headers=headers)
    stats = _wait_delivered(bench, phase, int(load["ok"]), drain_timeout, server)
    cpu, others = meter.read()
    latencies = sorted(value / 1e6 for value in stats["latencies_ns"])
    return {
        "half_cpu_us": cpu / len(latencies) * 1e6 if latencies else None,
        "half_others_on_core": others,
        "half_rate": load["rate"],
        "half_target": rate,
        "half_p50_ms": percentile(latencies, 0.50),
        "half_p99_ms": percentile(latencies, 0.99),
        "half_answer_p99_ms": load["answer_p99_ms"],
        "half_errors": {k: v for k, v in load["statuses"].items() if not k.startswith("2")},
        "half_undelivered": int(load["ok"]) - len(latencies),
    }


def _clean_redis(url: str, prefixes: list[str]) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for prefix in prefixes:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for n in range(0, len(keys), 500):
                client.unlink(*keys[n : n + 500])
    finally:
        client.close()
