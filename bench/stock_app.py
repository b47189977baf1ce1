"""Stock Celery as a user would start it: a plain app, no code of ours, default settings, JSON.

Run as ``PYTHONPATH=bench celery -A stock_app worker -E -P <pool> -Q stock-<pool>`` (``scripts/local-cluster.sh``
starts one per pool, events on since Flower needs them). It lives outside our packages so that loading it
imports nothing of this project (no package ``__init__`` of ours runs): what it costs per task is Celery's
own. Clients send to it by task name. ``STOCK_THREAD_SAFE_BACKEND=1`` turns on
``result_backend_thread_safe``, the setting a user who reads Celery's docs sets for gevent and threads (the
default opens a Redis connection per task there).
"""

from __future__ import annotations

import os
import time

from celery import Celery

app = Celery("stock", broker=os.environ.get("REDIS_URL"), backend=os.environ.get("REDIS_URL"))
app.conf.result_backend_thread_safe = os.environ.get("STOCK_THREAD_SAFE_BACKEND") == "1"


@app.task(name="stock.spin")
def spin(n: int) -> int:
    """The no-op is ``spin(0)``, like ours: a sum over an empty range."""
    return sum(i * i for i in range(n))


@app.task(name="stock.noop")
def noop() -> None:
    """One round trip and nothing else."""


@app.task(name="stock.sleep")
def sleep(seconds: float) -> float:
    """A blocking wait: what a threads or gevent pool overlaps."""
    time.sleep(seconds)
    return seconds
