"""The bench's count of Redis commands per task: what the executor's watchdog sends on its own clock is
counted apart (the counting itself, with MONITOR on a real Redis, is in ``tests/integration/test_bench.py``)."""

from __future__ import annotations

from producer.bench.commands import CommandCount


def test_the_producers_watchdog_ticks_are_counted_apart_from_its_commands_per_task() -> None:
    found = CommandCount("executor.submit", 1000,
                         {"LPUSH": 1000, "PUBLISH": 1000, "EXPIRE": 1, "SMEMBERS": 1, "MGET": 3}, {"BRPOP": 1000})
    assert found.producer_per_task == 2.0
    assert found.producer_ticks == {"EXPIRE": 1, "SMEMBERS": 1, "MGET": 3}
