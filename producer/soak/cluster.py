"""The soak's own cluster: a persistent redis-server and one worker per pool, all consuming one queue, and
a second redis-server of the harness's own for the side-effect ledger.

Built from ``producer/processes.py`` (the integration tests' real processes too), unchanged: the soak kills a
worker (SIGKILL of its process group, as a crash), starts a replacement, restarts Redis (SIGTERM, then the
same port and append-only file), and later restarts it with its data files deleted (it comes back empty),
and every one of those is a real process doing it. The ledger's Redis is never touched by a fault: the
evidence of what ran must outlive a Redis that loses its data.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery

from producer.processes import RedisServer, WorkerFactory, WorkerProcess, client_app
from worker.constants import ENV_LEDGER_REDIS_URL

QUEUE = "soak"
INSPECT_SECONDS = 1.0


@dataclass
class Cluster:
    redis: RedisServer
    ledger: RedisServer
    """The harness's own Redis for the ledger and gates, outside every fault (``LEDGER_REDIS_URL``)."""
    factory: WorkerFactory
    app: Celery
    concurrency: dict[str, int | None]
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    """The live worker of each pool (a replacement takes the killed one's place)."""
    retired: list[WorkerProcess] = field(default_factory=list)

    @classmethod
    def start(cls, workdir: Path, concurrency: Mapping[str, int | None]) -> Cluster:
        """A fresh ``workdir`` (emptied first), Redis with an append-only file, and the workers side by side."""
        shutil.rmtree(workdir, ignore_errors=True)
        for folder in ("redis", "ledger", "logs"):
            (workdir / folder).mkdir(parents=True)
        redis_server = RedisServer.start(workdir / "redis", persistent=True)
        ledger = RedisServer.start(workdir / "ledger")
        app = client_app(redis_server)
        cluster = cls(redis_server, ledger, WorkerFactory(redis_server, workdir / "logs", app), app,
                      dict(concurrency))
        try:
            with ThreadPoolExecutor(len(concurrency)) as starter:
                started = list(starter.map(cluster._start_worker, concurrency))
        except BaseException:
            cluster.stop()
            raise
        cluster.workers = dict(zip(concurrency, started, strict=True))
        return cluster

    def _start_worker(self, pool: str) -> WorkerProcess:
        return self.factory.start(pool, self.concurrency[pool], queue=QUEUE,
                                  env={ENV_LEDGER_REDIS_URL: self.ledger.url()})

    def holding(self, pool: str) -> set[str]:
        """Ids of the tasks the pool's worker holds: received (``inspect reserved``) or handed to its pool
        (``inspect active``), which for us includes tasks acknowledged but not yet claimed."""
        name = self.workers[pool].name
        inspect = self.app.control.inspect(destination=[name], timeout=INSPECT_SECONDS)
        replies: list[dict[str, Any]] = [inspect.reserved() or {}, inspect.active() or {}]
        return {str(request["id"]) for reply in replies for request in reply.get(name, [])}

    def kill(self, pool: str) -> WorkerProcess:
        """SIGKILL the pool's worker and its children at once; returns the dead worker."""
        doomed = self.workers.pop(pool)
        doomed.kill()
        self.retired.append(doomed)
        return doomed

    def replace(self, pool: str) -> WorkerProcess:
        """Start a new worker of ``pool`` on the same queue and wait until it answers."""
        self.workers[pool] = self._start_worker(pool)
        return self.workers[pool]

    def restart_redis(self, *, wipe: bool = False) -> float:
        """Stop Redis cleanly and start it again on the same port and data (``wipe``: with no data at all);
        returns the seconds it was away."""
        began = time.monotonic()
        self.redis.restart(wipe=wipe)
        return time.monotonic() - began

    def exited(self) -> list[str]:
        """The live workers whose process has ended, with its exit code."""
        ended = [w for w in self.workers.values() if w.process.poll() is not None]
        return [f"{w.name} (exit {w.process.returncode})" for w in ended]

    def stop(self) -> None:
        """Stop every worker (warm, then SIGKILL) and Redis; each by its own pid."""
        self.factory.stop_all()
        self.app.close()
        self.redis.stop()
        self.ledger.stop()
