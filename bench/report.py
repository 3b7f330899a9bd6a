"""Turns the results of one or more runs into the printed tables and the verdict on the issue's targets.

With several runs every number is the median of the runs (each number on its own, so a row may mix runs).
"""

from __future__ import annotations

import platform
import sqlite3
import statistics
from collections.abc import Sequence
from importlib import metadata
from typing import Any

__all__ = ["environment", "median_results", "render"]

Results = dict[str, Any]

BARE_SHARE = 0.35  # the durable path's throughput as a share of the bare endpoint's
RELAY_FACTOR = 5.0  # ... as a multiple of the naive relay's
P99_LIMIT_MS = 50.0  # added latency at half load
FLAT_GROWTH = 0.02
KEEP_UP = 0.9  # delivery during maximum ingest, as a share of ingest, for the backlog to count as bounded


def median_results(runs: Sequence[Results]) -> Results:
    """Median of every number found at the same place in each run; other values come from the first run."""
    first = runs[0]
    merged: Results = {}
    for key, value in first.items():
        values = [run.get(key) for run in runs]
        if isinstance(value, dict):
            merged[key] = median_results([v for v in values if isinstance(v, dict)])
        elif isinstance(value, bool) or not isinstance(value, int | float):
            merged[key] = value
        else:
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            merged[key] = statistics.median(numbers) if numbers else None
    return merged


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{widths[0]}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [line.format(*header), "  ".join("-" * w for w in widths)]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def _throughput(results: Results) -> str:
    rows = []
    for key, label in (("bare", "bare endpoint (msgspec decode)"), ("relay", "naive relay (awaits httpx POST)")):
        r = results.get(key)
        if r:
            rows.append([label, _n(r["rate"]), "-", _n(r["rate"]), _n(r["cpu_us"]),
                         f"{_n(r['answer_p50_ms'], 1)} / {_n(r['answer_p99_ms'], 1)}", "-", _pct(r["gen_cpu"]),
                         _pct(r.get("others_on_core"))])
    for backend in ("sqlite", "redis"):
        r = results.get(backend)
        if r:
            rows.append([f"bridge, {backend} queue", _n(r["ingest"]), _n(r["drain"]), _n(r["sustained"]),
                         _n(r["cpu_us"]), f"{_n(r['answer_p50_ms'], 1)} / {_n(r['answer_p99_ms'], 1)}",
                         f"{_n(r['backlog_end'])} / {_n(r['backlog_max'])}", _pct(r["gen_cpu"]),
                         _pct(r.get("others_on_core"))])
    header = ["scenario (max load)", "answers/s", "acks/s", "sustained/s", "CPU us/msg", "answer p50/p99 ms",
              "backlog end/max", "gen CPU", "noise"]
    return _table(header, rows)


def _latency(results: Results) -> str:
    rows = []
    for backend in ("sqlite", "redis"):
        r = results.get(backend)
        if r and "half_rate" in r:
            rows.append([f"bridge, {backend} queue", _n(r["half_target"]), _n(r["half_rate"]),
                         _n(r["half_p50_ms"], 1), _n(r["half_p99_ms"], 1), _n(r["half_answer_p99_ms"], 1),
                         _n(r.get("half_cpu_us")), _pct(r.get("half_others_on_core"))])
    header = ["half load", "target/s", "sent/s", "added p50 ms", "added p99 ms", "answer p99 ms", "CPU us/msg",
              "noise"]
    return _table(header, rows)


def _clients(results: Results) -> str:
    found = results.get("clients") or {}
    labels = {"httpx": "httpx.AsyncClient", "aiohttp": "aiohttp.ClientSession",
              "platform_client": "bridge PlatformClient (bridge.http1)"}
    rows = [[labels.get(name, name), _n(r["cpu_ms"], 3), _n(r["rate"])] for name, r in found.items()]
    return _table(["HTTP client, 50 in flight", "CPU ms/POST", "POST/s"], rows)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _profiles(results: Results) -> str:
    parts = []
    for backend in ("sqlite", "redis"):
        found = (results.get(backend) or {}).get("profile")
        if not found:
            continue
        if "error" in found:
            parts.append(f"{backend}: {found['error']}")
            continue
        rows = [[name, _pct(share)] for name, share in found["stages"].items()]
        parts.append(_table([f"bridge, {backend} queue: stage", "share"], rows))
        rows = [[name, _pct(share)] for name, share in found["top_frames"].items()]
        parts.append(_table([f"bridge, {backend} queue: frame on top", "share"], rows))
    return "\n\n".join(parts)


def _verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


def targets(results: Results) -> list[tuple[bool | None, str]]:
    """(met, explanation) per target and backend; None when a needed scenario was not run."""
    bare, relay = results.get("bare"), results.get("relay")
    lines: list[tuple[bool | None, str]] = []
    for backend in ("sqlite", "redis"):
        r = results.get(backend)
        if not r:
            continue
        name = f"{backend}:"
        if bare:
            share = r["sustained"] / bare["rate"] if bare["rate"] else 0.0
            cpu_share = bare["cpu_us"] / r["cpu_us"] if r["cpu_us"] else 0.0
            lines.append((share >= BARE_SHARE, f"{name} durable path {share:.0%} of the bare endpoint "
                          f"(target >= {BARE_SHARE:.0%}; by CPU per message {cpu_share:.0%})"))
        if relay:
            factor = r["sustained"] / relay["rate"] if relay["rate"] else 0.0
            lines.append((factor >= RELAY_FACTOR, f"{name} durable path {factor:.1f}x the naive relay "
                          f"(target >= {RELAY_FACTOR:g}x)"))
        p99 = r.get("half_p99_ms")
        lines.append((None if p99 is None else p99 <= P99_LIMIT_MS,
                      f"{name} p99 added latency {_n(p99, 1)} ms at half load (target <= {P99_LIMIT_MS:g} ms)"))
        keep_up = r["drain"] / r["ingest"] if r["ingest"] else 1.0
        refused = sum(int(v) for v in r["errors"].values())
        # A webhook that slows its senders (delivery.high_water) keeps the backlog flat once it is reached:
        # growth in the second half under 2 % of the ingest rate counts as bounded, like refusals do.
        flat = r["ingest"] > 0 and r["backlog_growth"] <= FLAT_GROWTH * r["ingest"]
        bounded = keep_up >= KEEP_UP or refused > 0 or flat
        how = (f"delivery ran at {keep_up:.0%} of ingest under maximum load, backlog "
               f"{_n(r['backlog_end'])} at the end ({_n(r['backlog_growth'])}/s growth in the second half)")
        if refused:
            how += f", {refused} webhook calls refused (backpressure)"
        if flat and keep_up < KEEP_UP:
            how += ", held flat by slowing the senders (backpressure)"
        lines.append((bounded, f"{name} ingest does not starve delivery: {how}"))
    return lines


# The packages whose versions move the numbers: the server stack both sides share, and the bridge's clients.
_PACKAGES = ("uvicorn", "h11", "litestar", "msgspec", "httpx", "aiohttp", "redis", "hiredis")


def environment(redis_server: str | None = None) -> str:
    """One line naming what the numbers were measured with: results from different versions do not compare.
    `redis_server` says which Redis the Redis scenario used."""
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} -")
    server = f"; {redis_server}" if redis_server else ""
    return (f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, Linux {platform.release()}; "
            + ", ".join(versions) + server)


def render(results: Results, *, runs: int) -> str:
    title = f"medians of {runs} runs" if runs > 1 else "one run"
    parts = [f"== throughput ({title}) ==", _throughput(results)]
    if results.get("sqlite") or results.get("redis"):
        parts += ["", "== added latency (load generator send -> platform receipt) ==", _latency(results)]
    profiles = _profiles(results)
    if profiles:
        parts += ["", "== where the bridge's time goes at maximum load (py-spy, GIL held) ==", profiles]
    if results.get("clients"):
        parts += ["", "== HTTP client cost ==", _clients(results)]
    found = targets(results)
    if found:
        parts += ["", "== targets =="] + [f"[{_verdict(ok)}] {text}" for ok, text in found]
    return "\n".join(parts)
