"""The benchmark's one entry point: the bare endpoint, the naive relay and the bridge, side by side, in one run.

    python bench/run.py [--duration 10] [--connections 50] [--runs 3] [--only bare,relay,sqlite,redis,clients]

Servers run pinned to core 0; the load generator, the platform stub, the fake Telegram and the Redis server on
core 1 (see bench/README.md for what each number means and the last results). Only loopback addresses are used.
The Redis scenario starts a private `redis-server` for the run; with --redis-url it uses that server instead,
keys under a fresh `bench-...` prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LOAD_CORE, free_port, pin_to
from procs import Server, run_json, script, start_server
from report import environment, median_results, render
from scenarios import Bench, measure_bridge, measure_endpoint

__all__ = ["main"]

SCENARIOS = ("bare", "relay", "sqlite", "redis", "clients")


def _start_upstream(work_dir: Path) -> tuple[Server, dict[str, Any]]:
    server = start_server("upstream", script("upstream.py"), core=LOAD_CORE, log_dir=work_dir)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        server.check_alive()
        for line in server.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                ready: dict[str, Any] = json.loads(line)
                return server, ready
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"the platform stub did not start:\n{server.tail()}")


def _redis_reachable(url: str) -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _redis_server(url: str, private: bool) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
    try:
        version = client.info("server").get("redis_version", "?")
    except Exception:
        version = "?"
    finally:
        client.close()
    where = "a private server on the load core" if private else f"the server at {url}"
    return f"Redis {version} ({where})"


def _start_redis(work_dir: Path) -> tuple[Server, str] | None:
    """A private Redis on the load generator's core, keeping nothing on disk; None without `redis-server`.

    A shared Redis is scheduled wherever the kernel likes, often on the bridge's core, whose time it then
    takes (10-16 % in the noise column), so the bridge's throughput measured the neighbour too."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = start_server("redis", argv, core=LOAD_CORE, log_dir=work_dir)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10.0
    while _redis_reachable(url) is not None:
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"redis-server did not start:\n{server.tail()}")
        time.sleep(0.05)
    return server, url


def _choose_redis(args: argparse.Namespace, chosen: list[str], work_dir: Path) -> Server | None:
    """Set `args.redis_url` for the Redis scenario: the given server, else a private one (returned, to be
    stopped), else the machine's shared one; drop the scenario when the server is not reachable."""
    if args.redis_url is None:
        started = _start_redis(work_dir)
        if started is not None:
            server, args.redis_url = started
            return server
        print("redis-server not found: the Redis scenario uses redis://127.0.0.1:6379/15", file=sys.stderr)
        args.redis_url = "redis://127.0.0.1:6379/15"
    problem = _redis_reachable(args.redis_url)
    if problem:
        print(f"skipping the Redis scenario: {args.redis_url} is not reachable ({problem})", file=sys.stderr)
        chosen.remove("redis")
    return None


def one_run(args: argparse.Namespace, chosen: list[str], work_dir: Path) -> dict[str, Any]:
    upstream, ready = _start_upstream(work_dir)
    results: dict[str, Any] = {}
    try:
        bench = Bench(
            upstream=f"http://127.0.0.1:{ready['port']}", telegram=str(ready["telegram"]), work_dir=work_dir,
            connections=args.connections, duration=args.duration, chats=args.chats, redis_url=args.redis_url,
            bridge_log_level=args.bridge_log_level, profile_dir=args.profile,
        )
        for name in chosen:
            began = time.monotonic()
            print(f"  {name} ...", end="", flush=True, file=sys.stderr)
            try:
                if name in ("bare", "relay"):
                    results[name] = measure_endpoint(bench, name)
                elif name in ("sqlite", "redis"):
                    results[name] = measure_bridge(bench, name)
                else:
                    argv = script("clients.py", f"{bench.upstream}/relay", "--requests", str(args.client_requests))
                    results[name] = run_json(argv, timeout=300)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                # One broken scenario (a server that would not start) should not cost the others' numbers.
                print(f" failed: {exc}", file=sys.stderr)
                continue
            print(f" {time.monotonic() - began:.0f}s", file=sys.stderr)
    finally:
        upstream.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each load phase (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="connections of the load generator")
    parser.add_argument("--chats", type=int, default=500, help="distinct Telegram chats in the load")
    parser.add_argument("--runs", type=int, default=1, help="whole runs; with more than one, medians are shown")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated subset of " + ",".join(SCENARIOS))
    parser.add_argument("--redis-url", help="a running Redis to use (default: a private redis-server for the run, "
                        "pinned with the load generator; redis://127.0.0.1:6379/15 when there is none)")
    parser.add_argument("--bridge-log-level", default="INFO", help="the bridge's logging.level (default INFO)")
    parser.add_argument("--client-requests", type=int, default=3000, help="POSTs per client in the micro-benchmark")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record the bridge with py-spy during maximum load and show where the time goes")
    parser.add_argument("--json", type=Path, help="also write every run's raw numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (configs, databases, logs)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if not 1 <= args.duration <= 120 or not 1 <= args.connections <= 1000 or not 1 <= args.runs <= 10:
        parser.error("--duration 1..120, --connections 1..1000 and --runs 1..10 are required")
    if args.redis_url is not None and not args.redis_url.startswith(("redis://127.0.0.1", "redis://localhost")):
        parser.error("--redis-url must be a loopback redis:// URL")
    pin_to(LOAD_CORE)
    work_dir = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    private_redis: Server | None = None
    redis_server: str | None = None
    runs: list[dict[str, Any]] = []
    try:
        if "redis" in chosen:
            private_redis = _choose_redis(args, chosen, work_dir)
            if "redis" in chosen:
                redis_server = _redis_server(args.redis_url, private_redis is not None)
        for n in range(args.runs):
            print(f"run {n + 1}/{args.runs} (work folder {work_dir})", file=sys.stderr)
            began = time.monotonic()
            runs.append(one_run(args, chosen, work_dir))
            print(f"run {n + 1} took {time.monotonic() - began:.0f}s", file=sys.stderr)
            if args.runs > 1:
                print(render(runs[-1], runs=1) + "\n", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if private_redis is not None:
            private_redis.stop()
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1))
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(render(median_results(runs) if len(runs) > 1 else runs[0], runs=len(runs)))
    print(f"\nmeasured with {environment(redis_server)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
