"""The whole stack under docker compose, once per session, through pytest-docker.

The real ``docker-compose.yml`` runs under its own project name with ephemeral loopback ports
(``docker-compose.test.yml``) and test passwords (``stack.env``). Setup is ``down -v`` (a killed run leaves
nothing behind) then ``up --build --wait`` (healthchecks, no sleeps); teardown is ``down -v``, after which
the session checks that no container, network or volume of the project is left.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_docker.plugin import Services

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROJECT = "cfx-stack-test"
COMPOSE_FILES = (ROOT / "docker-compose.yml", HERE / "docker-compose.test.yml")
ENV_FILE = HERE / "stack.env"
# Everything docker-compose.yml interpolates: a developer's shell values must not leak into the test stack.
COMPOSE_VARS = (
    "REDIS_PASSWORD", "REDIS_PORT", "REDIS_IMAGE", "BASE_IMAGE", "FLOWER_USER", "FLOWER_PASSWORD",
    "FLOWER_PORT", "WORKER_POOL", "WORKER_CONCURRENCY", "WORKER_QUEUES", "WORKER_LOGLEVEL",
    "COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME", "COMPOSE_ENV_FILES",
)
UP_TIMEOUT_SECONDS = 180
# Every profile, so containers of profiled services (pools, demo) go too; volumes (-v) as well.
DOWN = "--profile '*' down -v --remove-orphans"


def run(argv: list[str], env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
    """Run a command, return its stdout; fail the test with its output when it fails."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(f"{shlex.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def parse_env(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (as in an env file, or printed by ``.ci/docker.sh env``); comments skipped."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def tool_works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class Compose:
    """``docker compose`` for the test project, with a clean environment plus ``extra`` variables."""

    extra: Mapping[str, str]

    def env(self, **overrides: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARS}
        return {**clean, **self.extra, **overrides}

    def argv(self, *args: str, files: tuple[Path, ...] = COMPOSE_FILES) -> list[str]:
        file_args = [arg for f in files for arg in ("-f", str(f))]
        return ["docker", "compose", "--env-file", str(ENV_FILE), *file_args, "-p", PROJECT, *args]

    def __call__(self, *args: str, files: tuple[Path, ...] = COMPOSE_FILES, **env: str) -> str:
        return run(self.argv(*args, files=files), env=self.env(**env))

    def shell_prefix(self) -> str:
        """The same as a shell command prefix, for pytest-docker (which appends ``-f``, ``-p`` and args)."""
        unset = [arg for name in COMPOSE_VARS for arg in ("-u", name)]
        assigned = [f"{k}={v}" for k, v in self.extra.items()]
        return shlex.join(["env", *unset, *assigned, "docker", "compose", "--env-file", str(ENV_FILE)])

    def config(self, *profiles: str, files: tuple[Path, ...] = COMPOSE_FILES) -> dict[str, Any]:
        profile_args = [arg for p in profiles for arg in ("--profile", p)]
        return json.loads(self(*profile_args, "config", "--format", "json", files=files))  # type: ignore[no-any-return]

    def container_id(self, service: str) -> str:
        ids = self("ps", "-q", service).split()
        assert len(ids) == 1, f"expected one {service} container, got {ids}"
        return ids[0]

    def worker_name(self, pool: str) -> str:
        """The Celery node name of the running worker: ``<pool>@<container hostname>`` (its short id)."""
        return f"{pool}@{self.container_id('worker')[:12]}"

    def leftovers(self) -> list[str]:
        label = f"label=com.docker.compose.project={PROJECT}"
        found = []
        for kind in ("container", "network", "volume"):
            argv = ["docker", kind, "ls", "-q", "--filter", label] + (["--all"] if kind == "container" else [])
            found += [f"{kind} {name}" for name in run(argv).split()]
        return found


@dataclass(frozen=True)
class PoolSwitch:
    """``scripts/pool.sh`` on the test stack: compose's own variables point it at the test project and at a
    copy of the test env file, where it keeps the choice (as it keeps it in ``.env`` for a user)."""

    compose: Compose
    env_file: Path

    def __call__(self, pool: str) -> str:
        env = self.compose.env(COMPOSE_PROJECT_NAME=PROJECT, COMPOSE_FILE=os.pathsep.join(map(str, COMPOSE_FILES)),
                               COMPOSE_ENV_FILES=str(self.env_file))
        return run([str(ROOT / "scripts" / "pool.sh"), pool], env=env, timeout=300)

    def run(self, *args: str) -> str:
        """A compose command with the switched env file, as a user's later commands read ``.env``."""
        return run(["docker", "compose", "--env-file", str(self.env_file),
                    *[arg for f in COMPOSE_FILES for arg in ("-f", str(f))], "-p", PROJECT, *args],
                   env=self.compose.env())


@pytest.fixture
def pool_switch(stack: Compose, tmp_path: Path) -> Iterator[PoolSwitch]:
    """Switches the worker's pool for a test and back to prefork after it."""
    env_file = tmp_path / "stack.env"
    env_file.write_text(ENV_FILE.read_text())
    switch = PoolSwitch(stack, env_file)
    yield switch
    switch("prefork")


@dataclass(frozen=True)
class Flower:
    base_url: str
    user: str
    password: str

    def get(self, path: str, auth: bool = True) -> tuple[int, bytes]:
        """GET ``path``; the HTTP status and body (errors included, not raised)."""
        request = urllib.request.Request(self.base_url + path)
        if auth:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def worker_pool(self, name: str) -> str | None:
        """The pool implementation Flower reports for worker ``name`` (a fresh inspect), or None."""
        status, body = self.get(f"/api/workers?refresh=1&workername={name}")
        if status != 200:
            return None
        info = json.loads(body).get(name) or {}
        return (info.get("stats") or {}).get("pool", {}).get("implementation")  # type: ignore[no-any-return]

    def wait_for_pool(self, name: str, pool: str, timeout: float = 60) -> None:
        """Poll Flower (app-level readiness) until it reports ``name`` running ``pool``."""
        wanted = f"celery.concurrency.{pool}:TaskPool"
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.worker_pool(name)
            if seen == wanted:
                return
            time.sleep(1)
        pytest.fail(f"Flower did not report {name} with {wanted} within {timeout:.0f}s (last: {seen})")


@pytest.fixture(scope="session")
def compose() -> Compose:
    """Skip unless Docker and Compose v2 work; prepare base images (registry-less hosts) and the wheelhouse."""
    if not tool_works(["docker", "compose", "version"]):
        pytest.skip("`docker compose version` failed: Compose v2 missing (.ci/docker.sh compose-install)")
    if not tool_works(["docker", "info"]):
        pytest.skip("no Docker engine answers `docker info` (.ci/docker.sh engine-up)")
    docker_sh = str(ROOT / ".ci" / "docker.sh")
    run([docker_sh, "base-images"])  # a no-op when a registry answers or the local images exist
    run([str(ROOT / "scripts" / "wheelhouse.sh")])
    return Compose(parse_env(run([docker_sh, "env"])))


# -- pytest-docker's fixtures, pointed at our files and project -------------------------------------------
@pytest.fixture(scope="session")
def docker_compose_command(compose: Compose) -> str:
    return compose.shell_prefix()


@pytest.fixture(scope="session")
def docker_compose_file() -> list[str]:
    return [str(f) for f in COMPOSE_FILES]


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return [DOWN, f"up --build -d --wait --wait-timeout {UP_TIMEOUT_SECONDS}"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return [DOWN]


# -- our fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _no_leftovers(compose: Compose) -> Iterator[None]:
    """Set up before the stack, so it is torn down after it: then nothing of the project may remain."""
    yield
    left = compose.leftovers()
    if left:
        compose("--profile", "*", "down", "-v", "--remove-orphans")  # clean up anyway (a failed `up`)
        pytest.fail(f"left behind after `down -v`: {', '.join(left)}")


@pytest.fixture(scope="session")
def stack(_no_leftovers: None, docker_services: Services, compose: Compose) -> Compose:
    """The running stack (all services healthy); tests that change it put it back as it was."""
    return compose


@pytest.fixture(scope="session")
def flower(stack: Compose, docker_services: Services, docker_ip: str) -> Flower:
    env = parse_env(ENV_FILE.read_text())
    port = docker_services.port_for("flower", 5555)
    return Flower(f"http://{docker_ip}:{port}", env["FLOWER_USER"], env["FLOWER_PASSWORD"])
