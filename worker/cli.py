"""Parse ``python -m worker`` arguments into :class:`WorkerSettings`; bad input exits 2 with the reason."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from celery_futures.protocol.pools import POOLS
from celery_futures.protocol.sentinel import ENV_SENTINEL_MASTER, ENV_SENTINEL_PASSWORD
from worker import constants as c
from worker.settings import SettingsError, WorkerSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Start a Celery worker on the pool you name; every flag has an environment variable.",
    )
    parser.add_argument("--pool", "-P", help=f"one of {', '.join(POOLS)} (env {c.ENV_POOL}; default prefork)")
    parser.add_argument(
        "--concurrency", "-c", help=f"pool size, a positive integer (env {c.ENV_CONCURRENCY}; default per pool)"
    )
    parser.add_argument("--redis-url", help=f"broker and backend URL with password (env {c.ENV_REDIS_URL})")
    parser.add_argument("--name", "-n", help=f"node name (env {c.ENV_NAME}; default <pool>@<hostname>)")
    parser.add_argument("--queues", "-Q", help=f"comma-separated queues (env {c.ENV_QUEUES}; default celery)")
    parser.add_argument("--loglevel", "-l", help=f"DEBUG, INFO, WARNING... (env {c.ENV_LOGLEVEL}; default INFO)")
    parser.add_argument(
        "--connect-attempts",
        help=f"Redis attempts at start before exiting 1; 0 = for ever (env {c.ENV_CONNECT_ATTEMPTS}; default 0)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="exit 0 if this worker answers a ping, 1 otherwise (healthcheck)"
    )
    mode.add_argument(
        "--validate", action="store_true",
        help="check every setting, print them in one line and exit 0 (2 with the reason when one is bad)",
    )
    return parser


RUN, CHECK, VALIDATE = "run", "check", "validate"


def parse_args(argv: Sequence[str] | None = None) -> tuple[WorkerSettings, str]:
    """Return the settings and what was asked (run, ``--check`` or ``--validate``); exits 2 with a message on
    bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = WorkerSettings.from_env(
            pool=args.pool,
            concurrency=args.concurrency,
            redis_url=args.redis_url,
            name=args.name,
            queues=args.queues,
            loglevel=args.loglevel,
            connect_attempts=args.connect_attempts,
        )
    except SettingsError as exc:
        parser.error(str(exc))
    return settings, CHECK if args.check else VALIDATE if args.validate else RUN


def summary(settings: WorkerSettings) -> str:
    """The resolved settings in one line, as ``--validate`` prints them (never the password)."""
    return (f"worker settings are valid: pool {settings.pool.name}, concurrency {settings.concurrency}, "
            f"name {settings.name}, queues {','.join(settings.queues)}, Redis {settings.redis_address}")


def export_to_env(settings: WorkerSettings, environ: dict[str, str]) -> None:
    """Hand the resolved settings to Celery's import of ``worker.app`` and to the pool's children."""
    environ[c.ENV_REDIS_URL] = settings.redis_url
    for name, value in ((ENV_SENTINEL_MASTER, settings.sentinel_master),
                        (ENV_SENTINEL_PASSWORD, settings.sentinel_password)):
        if value is not None:
            environ[name] = value
    environ[c.ENV_POOL] = settings.pool.name
    environ[c.ENV_CONCURRENCY] = str(settings.concurrency)
    environ[c.ENV_NAME] = settings.name
    environ[c.ENV_QUEUES] = ",".join(settings.queues)
    environ[c.ENV_LOGLEVEL] = settings.loglevel
    environ[c.ENV_ALLOWLIST] = str(settings.allowlist)


def celery_argv(settings: WorkerSettings) -> list[str]:
    """The ``celery worker`` command line; ``-P`` in it is what makes Celery monkey-patch for gevent."""
    return [
        "celery",
        "--app=worker.app:app",
        "worker",
        "-P",
        settings.pool.name,
        f"--concurrency={settings.concurrency}",
        f"--hostname={settings.name}",
        f"--queues={','.join(settings.queues)}",
        f"--loglevel={settings.loglevel}",
        # We never rely on revoke lists (cancel uses a claim in Redis), so the startup sync (mingle) and the
        # worker-to-worker chatter (gossip) only cost time and messages.
        "--without-mingle",
        "--without-gossip",
    ]
