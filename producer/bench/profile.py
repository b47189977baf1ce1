"""``python -m producer.bench.profile``: where a prefork worker's main process spends its time, ours and stock's.

The main process of a prefork worker receives, dispatches and acknowledges every task in one thread, so its
CPU per task caps the worker's throughput: that is the process to profile. ``py-spy`` samples it (by pid,
from ``inspect stats``, on this machine) while one batch of no-ops runs through it: ours from
``executor.submit`` on our worker, stock's from ``delay()`` on stock Celery's worker (``bench/stock_app.py``),
one after the other on the local cluster (``scripts/local-cluster.sh start``). The report ranks frames by
the share of samples they appear in (inclusive) and are on top of (self), and says how many samples there
were. ``py-spy`` needs ptrace rights (root, or ``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery

from celery_futures import CeleryExecutor
from producer.bench.rig import deadline_for, settle
from producer.bench.stock.race import stock_queue
from worker.app import client_app
from worker.tasks import demo as tasks

RATE = 250
"""Samples per second: enough for a few thousand samples per batch, little enough not to slow the worker."""
LINE_NUMBER = re.compile(r":\d+\)$")
TRUNK_SHARE = 0.8
"""Frames in more of the samples than this are the process's trunk (its main loop and what called it)."""
SOCKET_READ = "_read_from_socket ("  # SocketBuffer._read_from_socket: a blocking wait for a reply


@dataclass(frozen=True)
class Profile:
    who: str
    tasks: int
    seconds: float
    samples: int
    inclusive: list[tuple[str, float]]
    """Frame -> share of samples it appears in, largest first."""
    own: list[tuple[str, float]]
    """Frame -> share of samples it is the innermost frame of, largest first."""
    waits: list[tuple[str, float]]
    """Caller -> share of samples spent waiting for a Redis reply it asked for (a round trip in the loop)."""


def frame_name(frame: str) -> str:
    """``function (path/to/module.py:123)`` without the line, and the path cut to its package part."""
    frame = LINE_NUMBER.sub(")", frame)
    return re.sub(r"\(.*(?:site-packages|lib/python3\.\d+)/", "(", frame)


@dataclass(frozen=True)
class Summary:
    samples: int
    inclusive: list[tuple[str, float]]
    own: list[tuple[str, float]]
    waits: list[tuple[str, float]]


def redis_caller(frames: list[str]) -> str:
    """The innermost frame outside redis-py: who is waiting for the reply."""
    return next((frame for frame in reversed(frames) if "(redis/" not in frame), "?")


def summarize(raw: str, top: int) -> Summary:
    """From py-spy's raw format (``frame;frame;... count`` per line): samples, inclusive and self shares (the
    trunk left out), and the samples spent in a socket read for Redis, by who asked."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    waits: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        if SOCKET_READ in frames[-1]:
            waits[redis_caller(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count
    branches = Counter({name: n for name, n in inclusive.items() if n <= TRUNK_SHARE * total})
    return Summary(total, shares(branches, total, top), shares(own, total, top), shares(waits, total, top))


def shares(counter: Counter[str], total: int, top: int) -> list[tuple[str, float]]:
    return [(name, n / total) for name, n in counter.most_common(top)] if total else []


def worker_pid(app: Celery, queue: str) -> tuple[str, int]:
    """The node consuming ``queue`` and its main process's pid."""
    queues: dict[str, Any] = app.control.inspect(timeout=2.0).active_queues() or {}
    node = next((name for name, found in queues.items() if any(q["name"] == queue for q in found)), None)
    if node is None:
        raise RuntimeError(f"no worker consumes {queue!r}: start the local cluster (scripts/local-cluster.sh start)")
    stats: dict[str, Any] = app.control.inspect(destination=[node], timeout=2.0).stats() or {}
    return node, int(stats[node]["pid"])


def py_spy() -> str:
    """The py-spy beside this interpreter (the venv's, from the ``dev`` extra), else the one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else "py-spy"


def profiled(pid: int, out: Path, batch: Any) -> float:
    """Run ``batch()`` with py-spy sampling ``pid``; returns the batch's seconds."""
    spy = subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
                            "--nonblocking", "--output", str(out)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches before the first task goes out
    started = time.perf_counter()
    try:
        batch()
    finally:
        seconds = time.perf_counter() - started
        spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        spy.communicate(timeout=60)
    return seconds


def profile_both(redis_url: str, tasks_per_batch: int, folder: Path, top: int) -> list[Profile]:
    stock = Celery("stock-client", broker=redis_url, backend=redis_url)
    deadline = deadline_for(tasks_per_batch * 0.01)
    found = []
    with CeleryExecutor(client_app(redis_url), queue="prefork") as executor:
        batches = {
            "ours (executor.submit on our prefork worker)": ("prefork", lambda: settle(
                [executor.submit(tasks.cpu_bound, 0) for _ in range(tasks_per_batch)], deadline)),
            "stock Celery (delay() on its prefork worker)": (stock_queue("prefork"), lambda: [
                r.get(timeout=deadline) for r in [stock.send_task("stock.spin", (0,), queue=stock_queue("prefork"))
                                                  for _ in range(tasks_per_batch)]]),
        }
        for who, (queue, batch) in batches.items():
            _, pid = worker_pid(stock, queue)
            out = folder / f"profile-{queue}.txt"
            seconds = profiled(pid, out, batch)
            summary = summarize(out.read_text(), top)
            found.append(Profile(who, tasks_per_batch, seconds, summary.samples, summary.inclusive, summary.own,
                                 summary.waits))
    stock.close()
    return found


def markdown(profiles: list[Profile]) -> str:
    lines = ["# Where the prefork worker's main process spends its time", "",
             f"py-spy at {RATE} Hz on the worker's main process during one batch of no-ops "
             "(`python -m producer.bench.profile`); shares are of the samples taken while it was busy.", ""]
    for p in profiles:
        lines += [f"## {p.who}", "", f"{p.tasks} tasks in {p.seconds:.1f} s; {p.samples} samples "
                  f"({1000 * p.samples / RATE / p.tasks:.2f} ms busy per task).", "",
                  "| waiting for a Redis reply, asked by | share |", "|---|---|",
                  *(f"| `{name}` | {share:.1%} |" for name, share in p.waits), "",
                  "| frame (inclusive, below the main loop) | share |", "|---|---|",
                  *(f"| `{name}` | {share:.1%} |" for name, share in p.inclusive), "",
                  "| frame (self) | share |", "|---|---|",
                  *(f"| `{name}` | {share:.1%} |" for name, share in p.own), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producer.bench.profile", description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True, help="the local cluster's (scripts/local-cluster.sh env)")
    parser.add_argument("--tasks", type=int, default=3000, help="no-ops per batch [3000]")
    parser.add_argument("--top", type=int, default=25, help="frames per table [25]")
    parser.add_argument("--out", type=Path, required=True, help="folder for profile.md and py-spy's raw output")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    profiles = profile_both(args.redis_url, args.tasks, args.out, args.top)
    (args.out / "profile.md").write_text(markdown(profiles))
    print(f"profile: wrote {args.out / 'profile.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
