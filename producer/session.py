"""A CLI run's executors: lessons and benchmarks ask for one per queue; Ctrl-C cancels them all.

Scenarios are plain functions ``(session) -> bool`` built only on the public Executor API, so they run
the same from the CLI or from Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from celery_futures import CeleryExecutor
from producer.terminal import Terminal
from worker.app import app as demo_app
from worker.app import client_app


@dataclass
class Session:
    terminal: Terminal
    redis_url: str | None = None
    queue: str | None = None
    quick: bool = False
    """CI-sized workloads: same facts, smaller numbers."""
    executors: list[CeleryExecutor] = field(default_factory=list)
    sentinel_master: str | None = None
    """With a ``sentinel://`` ``redis_url``: the master's name (``REDIS_SENTINEL_MASTER``)."""
    sentinel_password: str | None = field(default=None, repr=False)

    def executor(self, *, queue: str | None = None, max_workers: int | None = None) -> CeleryExecutor:
        """A new executor on ``queue`` (default: the session's), closed with the session."""
        app = client_app(self.redis_url, self.sentinel_master, self.sentinel_password) if self.redis_url \
            else demo_app
        created = CeleryExecutor(app, max_workers=max_workers, queue=queue or self.queue)
        self.executors.append(created)
        return created

    def close(self, *, cancel: bool = False) -> None:
        """Shut every executor down; ``cancel`` first cancels whatever has not started, cluster-wide."""
        for created in self.executors:
            created.shutdown(wait=True, cancel_futures=cancel)
        self.executors.clear()
