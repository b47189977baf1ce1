"""``python -m producer bench --quick`` as a user runs it, on real Redis and one real worker per pool.

Asserts what a run must produce (exit status, progress lines, results.json, report.md, PNGs) and the
deterministic facts behind its numbers (every task pushed once, every cell measured), never a timing:
timings are what the benchmark records, not what it promises.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from celery_futures.protocol.pools import POOLS
from producer.processes import RedisServer, WorkerFactory, WorkerProcess

RUN_TIMEOUT = 180
SECTIONS = ("executor throughput", "round-trip latency", "redis commands per task", "against stock celery",
            "memory per pending task", "producer memory, round after round", "pools x workloads")
CHARTS = ("throughput.png", "latency.png", "memory.png", "pools-cpu.png", "pools-io_sleep.png",
          "pools-io_socket.png", "stock.png", "stock-commands.png", "stock-latency.png")
STOCK_WORKERS = {"stock-prefork": ("prefork", 2), "stock-threads": ("threads", 10), "stock-gevent": ("gevent", 100),
                 "stock-threads-safe": ("threads", 10), "stock-gevent-safe": ("gevent", 100)}
BENCH_DIR = str(Path(__file__).resolve().parents[2] / "bench")


@pytest.fixture(scope="session")
def bench_workers(pool_queue_workers: dict[str, WorkerProcess],
                  worker_factory: WorkerFactory) -> dict[str, WorkerProcess]:
    """Ours, one per pool, and stock Celery's (``bench/stock_app.py``, events on) on ``stock-<pool>[-safe]``."""
    for queue, (pool, concurrency) in STOCK_WORKERS.items():
        safe = "1" if queue.endswith("-safe") else "0"
        worker_factory.start_celery("stock_app", pool, concurrency, queue, events=True,
                                    env={"PYTHONPATH": BENCH_DIR, "STOCK_THREAD_SAFE_BACKEND": safe})
    return pool_queue_workers


def bench(redis_url: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_") and k != "REDIS_URL"}
    env.update({"COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    command = [sys.executable, "-m", "producer", "--redis-url", redis_url, "bench", "--quick", "--progress", "raw",
               "--out", str(out)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)


@pytest.fixture(scope="module")
def quick_run(redis_server: RedisServer, bench_workers: dict[str, WorkerProcess],
              tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench") / "results"
    return bench(redis_server.url(), out), out


@pytest.fixture(scope="module")
def document(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> dict[str, Any]:
    done, out = quick_run
    assert done.returncode == 0, done.stderr[-4000:]
    loaded: dict[str, Any] = json.loads((out / "results.json").read_text())
    return loaded


def test_quick_bench_exits_0_and_shows_raw_progress_per_section(
        quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, out = quick_run
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Traceback" not in done.stderr
    for section in SECTIONS:
        steps = re.findall(rf"^{re.escape(section)}: (\d+)/(\d+)$", done.stderr, re.MULTILINE)
        assert steps, f"no progress lines for {section}"
        assert steps[-1][0] == steps[-1][1], f"{section} stopped at {steps[-1]}"
    assert f"bench: wrote {2 + len(CHARTS)} files to {out}/" in done.stderr
    assert "Targets" in done.stdout and "makespan/ideal" in done.stdout


def test_results_json_holds_machine_workers_and_every_section(document: dict[str, Any]) -> None:
    assert document["ok"] is True and document["problems"] == []
    assert document["quick"] is True
    machine = document["machine"]
    assert {"cores", "cpu_model", "ram_gib", "python", "redis_server", "redis_hz", "load_average_at_start",
            "load_average_at_end"} <= set(machine)
    assert set(machine["packages"]) == {"celery", "kombu", "redis", "gevent"}
    assert sorted(w["pool"] for w in document["workers"]) == sorted([*POOLS, *(p for p, _ in STOCK_WORKERS.values())])
    assert set(document["measured"]) == {"throughput_runs", "latency_seconds", "commands", "memory",
                                         "steady_state_memory", "workloads", "pool_runs", "stock"}
    assert set(document["summary"]) >= {"throughput", "latency", "producer_commands_per_task",
                                        "client_bytes_per_pending_task", "pools_makespan_over_ideal"}


def test_the_clients_were_measured_the_promised_number_of_times(document: dict[str, Any]) -> None:
    sizes, measured = document["sizes"], document["measured"]
    runs = measured["throughput_runs"]
    assert len(runs) == 3 * sizes["throughput_rounds"]
    assert {run["variant"] for run in runs} == {"raw delay().get()", "executor.submit", "executor.map"}
    assert all(run["tasks"] == sizes["throughput_tasks"] and run["seconds"] > 0 for run in runs)
    assert all(run["worker_main_cpu_seconds"] is not None for run in runs)  # the prefork worker's own rusage
    assert {v: len(s) for v, s in measured["latency_seconds"].items()} == {
        "raw delay().get()": sizes["latency_calls"], "executor.submit": sizes["latency_calls"]}
    assert [t["name"] for t in document["targets"]] and all(t["passed"] in (True, False) for t in document["targets"])


def test_commands_of_the_producer_are_told_from_the_workers(document: dict[str, Any]) -> None:
    """MONITOR sees each task pushed once, by the producer's connections (the probe user's) and by no other."""
    commands = document["measured"]["commands"]
    assert [c["variant"] for c in commands] == ["raw delay().get()", "executor.submit", "executor.map",
                                                "executor.map(chunksize)"]
    sizes = document["sizes"]
    assert all(c["tasks"] == sizes["command_tasks"] for c in commands)
    assert [c["producer"]["LPUSH"] for c in commands] == [sizes["command_tasks"]] * 3 + [
        math.ceil(sizes["command_tasks"] / sizes["chunk_size"])]  # one message per chunk
    assert all("LPUSH" not in c["others"] and c["others"]["BRPOP"] > 0 for c in commands)


def test_memory_is_measured_for_every_kind_of_pending_handle(document: dict[str, Any]) -> None:
    memory = document["measured"]["memory"]
    assert [m["variant"] for m in memory] == ["stdlib Future", "raw Celery AsyncResult", "CeleryFuture (ours)"]
    assert [m["count"] for m in memory] == [document["sizes"]["pending_tasks"]] * 3
    assert all(m["client_bytes"] > 0 for m in memory)


def test_the_pools_have_every_workload_and_client(document: dict[str, Any],
                                                     bench_workers: dict[str, WorkerProcess]) -> None:
    pool_runs = document["measured"]["pool_runs"]
    cells = {(p["pool"], p["workload"], p["variant"]) for p in pool_runs}
    assert cells == {(pool, load, client) for pool in POOLS for load in ("cpu", "io_sleep", "io_socket")
                     for client in ("CeleryExecutor", "raw Celery")}
    assert all(p["makespan"] > 0 and p["ideal"] > 0 for p in pool_runs)
    concurrency = {p["pool"]: p["concurrency"] for p in pool_runs}
    assert concurrency == {pool: bench_workers[pool].concurrency or 1 for pool in POOLS}


def test_report_and_charts_are_written(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = quick_run
    report = (out / "report.md").read_text()
    for title in ("## Machine", "## Targets", "## No-op throughput", "## Redis commands", "## Targets against stock",
                  "## Memory per pending task", "## Pools x workloads"):
        assert title in report
    for chart in CHARTS:
        assert (out / chart).read_bytes().startswith(b"\x89PNG"), chart
        assert f"]({chart})" in report


def test_a_missing_worker_is_named_and_fails_the_run(redis_server: RedisServer, tmp_path: Path) -> None:
    """On a database no worker serves every pool is missing: the run says so, measures what needs no worker
    (memory, cleaned up: no other problem), and exits 1."""
    done = bench(redis_server.url(db=3), tmp_path / "results")
    assert done.returncode == 1, done.stderr[-4000:]
    assert "Traceback" not in done.stderr
    assert "queue 'prefork' needs exactly one prefork worker, found: none" in done.stderr
    document = json.loads((tmp_path / "results" / "results.json").read_text())
    assert document["ok"] is False
    assert [problem.split(" needs ")[0] for problem in document["problems"]] == [f"queue {p!r}" for p in POOLS]
    measured = document["measured"]
    assert len(measured["memory"]) == 3
    assert measured["throughput_runs"] == measured["commands"] == measured["pool_runs"] == []


def test_steady_state_memory_has_every_round_of_both_ways_and_a_verdict(document: dict[str, Any]) -> None:
    rows = document["measured"]["steady_state_memory"]
    rounds = document["sizes"]["steady_rounds"]
    assert [(r["mode"], r["round"]) for r in rows] == [
        (mode, n) for mode in ("one executor", "a fresh executor each round") for n in range(1, rounds + 1)]
    assert all(r["tasks"] == document["sizes"]["steady_tasks"] and r["rss_trimmed_bytes"] > 0 for r in rows)
    verdicts = [t for t in document["targets"] if t["name"].startswith("producer memory, last round over first")]
    assert len(verdicts) == 2 and all(t["measured"] is not None for t in verdicts)


def test_stock_celery_races_every_client_on_every_pool(document: dict[str, Any]) -> None:
    """Each pool's clients ran every round with the promised tasks, and each batch's costs were read."""
    sizes, stock = document["sizes"], document["measured"]["stock"]
    clients = {"prefork": {"stock Celery", "raw client, our worker", "executor.submit", "executor.map"}}
    for pool in ("threads", "gevent"):
        clients[pool] = clients["prefork"] | {"stock Celery, thread-safe backend"}
    cells = [(run["pool"], run["client"]) for run in stock["runs"]]
    assert sorted(cells) == sorted((pool, client) for pool, names in clients.items() for client in names
                                   for _ in range(sizes["throughput_rounds"]))
    assert all(run["tasks"] == sizes["throughput_tasks"] and run["main_cpu_seconds"] is not None
               and run["commands"]["lpush"] >= run["tasks"] for run in stock["runs"])
    prefork = [run for run in stock["runs"] if run["pool"] == "prefork"]
    assert all(run["children_cpu_seconds"] is not None for run in prefork)
    assert {run["client"] for run in stock["chunked"]} == {"executor.map(chunksize)", "stock task.chunks()"}
    assert all(run["tasks"] == sizes["chunk_items"] for run in stock["chunked"])
    assert {client: len(samples) for client, samples in stock["latency_seconds"].items()} == {
        client: sizes["latency_calls"] for client in ("stock Celery", "raw client, our worker", "executor.submit")}
    goals = document["stock"]["targets"]
    assert len(goals) == 11 and all(goal["measured"] is not None for goal in goals)
