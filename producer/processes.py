"""Real processes for tests: a password-protected redis-server and ``python -m worker`` per pool.

Each is started on loopback, waited for by asking it (PING, Celery ping) rather than by sleeping, and
stopped by its own pid at teardown.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis
from celery import Celery

from worker.app import create_app

READY_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> None:
    """Readiness wait for a process we started: ask until it says yes, fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout:.0f}s")
        time.sleep(poll)


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return binary


def spawn_redis(port: int, password: str, workdir: Path, persistent: bool,
                extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """``extra``: more ``--option value`` pairs (a replica's ``--replicaof`` and ``--masterauth``)."""
    durability = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
    args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password, "--save", "",
            *durability, "--dir", str(workdir), *extra]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


@dataclass
class RedisServer:
    """A redis-server we own. ``persistent`` keeps an append-only file, so a restart loses nothing."""

    port: int
    password: str
    process: subprocess.Popen[bytes] | None
    """None until launched (a server planned for a port, to be started later)."""
    workdir: Path
    persistent: bool = False
    extra: tuple[str, ...] = ()
    """More command-line options, kept for a restart (a replica's ``--replicaof``, ``--masterauth``)."""

    @classmethod
    def start(cls, workdir: Path, *, port: int | None = None, password: str | None = None,
              persistent: bool = False, extra: tuple[str, ...] = ()) -> RedisServer:
        port, password = port or free_port(), password or secrets.token_urlsafe(16)
        server = cls(port, password, spawn_redis(port, password, workdir, persistent, extra), workdir, persistent,
                     extra)
        wait_until(server.answers, 15, "redis-server")
        return server

    def launch(self, *, wait: bool = True) -> None:
        """Start the process again on this server's port, dir and password, and (``wait``) wait until it answers,
        which with persistence is once it has loaded its data."""
        self.process = spawn_redis(self.port, self.password, self.workdir, self.persistent, self.extra)
        if wait:
            wait_until(self.answers, 15, "redis-server")

    def restart(self, *, wipe: bool = False) -> None:
        """Stop (SIGTERM: a clean shutdown that flushes the AOF) and start again on the same port and data, or,
        with ``wipe``, with its data files deleted in between: a Redis that comes back empty, as one without
        persistence (or whose disk was replaced) does."""
        self.stop()
        if wipe:
            for leftover in (self.workdir / "appendonlydir", self.workdir / "dump.rdb"):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink(missing_ok=True)
        self.launch()

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"

    def worker_env(self) -> dict[str, str]:
        """How a ``python -m worker`` (or a producer) is told to use this server."""
        return {"REDIS_URL": self.url()}

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url())

    def answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def send_signal(self, signum: int) -> None:
        """SIGSTOP / SIGCONT make a hung Redis: it keeps its socket open and answers nothing."""
        if self.process is not None:
            self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class WorkerProcess:
    name: str
    pool: str
    queue: str
    concurrency: int | None
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL the whole process group if it does not go."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Kill the worker and its pool children at once, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


class Endpoint(Protocol):
    """Where workers are sent: a :class:`RedisServer`, or a Sentinel-watched group (``producer/sentinels.py``)."""

    def worker_env(self) -> dict[str, str]:
        """The environment variables that point ``python -m worker`` at it."""


@dataclass
class WorkerFactory:
    """Starts real workers against one Redis; each gets its own queue unless told otherwise."""

    redis_server: Endpoint
    logdir: Path
    app: Celery
    started: list[WorkerProcess] = field(default_factory=list)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}
        env.update({**self.redis_server.worker_env(), "PYTHONUNBUFFERED": "1"})
        env.update(extra or {})
        return env

    def start(self, pool: str, concurrency: int | None = None, queue: str | None = None,
              env: dict[str, str] | None = None, *, wait: bool = True) -> WorkerProcess:
        """Start our demo worker, ``python -m worker``; with ``wait``, until it answers a Celery ping."""
        name = f"{pool}-{uuid.uuid4().hex[:8]}@test"
        queue = queue or f"q-{name.split('@', maxsplit=1)[0]}"
        args = [sys.executable, "-m", "worker", "--pool", pool, "--name", name, "--queues", queue]
        if concurrency is not None:
            args += ["--concurrency", str(concurrency)]
        return self.launch(name, pool, queue, concurrency, args, env=env, wait=wait)

    def start_celery(self, app: str, pool: str, concurrency: int, queue: str, env: dict[str, str] | None = None,
                     *, wait: bool = True, events: bool = False) -> WorkerProcess:
        """Start stock Celery's own ``celery -A <app> worker``, the way an app's author runs their workers
        (``events``: with ``-E``, as for Flower)."""
        name = f"{pool}-{uuid.uuid4().hex[:8]}@{app.split('.', maxsplit=1)[0]}"
        args = [sys.executable, "-m", "celery", "-A", app, "worker", "-P", pool, f"--concurrency={concurrency}",
                f"--hostname={name}", f"--queues={queue}", "--loglevel=INFO", "--without-mingle", "--without-gossip",
                *(["-E"] if events else [])]
        return self.launch(name, pool, queue, concurrency, args, env=env, wait=wait)

    def launch(self, name: str, pool: str, queue: str, concurrency: int | None, args: list[str], *,
               env: dict[str, str] | None, wait: bool) -> WorkerProcess:
        """Run ``args`` as a worker process in its own session, its output in a log of its own."""
        log_path = self.logdir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(args, env=self.env(env), stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        worker = WorkerProcess(name, pool, queue, concurrency, process, log_path)
        self.started.append(worker)
        if wait:
            self.wait_ready(worker)
        return worker

    def wait_ready(self, worker: WorkerProcess) -> None:
        def answers() -> bool:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited early:\n{worker.log()[-3000:]}")
            return bool(self.app.control.ping(destination=[worker.name], timeout=0.5))

        wait_until(answers, READY_TIMEOUT_SECONDS, f"worker {worker.name}", poll=0.0)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


def client_app(redis_server: RedisServer) -> Celery:
    """A Celery app for the test process itself, configured exactly like the workers'."""
    return create_app(redis_server.url())
