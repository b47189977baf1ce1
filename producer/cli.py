"""``producer``: parse, set up the terminal, call a scenario. Nothing else lives here.

Exit status: 0 the run succeeded, 1 a check in the run failed (or Redis could not be used), 2 bad usage,
130 interrupted (Ctrl-C cancels the run's pending tasks first, so nothing is left queued).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

import click

from producer.executor import CeleryExecutor
from producer.render import PROGRESS_MODES, ProgressMode, Terminal
from worker import constants as c

Scenario = Callable[[CeleryExecutor, Terminal], bool]


@dataclass(frozen=True)
class Connection:
    redis_url: str | None
    queue: str | None
    json_output: bool


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", envvar=c.ENV_REDIS_URL,
              help=f"Broker and backend URL with password [env {c.ENV_REDIS_URL}].")
@click.option("--queue", envvar=c.ENV_PRODUCER_QUEUE,
              help=f"Queue to send tasks to [env {c.ENV_PRODUCER_QUEUE}; default celery].")
@click.option("--json", "json_output", is_flag=True, help="Print one JSON document on stdout instead of tables.")
@click.pass_context
def main(ctx: click.Context, redis_url: str | None, queue: str | None, json_output: bool) -> None:
    """Run lessons, benchmarks and a demo on Celery workers through CeleryExecutor."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Connection(redis_url, queue, json_output)


@main.command()
@click.pass_obj
def demo(conn: Connection) -> None:
    """A short tour: results, progress, a failure with its remote traceback, an exact cancel."""
    from producer.demo import run_demo

    run_scenario(conn, run_demo, "rich")


def run_scenario(conn: Connection, scenario: Scenario, progress: ProgressMode, max_workers: int | None = None) -> None:
    """Open an executor, run ``scenario``, exit with its verdict; Ctrl-C cancels what has not started."""
    terminal = Terminal(json_output=conn.json_output, progress=progress)
    try:
        executor = CeleryExecutor(max_workers, redis_url=conn.redis_url, queue=conn.queue)
    except (ConnectionError, ValueError) as exc:
        terminal.error(str(exc))
        sys.exit(1)
    try:
        ok = scenario(executor, terminal)
    except KeyboardInterrupt:
        terminal.status("interrupted: cancelling the tasks that have not started")
        executor.shutdown(wait=True, cancel_futures=True)
        sys.exit(130)
    executor.shutdown(wait=True)
    terminal.flush_json()
    sys.exit(0 if ok else 1)


def progress_option(default: ProgressMode = "rich") -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option("--progress", type=click.Choice(PROGRESS_MODES), default=default, show_default=True,
                        help="rich: a bar; raw: plain lines for logs; off: nothing.")
