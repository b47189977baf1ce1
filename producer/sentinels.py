"""A Redis that fails over, for tests, without Docker: a primary, its replica and three sentinels on loopback.

Every process is a real ``redis-server`` (a sentinel is ``redis-server <conf> --sentinel``), password-protected
as a deployment's would be: the data nodes with ``requirepass`` (and ``masterauth``, so a replica, or a
demoted primary, can sync), the sentinels with their own ``requirepass``, ``auth-pass`` to reach the data
nodes and ``sentinel-pass`` to reach each other. ``down-after-milliseconds`` and ``failover-timeout`` are
small, so a killed primary is replaced within seconds. Readiness is asked, never slept for: the replica is
in sync, and every sentinel knows the replica and the other sentinels, before :meth:`SentinelGroup.start`
returns; :meth:`SentinelGroup.wait_promoted` returns once every sentinel names the new primary and that
node says it is one.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from celery import Celery

from celery_futures.protocol.sentinel import ENV_SENTINEL_MASTER, ENV_SENTINEL_PASSWORD
from producer.processes import RedisServer, free_port, redis_binary, wait_until
from worker.app import create_app

MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
"""How long a silent primary is given before a sentinel thinks it is down (Redis's default is 30 s)."""
FAILOVER_TIMEOUT_MS = 5000
"""Sentinel's bound on one failover attempt (its default is 3 minutes)."""
QUORUM = 2
READY_SECONDS = 30.0


def sentinel_config(port: int, primary: RedisServer, password: str, workdir: Path) -> str:
    """A sentinel's config file (sentinels rewrite theirs, so each gets its own, in its own dir)."""
    return "\n".join([
        f"port {port}",
        "bind 127.0.0.1",
        f"dir {workdir}",
        f"requirepass {password}",
        f"sentinel sentinel-pass {password}",
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary.port} {QUORUM}",
        f"sentinel auth-pass {MASTER_NAME} {primary.password}",
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {MASTER_NAME} 1",
        "",
    ])


@dataclass
class Sentinel:
    """One sentinel process we own."""

    port: int
    password: str
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis("127.0.0.1", self.port, password=self.password, socket_timeout=2,
                           socket_connect_timeout=2, decode_responses=True)

    def master_view(self) -> dict[str, str]:
        """What this sentinel knows of the master (``SENTINEL MASTER``: its address, flags, how many replicas
        and other sentinels it knows); empty while it cannot say."""
        try:
            with self.client() as client:
                return {str(k): str(v) for k, v in client.sentinel_master(MASTER_NAME).items()}
        except redis.RedisError:
            return {}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class SentinelGroup:
    """A primary and its replicas, watched by sentinels; its URL is the ``sentinel://`` one clients use."""

    password: str
    """The data nodes' password (``requirepass``, and ``masterauth`` on every node)."""
    sentinel_password: str
    """The sentinels' own password (``requirepass`` on each sentinel)."""
    nodes: list[RedisServer]
    sentinels: list[Sentinel] = field(default_factory=list)
    killed: list[RedisServer] = field(default_factory=list)

    @classmethod
    def start(cls, workdir: Path, *, replicas: int = 1, sentinels: int = 3) -> SentinelGroup:
        """Start the primary, then its replicas (waiting until each is in sync), then the sentinels (waiting
        until each knows every replica and every other sentinel: only then can they agree on a failover)."""
        password, sentinel_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        auth = ("--masterauth", password, "--repl-diskless-sync-delay", "0")  # Redis waits 5 s for more replicas
        primary = RedisServer.start(node_dir(workdir, "primary"), password=password, extra=auth)
        group = cls(password, sentinel_password, [primary])
        try:
            for n in range(replicas):
                replica = RedisServer.start(node_dir(workdir, f"replica-{n}"), password=password,
                                            extra=(*auth, "--replicaof", "127.0.0.1", str(primary.port)))
                group.nodes.append(replica)
                wait_until(functools.partial(in_sync, replica), READY_SECONDS, f"replica {replica.port} to sync")
            for n in range(sentinels):
                group.sentinels.append(spawn_sentinel(node_dir(workdir, f"sentinel-{n}"), primary, sentinel_password))
            wait_until(group._all_agree(replicas, sentinels - 1), READY_SECONDS, "the sentinels to know each other")
        except BaseException:
            group.stop()
            raise
        return group

    def _all_agree(self, replicas: int, others: int) -> Callable[[], bool]:
        def agree() -> bool:
            views = [s.master_view() for s in self.sentinels]
            return all(int(v.get("num-slaves", -1)) == replicas and int(v.get("num-other-sentinels", -1)) == others
                       for v in views)
        return agree

    # -- what clients and workers are given -------------------------------------------------------------
    def url(self, db: int = 0) -> str:
        """Every sentinel, ``;``-separated, as kombu and Celery take them; the password is the data nodes'."""
        return ";".join(f"sentinel://:{self.password}@127.0.0.1:{s.port}/{db}" for s in self.sentinels)

    def worker_env(self) -> dict[str, str]:
        env = {"REDIS_URL": self.url(), ENV_SENTINEL_MASTER: MASTER_NAME}
        env[ENV_SENTINEL_PASSWORD] = self.sentinel_password
        return env

    def app(self) -> Celery:
        """Our demo app's settings on this group, for the test process itself (as the workers have them)."""
        return create_app(self.url(), sentinel_master=MASTER_NAME, sentinel_password=self.sentinel_password)

    # -- who is primary, and failing it over ---------------------------------------------------------------
    def primary(self) -> RedisServer:
        """The node that says it is the primary (``ROLE``), among those alive."""
        for node in self.alive():
            if replication(node).get("role") == "master":
                return node
        raise LookupError("no node of the group is a primary")

    def alive(self) -> list[RedisServer]:
        return [n for n in self.nodes if n not in self.killed]

    def kill_primary(self) -> RedisServer:
        """SIGKILL the primary, as a crash or an OOM kill would: no shutdown, nothing flushed."""
        primary = self.primary()
        if primary.process is not None:
            primary.process.send_signal(signal.SIGKILL)
            primary.process.wait(timeout=10)
        self.killed.append(primary)
        return primary

    def wait_promoted(self, old: RedisServer, timeout: float = READY_SECONDS) -> RedisServer:
        """Until every sentinel names another node as the master and that node says it is one; returns it."""
        by_port = {n.port: n for n in self.alive()}

        def promoted() -> bool:
            ports = {int(s.master_view().get("port", 0)) for s in self.sentinels}
            if len(ports) != 1 or (port := ports.pop()) == old.port or port not in by_port:
                return False
            return replication(by_port[port]).get("role") == "master"

        wait_until(promoted, timeout, "a replica to be promoted", poll=0.05)
        return self.primary()

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.stop()


def node_dir(workdir: Path, name: str) -> Path:
    path = workdir / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def spawn_sentinel(workdir: Path, primary: RedisServer, password: str) -> Sentinel:
    port = free_port()
    config = workdir / "sentinel.conf"
    config.write_text(sentinel_config(port, primary, password, workdir))
    process = subprocess.Popen([redis_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    sentinel = Sentinel(port, password, process)
    wait_until(lambda: bool(sentinel.master_view()), READY_SECONDS, f"sentinel on port {port}")
    return sentinel


def in_sync(replica: RedisServer) -> bool:
    return replication(replica).get("master_link_status") == "up"


def replication(node: RedisServer) -> dict[str, str]:
    """The node's ``INFO replication`` (role, link status, connected replicas), empty if it does not answer."""
    try:
        with node.client() as client:
            return {str(k): str(v) for k, v in client.info("replication").items()}
    except redis.RedisError:
        return {}
