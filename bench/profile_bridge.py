"""Where the bridge's time goes under maximum load: py-spy samples, grouped by the stage of a message's path.

Used by `run.py --profile DIR` (py-spy is optional: `pip install py-spy`; attaching needs the right to trace
the process, which root has). Samples are taken with `--gil`, so they show what held the interpreter, which on
one pinned core is what the CPU did for Python; time a thread spent waiting for the GIL is not counted, but
the cost of handing work to a thread (waking it) is, under `thread handoff`.

    python bench/profile_bridge.py DIR/sqlite.txt      summarise an earlier raw profile
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["STAGES", "Profiler", "find_py_spy", "start_profiler", "summarize"]

# (stage, pattern on a frame): a sample belongs to the first stage any of its frames matches; the generic
# stages at the end (HTTP server, logging...) only when the leaf-most matching frame is theirs.
STAGES: tuple[tuple[str, str], ...] = (
    ("thread handoff", r"Condition\.notify|Queue\.put_nowait"),
    ("Telegram update parsing (PTB)", r"_parse_update|Update\.de_json"),
    ("update conversion", r"convert_update"),
    ("store (chat id, visitor)", r"RedisStore|SqliteStore"),
    ("queue put", r"DurableHandoff\.submit|Bridge\._submit"),
    ("platform POST (bridge.http1)", r"PlatformClient|Http1Client|Bridge\.deliver"),
    ("queue claim/ack (workers)", r"DurableHandoff|SqliteQueue|RedisQueue|RespConnection|GroupCommit"),
)
_GENERIC: tuple[tuple[str, str], ...] = (
    ("logging (access log, JSON)", r"\(logging/|bridge/logs\.py"),
    ("metrics middleware", r"bridge/metrics\.py|prometheus_client"),
    ("webhook handler", r"telegram_webhook|handle_webhook|accept_inbound"),
    ("HTTP server (uvicorn, h11, Litestar)", r"uvicorn|h11|litestar"),
)
_COMPILED = [(name, re.compile(pattern)) for name, pattern in STAGES]
_COMPILED_GENERIC = [(name, re.compile(pattern)) for name, pattern in _GENERIC]


def find_py_spy() -> str | None:
    return shutil.which("py-spy") or next(
        (str(path) for path in [Path(sys.executable).parent / "py-spy"] if path.exists()), None
    )


@dataclass
class Profiler:
    process: subprocess.Popen[bytes]
    output: Path
    seconds: float

    def summary(self) -> dict[str, Any]:
        try:
            self.process.wait(self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return {"error": "py-spy did not finish"}
        if not self.output.exists():
            return {"error": f"py-spy wrote no profile ({self.process.returncode})"}
        return summarize(self.output)


def start_profiler(pid: int, seconds: float, out_dir: Path | None, name: str) -> Profiler | None:
    """py-spy recording `pid` for `seconds` into `out_dir/name.txt`; None when not asked for or not installed."""
    if out_dir is None:
        return None
    py_spy = find_py_spy()
    if py_spy is None:
        print("  (py-spy not found: pip install py-spy to profile)", file=sys.stderr)
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{name}.txt"
    argv = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
            "--format", "raw", "--output", str(output), "--nonblocking", "--gil"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Profiler(process, output, seconds)


def _stage(frames: list[str]) -> str:
    for name, pattern in _COMPILED:
        if any(pattern.search(frame) for frame in frames):
            return name
    for frame in reversed(frames):
        for name, pattern in _COMPILED_GENERIC:
            if pattern.search(frame):
                return name
    return "other (event loop, asyncio)"


def summarize(path: Path) -> dict[str, Any]:
    """Share of samples per stage and the frames most often on top, from py-spy's raw (collapsed) output."""
    stages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        stages[_stage(frames)] += int(count)
        leaves[frames[-1]] += int(count)
    if not total:
        return {"error": "no samples"}
    return {
        "samples": total,
        "stages": {name: n / total for name, n in stages.most_common()},
        "top_frames": {name: n / total for name, n in leaves.most_common(8)},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python bench/profile_bridge.py PROFILE.txt", file=sys.stderr)
        return 2
    try:
        found = summarize(Path(args[0]))
    except OSError as exc:
        print(f"cannot read {args[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for section in ("stages", "top_frames"):
        print(f"{section}:")
        for name, share in found.get(section, {}).items():
            print(f"  {share:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
