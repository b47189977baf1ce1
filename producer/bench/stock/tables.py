"""The race against stock Celery as report tables and charts (none when the section did not run)."""

from __future__ import annotations

from pathlib import Path

from producer.bench.stock.race import STOCK, StockRace
from producer.bench.stock.verdict import Standing, goals, lookup, percentile, standings
from producer.bench.table import Table, dash, times, verdict
from producer.terminal import save_bar_chart

COLUMNS = ["pool", "client", "rounds", "tasks/s (median)", "slowest", "fastest", "vs stock",
           "worker main CPU ms/task", "children CPU ms/task", "Redis commands/task"]


def commands_text(row: Standing) -> str:
    return ", ".join(f"{name} {count:.2g}" for name, count in row.top_commands.items())


def standing_rows(rows: list[Standing]) -> list[list[object]]:
    stock = {row.pool: row.tasks_per_second for row in rows if row.client == STOCK}
    return [[row.pool, row.client, row.rounds, row.tasks_per_second, row.slowest, row.fastest,
             times(row.tasks_per_second / stock[row.pool] if row.pool in stock else None),
             dash(row.main_cpu_ms_per_task), dash(row.children_cpu_ms_per_task), row.commands_per_task]
            for row in rows]


def latency_rows(race: StockRace) -> list[list[object]]:
    stock = race.latency_seconds.get(STOCK, [])
    rows: list[list[object]] = []
    for client, samples in race.latency_seconds.items():
        if len(samples) < 2 or len(stock) < 2:
            continue
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        rows.append([client, len(samples), 1000 * p50, 1000 * p99, times(p50 / percentile(stock, 50)),
                     times(p99 / percentile(stock, 99))])
    return rows


def stock_tables(race: StockRace | None) -> list[Table]:
    if race is None:
        return []
    sleeps = standings(race.sleeps)
    stock_sleeps = lookup(sleeps, "threads", STOCK)
    return [
        Table("stock_targets", "Targets against stock Celery", ["target", "measured", "goal", "result"],
              [[g.name, dash(g.measured), g.goal, verdict(g.passed)] for g in goals(race)]),
        Table("stock", "No-op throughput against stock Celery, pool by pool", COLUMNS,
              standing_rows(standings(race.runs)), "stock.png"),
        Table("stock_commands", "Redis commands per no-op task by command, every client's (against stock Celery)",
              ["pool", "client", "commands/task", "most frequent, per task"],
              [[row.pool, row.client, row.commands_per_task, commands_text(row)] for row in standings(race.runs)],
              "stock-commands.png"),
        Table("stock_latency", "Sequential round trip against stock Celery (prefork)",
              ["client", "calls", "p50 ms", "p99 ms", "p50 vs stock", "p99 vs stock"], latency_rows(race),
              "stock-latency.png"),
        Table("stock_chunks", f"Chunked map against stock chunks (prefork, chunks of {race.chunk_size})", COLUMNS,
              standing_rows(standings(race.chunked))),
        Table("stock_sleeps", "Blocking sleeps on threads: makespan against stock Celery",
              ["client", "rounds", "sleeps", "makespan s (median)", "vs stock"],
              [[row.client, row.rounds, int(row.seconds * row.tasks_per_second), row.seconds,
                times(row.seconds / stock_sleeps.seconds if stock_sleeps else None)]
               for row in sleeps]),
    ]


def stock_charts(race: StockRace | None, folder: Path) -> dict[str, Path]:
    if race is None or not race.runs:
        return {}
    rows = standings(race.runs)
    pools = list(dict.fromkeys(row.pool for row in rows))
    clients = list(dict.fromkeys(row.client for row in rows))
    speed = {(row.pool, row.client): row.tasks_per_second for row in rows}
    path = save_bar_chart(folder / "stock.png", title="No-op throughput against stock Celery (median)",
                          ylabel="tasks/s", groups=pools,
                          series={client: [speed.get((pool, client), 0.0) for pool in pools] for client in clients})
    commands = {(row.pool, row.client): row.commands_per_task for row in rows}
    commands_path = save_bar_chart(folder / "stock-commands.png", title="Redis commands per no-op task",
                                   ylabel="commands/task", groups=pools,
                                   series={client: [commands.get((pool, client), 0.0) for pool in pools]
                                           for client in clients})
    charts = {"stock.png": path, "stock-commands.png": commands_path}
    latency = {client: samples for client, samples in race.latency_seconds.items() if len(samples) >= 2}
    if latency:
        charts["stock-latency.png"] = save_bar_chart(
            folder / "stock-latency.png", title="Sequential round trip on prefork", ylabel="ms",
            groups=["p50", "p90", "p99"],
            series={client: [1000 * percentile(samples, pct) for pct in (50, 90, 99)]
                    for client, samples in latency.items()})
    return charts
