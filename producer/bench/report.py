"""Write a run down three ways from one set of tables: results.json, report.md with PNG charts, the terminal."""

from __future__ import annotations

import json
from pathlib import Path

from celery_futures.protocol.pools import POOLS
from producer.bench.pools import VARIANTS
from producer.bench.stock.tables import stock_charts, stock_tables
from producer.bench.summary import KIB, BenchResults, document, latencies, speeds, targets
from producer.bench.table import Table, times, verdict
from producer.terminal import Terminal, format_cell, save_bar_chart

MIB = 1024 * 1024

METHOD = """\
How each number is measured (the code says the same in `producer/bench/`):

- **Throughput**: a batch of no-ops (`cpu_bound(0)`: `map` needs an argument, `noop()` takes none) on the
  prefork worker, from the first send to the last result; median of the rounds, the clients taking turns
  going first. Raw Celery: `delay()` each, then `get()` each. *send* is the time until every task was
  handed to Redis; *producer CPU* is this process's CPU time (all threads) per task; *worker main process
  CPU* is the prefork worker's own rusage (`inspect stats`): that one thread receives, dispatches and
  acknowledges every task, so 1 / its CPU per task caps the worker's throughput; *Redis commands, all
  clients* is the `INFO commandstats` growth over the batch (producer, workers and their polling).
- **Latency**: sequential `noop` round trips, raw `delay().get()` and ours `submit().result()` alternating.
- **Redis commands**: whole round trips (send, then wait for every result) on the prefork worker, watched
  with `MONITOR`. The measured clients log in as a throwaway ACL user, so `CLIENT LIST` tells their
  connections from the workers'; `INFO commandstats` cannot (it is server-wide, and Redis 7.0 has no
  per-connection counter). *Everyone else* is mostly the worker, plus heartbeats and polling. What the
  executor's watchdog sends on its own clock (one pipeline of EXPIRE, SMEMBERS and MGETs every 5 s while
  futures are outstanding) is counted apart: *producer/task* leaves it out, the breakdown keeps it.
- **Memory**: `tracemalloc` in this process while the tasks are pending in a database no worker or other
  client uses; Redis bytes are the growth of `used_memory`. Afterwards everything is cancelled and deleted,
  and that database must be empty.
- **Against stock Celery**: a plain Celery app (`bench/stock_app.py`: no code of ours, default
  settings) on its own workers with events on (`-E`), one per pool, beside ours, at the same concurrency.
  Every client runs the same no-op and waits for every result; rounds rotate who goes first. *main CPU* is
  the worker's own rusage (`inspect stats`), *children CPU* its prefork children's (`/proc`), *Redis
  commands* the `INFO commandstats` growth by command, every client's (the idle workers' polling
  included). *Chunks*: `map(chunksize=N)` against stock `task.chunks(items, N)`. *Sleeps*: blocking sleeps
  on threads, makespan.
- **Pools**: makespan (first send to last result) over ideal. CPU ideal = N x t / min(N, concurrency, cores);
  IO ideal = N x t / min(N, concurrency); t is one task's body run alone in the producer (the spin, the
  sleep, the BLPOP), median of 7. Redis resolves a BLPOP timeout on its `hz` ticks: 50 ms becomes ~100 ms,
  and socket waits end on those ticks, which can hide Celery's per-task cost (io_socket ratios near or
  below 1 say the pool overlaps the waits, not that Celery is free).
"""


def machine_table(results: BenchResults) -> Table:
    machine = dict(results.machine)
    packages = machine.pop("packages", {})
    rows = [[key, value] for key, value in machine.items()] + [[name, v] for name, v in packages.items()]
    return Table("machine", "Machine", ["", ""], rows)


def workers_table(results: BenchResults) -> Table:
    return Table("workers", "Workers", ["worker", "pool", "concurrency", "queues"],
                 [[w.name, w.pool, w.concurrency, ",".join(w.queues)] for w in results.workers])


def targets_table(results: BenchResults) -> Table:
    return Table("targets", "Targets", ["target", "measured", "goal", "result"],
                 [[t.name, "-" if t.measured is None else t.measured, t.goal, verdict(t.passed)]
                  for t in targets(results)])


def throughput_table(results: BenchResults) -> Table:
    rows = [[s.variant, results.sizes.throughput_tasks, s.rounds, s.tasks_per_second, times(s.vs_raw),
             s.send_ms_per_task, s.producer_cpu_ms_per_task,
             "-" if s.worker_main_cpu_ms_per_task is None else s.worker_main_cpu_ms_per_task,
             s.redis_commands_per_task,
             " ".join(f"{x:.0f}" for x in s.every_round)]
            for s in speeds(results.throughput)]
    return Table("throughput", "No-op throughput on the prefork worker",
                 ["client", "tasks", "rounds", "tasks/s (median)", "vs raw", "send ms/task",
                  "producer CPU ms/task", "worker main process CPU ms/task", "Redis commands/task, all clients",
                  "tasks/s per round"], rows,
                 "throughput.png")


def latency_table(results: BenchResults) -> Table:
    rows = [[lat.variant, lat.calls, lat.p50_ms, lat.p99_ms, lat.mean_ms, times(lat.p50_vs_raw),
             times(lat.p99_vs_raw)] for lat in latencies(results.latency_seconds)]
    return Table("latency", "Sequential round trip of noop",
                 ["client", "calls", "p50 ms", "p99 ms", "mean ms", "p50 vs raw", "p99 vs raw"], rows, "latency.png")


def breakdown(counts: dict[str, int], tasks: int) -> str:
    """``LPUSH 1, PUBLISH 1``: commands per task by name, most frequent first."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {count / tasks:.2g}" for name, count in ranked if count / tasks >= 0.05)


def commands_table(results: BenchResults) -> Table:
    rows = [[c.variant, c.tasks, c.producer_per_task, breakdown(c.producer, c.tasks), counts(c.producer_ticks),
             c.others_per_task, breakdown(c.others, c.tasks)] for c in results.commands]
    return Table("commands", "Redis commands per no-op round trip on the prefork worker",
                 ["client", "tasks", "producer/task", "producer's, per task", "producer's watchdog ticks, in all",
                  "everyone else/task", "everyone else's, per task"], rows)


def counts(found: dict[str, int]) -> str:
    """``EXPIRE 1, MGET 3``: commands sent on the producer's own clock, as counts (they are not per task)."""
    return ", ".join(f"{name} {count}" for name, count in sorted(found.items())) or "none"


def memory_table(results: BenchResults) -> Table:
    rows = [[m.variant, m.count, m.client_bytes / m.count,
             "-" if m.redis_bytes is None else m.redis_bytes / m.count, m.seconds] for m in results.memory]
    return Table("memory", "Memory per pending task",
                 ["what", "pending", "client bytes each", "Redis bytes each", "seconds to create"], rows, "memory.png")


def steady_table(results: BenchResults) -> Table:
    rows = [[row.mode, row.round, row.tasks, row.seconds, row.traced_bytes / KIB, row.rss_bytes / MIB,
             row.rss_trimmed_bytes / MIB] for row in results.steady]
    return Table("steady", "Producer memory after each round of map(abs, n items), futures dropped",
                 ["executor", "round", "tasks", "seconds", "traced KiB", "RSS MiB", "RSS after malloc_trim MiB"],
                 rows)


def workloads_table(results: BenchResults) -> Table:
    rows = [[w.name, f"{w.task.rsplit('.', 1)[-1]}({', '.join(map(str, w.args))})", w.tasks, w.task_seconds * 1000,
             "yes" if w.uses_cpu else "no"] for w in results.workloads]
    return Table("workloads", "Workloads", ["workload", "task", "tasks", "t: one alone, ms", "needs a core"],
                 rows)


def pools_table(results: BenchResults) -> Table:
    """Grouped by pool and workload (the run took turns; ``results.json`` keeps its order)."""
    order = {name: index for index, name in enumerate([*POOLS, *(w.name for w in results.workloads), *VARIANTS])}
    runs = sorted(results.pools, key=lambda p: (order[p.pool], order[p.workload], order[p.variant]))
    rows = [[p.pool, p.concurrency, p.workload, p.variant, p.ideal, p.makespan, times(p.ratio)] for p in runs]
    return Table("pools", "Pools x workloads: makespan over ideal",
                 ["pool", "concurrency", "workload", "client", "ideal s", "makespan s", "makespan/ideal"], rows)


def problems_table(results: BenchResults) -> Table:
    return Table("problems", "Problems (the run fails when there is any)", ["problem"],
                 [[p] for p in results.problems] or [["none"]])


def tables(results: BenchResults) -> list[Table]:
    return [machine_table(results), workers_table(results), targets_table(results), throughput_table(results),
            latency_table(results), *stock_tables(results.stock), commands_table(results), memory_table(results),
            steady_table(results), workloads_table(results), pools_table(results), problems_table(results)]


def markdown_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(format_cell(cell).replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    return lines


def markdown(results: BenchResults, charts: dict[str, Path]) -> str:
    mode = "quick (`--quick`, CI-sized)" if results.quick else "full"
    lines = [f"# Benchmark results, {results.started_at[:10]} ({mode})", "",
             f"Run {results.started_at} to {results.finished_at}; every number below comes from that run "
             "(each one measured is in `results.json`, under `measured`). Reproduce with `scripts/bench.sh` "
             "(see bench/README.md).", ""]
    for table in tables(results):
        lines += [f"## {table.title}", "", *markdown_table(table), ""]
        if table.chart and table.chart in charts:
            lines += [f"![{table.title}]({table.chart})", ""]
        if table.key == "pools":
            lines += [f"![{name}]({path.name})" for name, path in charts.items() if name.startswith("pools-")] + [""]
    return "\n".join([*lines, METHOD])


def save_charts(results: BenchResults, folder: Path) -> dict[str, Path]:
    """PNGs for the sections that have numbers, by file name."""
    charts: dict[str, Path] = {}
    if found := speeds(results.throughput):
        charts["throughput.png"] = save_bar_chart(
            folder / "throughput.png", title="No-op throughput (median)", ylabel="tasks/s",
            groups=[s.variant for s in found], series={"tasks/s": [s.tasks_per_second for s in found]})
    if found_lat := latencies(results.latency_seconds):
        charts["latency.png"] = save_bar_chart(
            folder / "latency.png", title="Round trip of noop", ylabel="ms", groups=["p50", "p99"],
            series={lat.variant: [lat.p50_ms, lat.p99_ms] for lat in found_lat})
    if results.memory:
        charts["memory.png"] = save_bar_chart(
            folder / "memory.png", title="Client memory per pending task", ylabel="bytes",
            groups=[m.variant for m in results.memory],
            series={"bytes": [m.client_bytes / m.count for m in results.memory]})
    charts.update(pool_charts(results, folder))
    charts.update(stock_charts(results.stock, folder))
    return charts


def pool_charts(results: BenchResults, folder: Path) -> dict[str, Path]:
    charts = {}
    for load in results.workloads:
        runs = [p for p in results.pools if p.workload == load.name]
        pools = list(dict.fromkeys(p.pool for p in runs))
        if not pools:
            continue
        ratio = {(p.pool, p.variant): p.ratio for p in runs}
        name = f"pools-{load.name}.png"
        charts[name] = save_bar_chart(
            folder / name, title=f"{load.name}: {load.tasks} tasks, makespan over ideal", ylabel="makespan / ideal",
            groups=pools, series={v: [ratio.get((pool, v), 0.0) for pool in pools] for v in VARIANTS},
            reference=1.0)
    return charts


def write(results: BenchResults, folder: Path) -> list[Path]:
    """results.json, the PNGs and report.md in ``folder``; returns every file written."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "results.json"
    json_path.write_text(json.dumps(document(results), indent=2) + "\n")
    charts = save_charts(results, folder)
    report = folder / "report.md"
    report.write_text(markdown(results, charts))
    return [json_path, report, *charts.values()]


def show(terminal: Terminal, results: BenchResults) -> None:
    for table in tables(results):
        terminal.table(table.key, table.title, table.columns, table.rows)
