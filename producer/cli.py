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
from click.core import ParameterSource

from celery_futures import ClientSettings
from celery_futures.client.settings import ENV_QUEUE
from celery_futures.protocol.settings import SettingsError, parse_queue, parse_redis_url
from producer.session import Session
from producer.soak.options import mix_options
from producer.terminal import PROGRESS_MODES, ProgressMode, Terminal
from worker import constants as c

LESSON_NAMES = ("futures", "pools", "gevent", "asyncio", "thread-safety", "cancel")

Scenario = Callable[[Session], bool]


@dataclass(frozen=True)
class Connection:
    redis_url: str | None
    queue: str | None
    json_output: bool


class BadEnvironmentError(click.ClickException):
    """A bad environment variable: one line naming it (``Error: ...``), exit 2, no usage text."""

    exit_code = 2


def checked(parse: Callable[[str, str], object]) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A click callback that refuses what ``parse(value, name)`` refuses, naming the flag or the variable.

    From the command line it is bad usage (click's usage text, exit 2); from the environment it is one line.
    """
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        from_env = ctx.get_parameter_source(str(param.name)) is ParameterSource.ENVIRONMENT
        try:
            parse(value, str(param.envvar) if from_env else param.opts[0])
        except SettingsError as exc:
            raise (BadEnvironmentError if from_env else click.BadParameter)(str(exc)) from None
        return value
    return callback


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", envvar=c.ENV_REDIS_URL, show_envvar=True, callback=checked(parse_redis_url),
              help="Broker and backend URL with password.")
@click.option("--queue", envvar=ENV_QUEUE, show_envvar=True, callback=checked(parse_queue),
              help="Queue to send tasks to [default: celery].")
@click.option("--json", "json_output", is_flag=True, help="Print one JSON document on stdout instead of tables.")
@click.pass_context
def main(ctx: click.Context, redis_url: str | None, queue: str | None, json_output: bool) -> None:
    """Run lessons, benchmarks and a demo on Celery workers through CeleryExecutor."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Connection(redis_url, queue, json_output)


def progress_option(default: ProgressMode = "rich") -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option("--progress", type=click.Choice(PROGRESS_MODES), default=default, show_default=True,
                        help="rich: a bar; raw: plain lines for logs; off: nothing.")


@main.command()
@click.pass_obj
def demo(conn: Connection) -> None:
    """A short tour: results, progress, a failure with its remote traceback, an exact cancel."""
    from producer.demo import run_demo

    run_scenario(conn, run_demo, progress="rich", quick=False)


@main.command()
@click.argument("name", type=click.Choice(LESSON_NAMES))
@click.option("--quick", is_flag=True, help="Small workloads (CI-sized); every number still comes from the run.")
@progress_option()
@click.pass_obj
def lesson(conn: Connection, name: str, quick: bool, progress: ProgressMode) -> None:
    """Run one lesson on the workers: an explanation, then what really happened, measured.

    \b
    futures, asyncio: the default queue (or --queue); they prefer "threads" and "gevent" when served.
    pools, gevent, thread-safety, cancel: one worker per pool, each on the queue named after its pool
    (`docker compose --profile pools up -d --wait`, or scripts/local-cluster.sh).
    """
    from producer.lessons import LESSONS

    run_scenario(conn, LESSONS[name], progress=progress, quick=quick)


@main.command()
@click.option("--quick", is_flag=True, help="A small matrix for CI.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Results folder [default: bench/results/<date>].")
@progress_option()
@click.pass_obj
def bench(conn: Connection, quick: bool, out: str | None, progress: ProgressMode) -> None:
    """The benchmark matrix (pools x workloads, our executor next to raw Celery): JSON, Markdown, PNG."""
    from producer.bench import run_bench

    run_scenario(conn, lambda session: run_bench(session, out), progress=progress, quick=quick)


@main.command()
@click.option("--tasks", type=click.IntRange(min=10), default=600, show_default=True, help="Tasks to submit.")
@mix_options(window=200, deadline=300)
@progress_option()
@click.pass_obj
def drill(conn: Connection, *, tasks: int, seed: int, slow_seconds: float, window: int, deadline: float,
          stall: float, progress: ProgressMode) -> None:
    """A seeded mix of ledger tasks, judged by what ran, while you break something (a worker, Redis).

    \b
    Every future must end, each with an outcome its kind allows or one that names a fault, and the ledger
    must agree (nothing cancelled ran, nothing ran more often than its policy). The workers keep the ledger
    in LEDGER_REDIS_URL when it is set (a Redis outside the fault), else beside the results.
    """
    from producer.drill import DrillConfig, run_drill

    config = DrillConfig(tasks=tasks, seed=seed, slow_seconds=slow_seconds, window=window,
                         deadline_seconds=deadline, stall_seconds=stall)
    run_scenario(conn, lambda session: run_drill(session, config), progress=progress, quick=False)


def run_scenario(conn: Connection, scenario: Scenario, *, progress: ProgressMode, quick: bool) -> None:
    """Run ``scenario`` in a session and exit with its verdict; Ctrl-C cancels what has not started.

    Every setting is checked first, so a bad environment variable is one line and exit 2 before any output.
    """
    try:
        settings = ClientSettings.from_env(redis_url=conn.redis_url, queue=conn.queue).standalone()  # every variable
    except SettingsError as exc:
        raise BadEnvironmentError(str(exc)) from None
    session = Session(Terminal(json_output=conn.json_output, progress=progress), conn.redis_url, conn.queue, quick,
                      sentinel_master=settings.sentinel_master, sentinel_password=settings.sentinel_password)
    try:
        ok = scenario(session)
    except KeyboardInterrupt:
        session.terminal.status("interrupted: cancelling the tasks that have not started")
        session.close(cancel=True)
        sys.exit(130)
    except SettingsError as exc:  # a bad environment variable is bad usage too
        session.terminal.error(str(exc))
        sys.exit(2)
    except (ConnectionError, ValueError) as exc:
        session.terminal.error(str(exc))
        session.close(cancel=True)
        sys.exit(1)
    session.close()
    session.terminal.flush_json()
    sys.exit(0 if ok else 1)
