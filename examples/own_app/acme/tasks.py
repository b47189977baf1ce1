"""acme's tasks: plain Celery tasks, none of them knows about celery_futures."""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import redis
from celery import Task

from acme.app import app
from acme.errors import InvalidOrderError


@functools.cache
def store() -> redis.Redis:
    """acme keeps its own data (inboxes, counters) in the same Redis as its broker."""
    return redis.Redis.from_url(os.environ.get("ACME_REDIS_URL", "redis://127.0.0.1:6379/0"), decode_responses=True)


@app.task
def checksum(n: int) -> int:
    """CPU-bound: a checksum over ``n`` numbers, pure Python, holding the GIL throughout."""
    total = 0
    for i in range(n):
        total = (total * 31 + i) % 1_000_000_007
    return total


@app.task
def next_parcel(inbox: str, timeout: float = 30.0) -> str:
    """IO-bound: wait for the next parcel scan in ``acme:inbox:<inbox>`` (a blocking Redis read)."""
    popped = store().blpop([f"acme:inbox:{inbox}"], timeout=timeout)
    if popped is None:
        raise TimeoutError(f"no parcel arrived in inbox {inbox!r} within {timeout}s")
    return str(popped[1])


@app.task
def price(order: dict[str, Any]) -> float:
    """Price an order, or raise acme's own InvalidOrderError."""
    if not order.get("items"):
        raise InvalidOrderError(f"order {order.get('id', '?')} has no items")
    return round(sum(float(item["price"]) * int(item.get("quantity", 1)) for item in order["items"]), 2)


@app.task(bind=True)
def render_report(self: Task, pages: int, seconds_per_page: float = 0.0) -> str:  # type: ignore[type-arg]
    """Render a report page by page, publishing progress the way Celery's docs show."""
    for page in range(1, pages + 1):
        time.sleep(seconds_per_page)
        self.update_state(state="PROGRESS", meta={"current": page, "total": pages})
    return f"report of {pages} pages"


@app.task
def count_visit(page: str) -> int:
    """Count one visit of ``page`` (``acme:visits:<page>``): a side effect you can see."""
    return int(store().incr(f"acme:visits:{page}"))
