"""Across hosts (profile ``ha``): workers standing for two hosts and two producers, all through three
Sentinels, and a Redis primary killed while both producers run drills. Judged by what a user sees: the
drills' verdicts (every future ended, the side-effect ledger agrees), Flower's workers, the containers'
restart counts; the failover's stall is measured by the drills, never waited for by a sleep."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack.conftest import ENV_FILE, Compose, Flower, parse_env, run

pytestmark = pytest.mark.stack

HA = ("--profile", "ha")
HOSTS = {"worker-host-a": "prefork", "worker-host-b": "gevent"}
FAILOVER_SECONDS = 60
DEMO_SECONDS = 240
DRILL_TASKS = 1000


@pytest.fixture(scope="module")
def ha(stack: Compose) -> Iterator[Compose]:
    """The ``ha`` services up and healthy for this module, removed after it (the rest of the stack stays)."""
    stack(*HA, "up", "-d", "--wait", "--wait-timeout", "240", *HOSTS, "flower-ha")
    yield stack
    stack(*HA, "rm", "-s", "-f", "-v", "redis-primary", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3",
          *HOSTS, "flower-ha")


def master_of(ha: Compose) -> str:
    """The host the Sentinels name as the master now (asked of sentinel-2; the password stays off argv)."""
    return ha(*HA, "exec", "-T", "sentinel-2", "sh", "-c",
              'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p 26379 sentinel get-master-addr-by-name cfx').split()[0]


def restarts(ha: Compose, service: str) -> tuple[str, int]:
    container = ha.container_id(service)
    state = json.loads(run(["docker", "inspect", "--format", "{{json .RestartCount}}", container]))
    return container, int(state)


def test_workers_on_two_hosts_show_in_flower_with_their_pools(ha: Compose) -> None:
    env = parse_env(ENV_FILE.read_text())
    port = ha(*HA, "port", "flower-ha", "5555").strip().rsplit(":", 1)[1]
    flower = Flower(f"http://127.0.0.1:{port}", env["FLOWER_USER"], env["FLOWER_PASSWORD"])
    for service, pool in HOSTS.items():
        flower.wait_for_pool(f"{pool}@{service.removeprefix('worker-')}", pool, timeout=60)


class Drill:
    """``producer drill`` in a ``producer-ha`` container: its progress lines (stderr) are read as they come, so
    the test knows when futures have begun to end; its JSON verdict (stdout) is read at the end."""

    def __init__(self, ha: Compose, seed: int) -> None:
        argv = ha.argv(*HA, "run", "--rm", "--no-deps", "-T", "producer-ha", "--json", "drill", "--tasks",
                       str(DRILL_TASKS), "--seed", str(seed), "--progress", "raw", "--stall", "90")
        # --no-deps: `run` would otherwise start any dependency it finds stopped, the killed primary included.
        self.process = subprocess.Popen(argv, env=ha.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.lines: list[str] = []
        self.begun = threading.Event()
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()

    def _read_progress(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if line.startswith("drill: futures done"):
                self.begun.set()

    def verdict(self) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=DEMO_SECONDS)
        self._reader.join(10)
        assert out.strip(), "".join(self.lines[-30:])
        document: dict[str, Any] = json.loads(out)
        document["exit"] = self.process.returncode
        return document

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()


def test_a_killed_primary_fails_over_and_every_future_ends_truthfully(ha: Compose) -> None:
    """Two producers run drills through Sentinel while the primary is SIGKILLed: the replica is promoted, the
    workers follow it on their own (same containers, no restart), every future of both drills ends, none with
    a lost worker (none died), and the ledger (kept in the stack's own Redis, outside the failover) shows no
    cancelled task that ran and nothing run beyond its policy. A demo afterwards passes every check."""
    assert master_of(ha) == "redis-primary"
    before = {service: restarts(ha, service) for service in HOSTS}
    drills = [Drill(ha, seed) for seed in (1, 2)]
    try:
        for drill in drills:  # both are sending, and their futures have begun to end
            assert drill.begun.wait(DEMO_SECONDS), "".join(drill.lines[-30:])
        killed_at = time.monotonic()
        ha(*HA, "kill", "-s", "KILL", "redis-primary")
        deadline = killed_at + FAILOVER_SECONDS
        while master_of(ha) == "redis-primary":
            assert time.monotonic() < deadline, f"no failover within {FAILOVER_SECONDS}s"
            time.sleep(0.5)
        promoted_after = time.monotonic() - killed_at  # the replica, named by its address
        verdicts = [drill.verdict() for drill in drills]
    finally:
        for drill in drills:
            drill.stop()
    for verdict in verdicts:
        failed = [check for check in verdict["checks"] if not check["passed"]]
        assert not failed and verdict["exit"] == 0, (failed, verdict["figures"], verdict["never_ended"][:5])
        figures = verdict["figures"]
        assert not {"WorkerLostError", "WorkerGoneError"} & set(figures["fault_outcomes"]), figures
        print(f"failover: promoted {promoted_after:.1f}s after the kill; drill of {figures['tasks']} tasks took "
              f"{figures['seconds']}s, its longest stall {figures['longest_stall_seconds']}s, "
              f"fault outcomes {figures['fault_outcomes'] or 'none'}")
    run(ha.argv(*HA, "run", "--rm", "--no-deps", "producer-ha"), env=ha.env(), timeout=DEMO_SECONDS)  # all checks
    assert {service: restarts(ha, service) for service in HOSTS} == before
    ha(*HA, "start", "redis-primary")  # it comes back as a replica of the new master
