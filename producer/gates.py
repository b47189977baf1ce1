"""Gates: tasks that block until their gate is opened (``worker.tasks.gate``), so nothing depends on timing."""

from __future__ import annotations

import uuid

import redis

from worker import constants as c


def new_gate_name() -> str:
    return f"gate-{uuid.uuid4().hex[:12]}"


def open_gate(client: redis.Redis, name: str, count: int = 1) -> None:
    """Let ``count`` tasks waiting on gate ``name`` through (one LPUSH per task)."""
    if count > 0:
        client.lpush(f"{c.GATE_PREFIX}{name}", *(["open"] * count))
        client.expire(f"{c.GATE_PREFIX}{name}", 3600)


def record_count(client: redis.Redis, name: str) -> int:
    """How many times ``worker.tasks.record(name)`` ran."""
    return int(client.get(f"{c.RECORD_PREFIX}{name}") or 0)
