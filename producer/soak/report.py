"""A soak run written down three ways from the same tables: soak.json, soak.md and the terminal."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from producer.soak.checks import DATA_LOST, by_restart, duplicates, outcomes_by_kind
from producer.soak.flight import NOT_SUBMITTED, PENDING
from producer.soak.run import SoakRun
from producer.terminal import Terminal, format_cell

Row = Sequence[Any]
STUCK_SHOWN = 20


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def lost(run: SoakRun) -> int:
    return sum(1 for r in run.driven.records if r.outcome in (PENDING, NOT_SUBMITTED))


def headline(run: SoakRun) -> dict[str, Any]:
    """The figures docs/reliability.md quotes, by name."""
    kill, restart, wipe, driven = run.driven.kill, run.driven.restart, run.driven.wipe, run.driven
    return {
        "tasks": len(driven.records),
        "submitted": driven.submitted,
        "seconds": round(run.seconds, 1),
        "faults_injected": [
            *([f"SIGKILL of the {kill.pool} worker after {kill.at_submitted} submissions ({kill.running} tasks "
               f"running, {kill.stranded} received but not started), replacement ready in "
               f"{seconds(kill.replacement_seconds)}"] if kill else []),
            *([f"Redis restart after {restart.submitted_before} submissions, away "
               f"{seconds(restart.seconds_down)}"] if restart else []),
            *([f"Redis restart with its data deleted after {wipe.submitted_before} submissions, away "
               f"{seconds(wipe.seconds_down)}"] if wipe else []),
        ],
        "lost": lost(run),
        "duplicates": duplicates(driven.records, run.ledger),
        "policy_violations": next(int(c.measured) for c in run.checks if c.name.startswith("no task ran more")),
        "time_to_detect_lost_worker_seconds": None if kill is None or kill.detect_seconds is None
        else round(kill.detect_seconds, 1),
        "time_to_end_stranded_tasks_seconds": None if kill is None or kill.stranded_seconds is None
        else round(kill.stranded_seconds, 1),
        "outcomes": dict(Counter(r.outcome for r in driven.records).most_common()),
        "ended_by_the_redis_restart": sum(1 for r in driven.records if by_restart(r.outcome)),
        "ended_by_the_data_loss": sum(1 for r in driven.records if r.outcome == DATA_LOST),
        "cancels": driven.cancels,
        "interrupts": driven.interrupts,
        "producer_memory_bytes": {"baseline": run.memory.baseline.producer_bytes,
                                  "after": run.memory.after.producer_bytes, "delta": run.memory.delta_bytes,
                                  "peak_total": run.memory.peak_bytes},
        "checks_passed": f"{sum(c.passed for c in run.checks)} of {len(run.checks)}",
    }


def command(run: SoakRun) -> str:
    """The command that reproduces the run (its workdir and output folder aside)."""
    config = run.config
    pools = ",".join(config.concurrency)
    concurrency = " ".join(f"--concurrency {pool}={n}" for pool, n in config.concurrency.items() if n)
    return (f"scripts/soak.sh --tasks {config.tasks} --seed {config.seed} --pools {pools} {concurrency} "
            f"--kill-pool {config.kill_pool} --slow-seconds {config.slow_seconds:g} --window {config.window} "
            f"--deadline {config.deadline_seconds:g} --stall {config.stall_seconds:g}")


def document(run: SoakRun) -> dict[str, Any]:
    config = {**asdict(run.config), "workdir": str(run.config.workdir), "kill_at": run.config.kill_at,
              "restart_at": run.config.restart_at, "wipe_at": run.config.wipe_at}
    memory = run.memory
    return {
        "ok": run.ok,
        "failed_checks": [c.name for c in run.checks if not c.passed],
        "command": command(run),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "run_id": run.run_id,
        "config": config,
        "figures": headline(run),
        "checks": [asdict(c) for c in run.checks],
        "outcomes_by_kind": outcomes_by_kind(run.driven.records),
        "kill": None if run.driven.kill is None else asdict(run.driven.kill),
        "restart": None if run.driven.restart is None else asdict(run.driven.restart),
        "wipe": None if run.driven.wipe is None else asdict(run.driven.wipe),
        "memory": {"baseline_total_bytes": memory.baseline.total_bytes,
                   "baseline_producer_bytes": memory.baseline.producer_bytes,
                   "after_total_bytes": memory.after.total_bytes,
                   "after_producer_bytes": memory.after.producer_bytes, "delta_bytes": memory.delta_bytes,
                   "peak_total_bytes": memory.peak_bytes, "top_growth": memory.top_growth()},
        "redis": asdict(run.redis),
        "stuck": run.driven.stuck,
        "problems": run.driven.problems,
        "machine": run.machine,
        "workers": run.workers,
    }


def tables(run: SoakRun, doc: dict[str, Any]) -> list[tuple[str, str, list[str], list[Row]]]:
    """``(key, title, columns, rows)`` for each table."""
    figures = doc["figures"]
    by_kind = doc["outcomes_by_kind"]
    outcomes = sorted({o for counts in by_kind.values() for o in counts})
    machine = {k: v for k, v in run.machine.items() if k != "packages"} | run.machine.get("packages", {})
    return [
        ("checks", "Checks", ["check", "result", "measured", "offenders"],
         [[c.name, "pass" if c.passed else "FAIL", c.measured, c.detail] for c in run.checks]),
        ("figures", "Figures", ["figure", "value"],
         [[name, json.dumps(value) if isinstance(value, dict | list) else value] for name, value in figures.items()]),
        ("outcomes", "Outcomes by kind", ["kind", *outcomes],
         [[kind, *(counts.get(o, 0) for o in outcomes)] for kind, counts in by_kind.items()]),
        ("redis", "Redis after the run", ["figure", "value"],
         [[k, json.dumps(v) if isinstance(v, dict | list) else v] for k, v in doc["redis"].items()]),
        ("memory", "Producer memory (tracemalloc)", ["figure", "value"],
         [[k, "; ".join(v) if isinstance(v, list) else v] for k, v in doc["memory"].items()]),
        ("workers", "Workers", ["worker", "pool", "concurrency", "role"],
         [[w["name"], w["pool"], w["concurrency"], w["role"]] for w in run.workers]),
        ("machine", "Machine", ["", ""], [[k, v] for k, v in machine.items()]),
        ("stuck", "Futures that never ended, and where Redis last saw their tasks",
         ["token", "kind", "task", "task_id", "future", "ran on", "claim", "stored state", "message"],
         [[s["token"], s["kind"], s["task"].rsplit(".", 1)[-1], s["task_id"], s["state"],
           (s["execution"] or {}).get("hostname", "-"), s.get("claim"), s.get("stored_state"), s.get("message")]
          for s in run.driven.stuck[:STUCK_SHOWN]]),
    ]


def show(terminal: Terminal, run: SoakRun, doc: dict[str, Any]) -> None:
    for key, title, columns, rows in tables(run, doc):
        if rows:
            terminal.table(key, title, columns, rows)
    for problem in run.driven.problems:
        terminal.error(problem)
    failed = doc["failed_checks"]
    terminal.status(f"soak: {'FAILED: ' + '; '.join(failed) if failed else 'every check passed'}")


def markdown_table(columns: Sequence[str], rows: Sequence[Row]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(format_cell(c).replace("|", "\\|") for c in row) + " |" for row in rows]


def markdown(run: SoakRun, doc: dict[str, Any]) -> str:
    verdict = "every check passed" if run.ok else "FAILED: " + "; ".join(doc["failed_checks"])
    lines = [f"# Soak run, {run.started_at[:10]}", "",
             f"{run.config.tasks:,} tasks, run {run.started_at} to {run.finished_at} ({run.seconds:.0f} s): "
             f"{verdict}. Reproduce with `{doc['command']}`; every figure comes from `soak.json`.", ""]
    for _, title, columns, rows in tables(run, doc):
        if rows:
            lines += [f"## {title}", "", *markdown_table(columns, rows), ""]
    return "\n".join(lines)


def write(run: SoakRun, doc: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "soak.json", folder / "soak.md"
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md_path.write_text(markdown(run, doc))
    return [json_path, md_path]
