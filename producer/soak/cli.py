"""``python -m producer.soak``'s flags: parse and validate, run, print, write, exit with the verdict.

Exit status: 0 every check passed, 1 a check failed (they are named on stderr and in soak.json) or the run
could not be carried out, 2 bad usage, 130 interrupted. When a future never ended the executor would wait
for it at interpreter exit (as the stdlib's do), so the process then ends with ``os._exit`` once everything
is written and said, and so it does after Ctrl-C or a crash of the harness (the cluster is stopped first).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import click

from celery_futures.protocol.pools import POOLS
from producer.soak.options import mix_options
from producer.soak.report import document, show, write
from producer.soak.run import DEFAULT_CONCURRENCY, SoakConfig, run_soak
from producer.terminal import PROGRESS_MODES, ProgressMode, Terminal

RESULTS_ROOT = Path("bench/results")
POOL_DEFAULTS: dict[str, int | None] = {"threads": 8, "solo": None, **DEFAULT_CONCURRENCY}
MIN_TASKS = 100
"""Fewer would leave some kinds of the mix, or one of the two faults, with nothing to act on."""


def parse_pools(_: click.Context, __: click.Parameter, value: str) -> list[str]:
    pools = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in pools if p not in POOLS]
    if unknown:
        raise click.BadParameter(f"unknown pool {', '.join(unknown)}; choose two of {', '.join(POOLS)}")
    if len(pools) != 2 or pools[0] == pools[1]:
        raise click.BadParameter(f"need two different pools, comma-separated (e.g. prefork,gevent), got {value!r}")
    return pools


def parse_concurrency(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> dict[str, int]:
    parsed: dict[str, int] = {}
    for value in values:
        pool, _sep, number = value.partition("=")
        if pool not in POOLS or not number.isdigit() or int(number) < 1:
            raise click.BadParameter(f"expected POOL=N with a pool of {', '.join(POOLS)} and N >= 1, got {value!r}")
        parsed[pool] = int(number)
    return parsed


def concurrency_for(pools: list[str], given: dict[str, int]) -> dict[str, int | None]:
    extra = sorted(set(given) - set(pools))
    if extra:
        raise click.BadParameter(f"concurrency given for {', '.join(extra)}, which is not in --pools",
                                 param_hint="--concurrency")
    return {pool: given.get(pool, POOL_DEFAULTS[pool]) for pool in pools}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--tasks", type=click.IntRange(min=MIN_TASKS), default=10_000, show_default=True,
              help="Tasks to submit.")
@click.option("--pools", default="prefork,gevent", show_default=True, callback=parse_pools,
              help="The two worker pools, both consuming the soak's queue.")
@click.option("--concurrency", multiple=True, callback=parse_concurrency, metavar="POOL=N",
              help="A pool's worker concurrency (repeatable) [defaults: prefork=2, gevent=20, threads=8].")
@click.option("--kill-pool", type=click.Choice(list(POOLS)), default=None,
              help="The pool whose worker is killed [default: gevent if in --pools, else the second pool].")
@mix_options(window=400, deadline=900)
@click.option("--memory-slack-kib", type=click.IntRange(min=0), default=1024, show_default=True,
              help="How far above its baseline the producer's memory may end.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results folder [default: bench/results/<date>].")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path(".run/soak"),
              show_default=True, help="Redis data and worker logs (emptied first, kept afterwards).")
@click.option("--progress", type=click.Choice(PROGRESS_MODES), default="rich", show_default=True,
              help="rich: a bar; raw: plain lines for logs; off: nothing.")
@click.option("--json", "json_output", is_flag=True, help="Print the JSON document instead of tables.")
def main(*, tasks: int, seed: int, pools: list[str], concurrency: dict[str, int], kill_pool: str | None,
         slow_seconds: float, window: int, deadline: float, stall: float, memory_slack_kib: int, out: Path | None,
         workdir: Path, progress: ProgressMode, json_output: bool) -> None:
    """A soak run: mixed tasks on two worker pools, one worker killed, Redis restarted, then restarted empty
    mid-run, judged by the side-effect ledger the tasks write (kept in a Redis of its own). Prints the figures
    and writes soak.json and soak.md."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    kill_pool = kill_pool or ("gevent" if "gevent" in pools else pools[1])
    if kill_pool not in pools:
        raise click.BadParameter(f"{kill_pool} is not one of --pools {','.join(pools)}", param_hint="--kill-pool")
    config = SoakConfig(tasks=tasks, seed=seed, concurrency=concurrency_for(pools, concurrency),
                        kill_pool=kill_pool, slow_seconds=slow_seconds, window=window, deadline_seconds=deadline,
                        stall_seconds=stall, memory_slack_bytes=memory_slack_kib * 1024, workdir=workdir)
    terminal = Terminal(json_output=json_output, progress=progress)
    try:
        run = run_soak(config, terminal)
    except KeyboardInterrupt:
        terminal.status("soak: interrupted; its cluster is stopped")
        leave(130)
    except Exception:
        terminal.error(f"the soak could not be carried out:\n{traceback.format_exc()}")
        leave(1)
    doc = document(run)
    folder = out or RESULTS_ROOT / run.started_at[:10]
    written = write(run, doc, folder)
    if json_output:
        terminal.document = doc
    else:
        show(terminal, run, doc)
    terminal.status(f"soak: wrote {', '.join(map(str, written))}")
    terminal.flush_json()
    code = 0 if run.ok else 1
    if run.driven.stuck:
        leave(code)
    sys.exit(code)


def leave(code: int) -> NoReturn:
    """Exit now, without the executor's at-exit wait for futures that will never end."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

