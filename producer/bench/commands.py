"""Redis commands per task, the producer's apart from everyone else's, over whole round trips on real workers.

``INFO commandstats`` is server-wide: it mixes the workers' commands (BRPOP, claims, results, events) with the
producer's, and Redis 7.0 keeps no per-connection command counter (``CLIENT LIST`` shows only the last
command; ``tot-cmds`` came later). So the measured clients log in as a throwaway ACL user made for this
measurement: ``CLIENT LIST`` tells which connections are that user's, and ``MONITOR``, which prints every
command with its client's address, attributes each command to the producer or to the rest. The window runs
from before the first send to after the last result and is closed by an ``ECHO`` of a random marker: Redis
runs commands one at a time, so every command of the window is printed before it. The user is deleted after.

This needs a Redis user allowed ``ACL SETUSER`` and ``MONITOR`` (the default user of the local cluster).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import Final
from urllib.parse import urlsplit

import redis
from celery import Celery

from celery_futures import CeleryExecutor
from producer.bench.executor import MAP, RAW, SUBMIT
from producer.bench.rig import CLIENTS_QUEUE, Rig, collect, deadline_for, settle
from producer.terminal import Advance
from worker.app import client_app, create_app
from worker.tasks import demo as tasks

MAP_CHUNKED = "executor.map(chunksize)"
VARIANTS = (RAW, SUBMIT, MAP, MAP_CHUNKED)
WATCHDOG_TICK: Final = frozenset({"EXPIRE", "SMEMBERS", "MGET"})
"""One pipeline every watchdog tick (5 s) while futures are outstanding (``celery_futures/client/evidence.py``):
the executor's marker's EXPIRE, the live workers' SMEMBERS, MGETs of their heartbeats and of states. A
healthy run sends none of these per task."""


@dataclass(frozen=True)
class CommandCount:
    variant: str
    tasks: int
    producer: dict[str, int]
    """Command name -> how many the producer's connections sent during the window."""
    others: dict[str, int]
    """The same for every other connection: the workers, their heartbeats and polling."""

    @property
    def producer_per_task(self) -> float:
        """The producer's commands per task, its watchdog's ticks left out."""
        return sum(n for name, n in self.producer.items() if name not in WATCHDOG_TICK) / self.tasks

    @property
    def producer_ticks(self) -> dict[str, int]:
        """What the producer's watchdog sent during the window, on its own clock."""
        return {name: n for name, n in self.producer.items() if name in WATCHDOG_TICK}

    @property
    def others_per_task(self) -> float:
        return sum(self.others.values()) / self.tasks


@dataclass(frozen=True)
class ProbeUser:
    """A throwaway Redis ACL user: the connections that log in as it are the measured producer's."""

    name: str
    url: str
    admin: redis.Redis

    @classmethod
    @contextmanager
    def created(cls, admin: redis.Redis, redis_url: str) -> Iterator[ProbeUser]:
        name, password = f"bench-probe-{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
        admin.acl_setuser(name, enabled=True, passwords=[f"+{password}"], categories=["+@all"], keys=["*"],
                          channels=["*"])
        parts = urlsplit(redis_url)
        netloc = f"{name}:{password}@{parts.hostname}:{parts.port or 6379}"
        try:
            yield cls(name, parts._replace(netloc=netloc).geturl(), admin)
        finally:
            admin.acl_deluser(name)

    def addresses(self) -> set[str]:
        """``host:port`` of every connection logged in as this user right now."""
        return {str(client["addr"]) for client in self.admin.client_list() if client.get("user") == self.name}


@contextmanager
def monitored(redis_url: str, admin: redis.Redis) -> Iterator[list[tuple[str, str]]]:
    """``(client address, command name)`` of every command Redis runs inside the ``with`` block."""
    lines: list[tuple[str, str]] = []
    marker, ready = f"bench-marker-{uuid.uuid4().hex}", threading.Event()

    def listen() -> None:
        with redis.Redis.from_url(redis_url).monitor() as monitor:  # type: ignore[no-untyped-call]
            ready.set()
            for line in monitor.listen():
                if line["command"] == f"ECHO {marker}":
                    return
                if line["client_type"] == "tcp":  # not commands run inside Lua scripts
                    name = line["command"].split(" ", 1)[0].upper()
                    lines.append((f"{line['client_address']}:{line['client_port']}", name))

    thread = threading.Thread(target=listen, name="bench-monitor", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("MONITOR did not start")
    try:
        yield lines
    finally:
        admin.echo(marker)
        thread.join(60)


def round_trips(variant: str, raw_app: Celery, executor: CeleryExecutor, n: int,
                chunksize: int) -> Callable[[], object]:
    """``n`` no-ops sent and waited for the way the throughput runs do it (chunked: ``chunksize`` a message)."""
    timeout = deadline_for(n * 0.01)
    if variant == RAW:
        task = raw_app.tasks[tasks.cpu_bound.name]
        return lambda: collect([task.delay(0) for _ in range(n)], timeout)
    if variant == SUBMIT:
        return lambda: settle([executor.submit(tasks.cpu_bound, 0) for _ in range(n)], timeout)
    size = chunksize if variant == MAP_CHUNKED else 1
    return lambda: list(executor.map(tasks.cpu_bound, repeat(0, n), timeout=timeout, chunksize=size))


def count_one(probe: ProbeUser, rig: Rig, variant: str, clients: tuple[Celery, CeleryExecutor]) -> CommandCount:
    n = rig.sizes.command_tasks
    run = round_trips(variant, *clients, n, rig.sizes.chunk_size)
    with monitored(rig.redis_url, probe.admin) as lines:
        run()
        mine = probe.addresses()  # before the window closes, while every connection is still open
    producer = Counter(name for address, name in lines if address in mine)
    others = Counter(name for address, name in lines if address not in mine)
    return CommandCount(variant, n, dict(producer), dict(others))


@contextmanager
def probe_clients(probe: ProbeUser) -> Iterator[tuple[Celery, CeleryExecutor]]:
    """Raw Celery and our executor logged in as the probe user, warmed up (connections are not per task)."""
    raw_app = create_app(probe.url, default_queue=CLIENTS_QUEUE)
    executor = CeleryExecutor(client_app(probe.url), queue=CLIENTS_QUEUE)
    try:
        raw_app.tasks[tasks.noop.name].delay().get(timeout=deadline_for(1))
        executor.submit(tasks.noop).result(timeout=deadline_for(1))
        yield raw_app, executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        raw_app.close()


def measure_commands(rig: Rig, advance: Advance) -> list[CommandCount]:
    """One window per client on the prefork worker; one progress step each."""
    found = []
    with ProbeUser.created(rig.redis, rig.redis_url) as probe, probe_clients(probe) as clients:
        for variant in VARIANTS:
            found.append(count_one(probe, rig, variant, clients))
            advance()
    return found


def commands_or_problem(rig: Rig, advance: Advance) -> list[CommandCount]:
    return rig.attempt("redis commands", lambda: measure_commands(rig, advance)) or []
