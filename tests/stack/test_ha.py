"""Across hosts (profile ``ha``): workers standing for two hosts and a producer, all through three Sentinels,
and a Redis primary killed while a producer runs. Judged by what a user sees: the producer's exit, Flower's
workers, the containers' restart counts; the failover's stall is measured, never waited for by a sleep."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.stack.conftest import ENV_FILE, Compose, Flower, parse_env, run

pytestmark = pytest.mark.stack

HA = ("--profile", "ha")
HOSTS = {"worker-host-a": "prefork", "worker-host-b": "gevent"}
FAILOVER_SECONDS = 60
DEMO_SECONDS = 240


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


def test_a_killed_primary_fails_over_and_work_goes_on_without_a_restart(ha: Compose) -> None:
    """A producer runs through Sentinel while the primary is SIGKILLed: it ends, the replica is promoted, the
    workers follow it on their own (same containers, no restart), and a producer run afterwards passes every
    check of the demo."""
    assert master_of(ha) == "redis-primary"
    before = {service: restarts(ha, service) for service in HOSTS}
    # --no-deps: `run` would otherwise start any dependency it finds stopped, the killed primary included.
    running = subprocess.Popen(ha.argv(*HA, "run", "--rm", "--no-deps", "producer-ha"), env=ha.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert running.stdout is not None
        first_line = running.stdout.readline()  # the demo has started talking to the cluster
        assert first_line, "the producer printed nothing"
        killed_at = time.monotonic()
        ha(*HA, "kill", "-s", "KILL", "redis-primary")
        deadline = killed_at + FAILOVER_SECONDS
        while master_of(ha) == "redis-primary":
            assert time.monotonic() < deadline, f"no failover within {FAILOVER_SECONDS}s"
            time.sleep(0.5)
        promoted_after = time.monotonic() - killed_at  # the replica, named by its address
        output, _ = running.communicate(timeout=DEMO_SECONDS)
    finally:
        if running.poll() is None:
            running.kill()
    # It ended (no future waited for ever); whether every one of its checks passed depends on where in the
    # demo the kill fell (a task sent into the gap waits for the workers' reconnect and the watchdog's grace,
    # and the demo gives each check 60 s), so its exit status is reported, not asserted.
    assert running.returncode in (0, 1), output[-3000:]
    started = time.monotonic()
    run(ha.argv(*HA, "run", "--rm", "--no-deps", "producer-ha"), env=ha.env(), timeout=DEMO_SECONDS)  # all checks
    print(f"failover: promoted {promoted_after:.1f}s after the kill; the in-flight demo exited "
          f"{running.returncode}; a demo after it took {time.monotonic() - started:.1f}s")
    assert {service: restarts(ha, service) for service in HOSTS} == before
    ha(*HA, "start", "redis-primary")  # it comes back as a replica of the new master
