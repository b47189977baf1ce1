"""``python -m producer drill`` as a user runs it beside a fault of their own: real Redis, a real worker, the
real CLI in a subprocess. A healthy run passes every check with no fault outcome; the failover stack test
(``tests/stack/test_ha.py``) runs it through a killed Redis primary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from producer.processes import RedisServer, WorkerProcess

RUN_TIMEOUT = 120


def test_a_drill_on_a_healthy_cluster_passes_every_check(redis_server: RedisServer,
                                                          pool_queue_workers: dict[str, WorkerProcess]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_") and k != "PRODUCER_QUEUE"}
    done = subprocess.run([sys.executable, "-m", "producer", "--redis-url", redis_server.url(), "--queue", "gevent",
                           "--json", "drill", "--tasks", "200", "--seed", "7", "--progress", "off"],
                          env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = json.loads(done.stdout)
    assert [check["check"] for check in verdict["checks"] if not check["passed"]] == []
    assert len(verdict["checks"]) == 9
    figures = verdict["figures"]
    assert figures["tasks"] == 200 and figures["fault_outcomes"] == {} and figures["stopped"] is None
    outcomes = " ".join(row["outcomes"] for row in verdict["outcomes"])
    for seen in ("cancelled", "DemoError", "TaskInterruptedError", "result"):
        assert seen in outcomes, outcomes
