"""The stack as a user gets it: Flower behind a password, workers on the pool asked for, nobody root,
nothing published beyond loopback. Tests that change the stack (scale, pool) put it back before they end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.stack.conftest import COMPOSE_FILES, ROOT, Compose, Flower, PoolSwitch, run

pytestmark = pytest.mark.stack

PREFORK = "celery.concurrency.prefork:TaskPool"


def test_flower_refuses_requests_without_credentials(flower: Flower) -> None:
    for path in ("/api/workers", "/workers"):
        status, _ = flower.get(path, auth=False)
        assert status == 401, f"{path} answered {status} without credentials"


def test_flower_answers_with_credentials(flower: Flower) -> None:
    for path in ("/api/workers", "/workers"):
        status, _ = flower.get(path)
        assert status == 200, f"{path} answered {status} with credentials"


def test_flower_reports_the_worker_on_prefork_by_default(stack: Compose, flower: Flower) -> None:
    flower.wait_for_pool(stack.worker_name("prefork"), "prefork", timeout=30)


@pytest.mark.parametrize("service", ["worker", "flower", "redis"])
def test_containers_do_not_run_as_root(stack: Compose, service: str) -> None:
    uid = stack("exec", "-T", service, "id", "-u").strip()
    assert uid.isdigit() and uid != "0", f"{service} runs as uid {uid}"


def published_ports(config: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    services = config["services"]
    assert isinstance(services, dict)
    return [(name, port) for name, svc in services.items() for port in svc.get("ports", [])]


def test_compose_publishes_ports_on_loopback_only(stack: Compose) -> None:
    """The user's file with every profile, and the test override: nothing listens beyond 127.0.0.1."""
    profiles = run(stack.argv("config", "--profiles", files=COMPOSE_FILES[:1]), env=stack.env()).split()
    for files in (COMPOSE_FILES[:1], COMPOSE_FILES):
        ports = published_ports(stack.config(*profiles, files=files))
        assert ports, "expected Redis and Flower to be published"
        wrong = [(name, port) for name, port in ports if port.get("host_ip") != "127.0.0.1"]
        assert not wrong, f"published beyond loopback: {wrong}"


def test_running_containers_bind_loopback_only(stack: Compose) -> None:
    ids = stack("ps", "-q").split()
    inspected = json.loads(run(["docker", "inspect", *ids]))
    bindings = [
        (c["Name"], b["HostIp"]) for c in inspected
        for port_bindings in (c["HostConfig"]["PortBindings"] or {}).values() for b in port_bindings
    ]
    assert bindings and all(ip == "127.0.0.1" for _, ip in bindings), bindings


def test_workers_scale_to_three_and_back(stack: Compose, flower: Flower) -> None:
    try:
        stack("up", "-d", "--wait", "--scale", "worker=3", "worker")
        ids = stack("ps", "-q", "worker").split()
        assert len(ids) == 3
        for cid in ids:
            flower.wait_for_pool(f"prefork@{cid[:12]}", "prefork", timeout=30)
    finally:
        stack("up", "-d", "--wait", "--scale", "worker=1", "worker")
    assert len(stack("ps", "-q", "worker").split()) == 1


def test_switching_worker_pool_to_gevent_restarts_the_worker(stack: Compose, flower: Flower) -> None:
    before = stack.container_id("worker")
    try:
        stack("up", "-d", "--wait", "worker", WORKER_POOL="gevent")
        assert stack.container_id("worker") != before, "the worker was not recreated"
        flower.wait_for_pool(stack.worker_name("gevent"), "gevent", timeout=60)
    finally:
        stack("up", "-d", "--wait", "worker")
    flower.wait_for_pool(stack.worker_name("prefork"), "prefork", timeout=60)


def test_a_bad_pool_stops_up_with_its_reason_and_no_worker_loops(stack: Compose) -> None:
    """``WORKER_POOL=bogus``: ``up`` fails, the one-shot check says why in one line, and no worker is started on
    the bad setting, so none restarts in a loop."""
    done = subprocess.run(stack.argv("up", "-d", "--wait", "worker"), env=stack.env(WORKER_POOL="bogus"),
                          capture_output=True, text=True, timeout=300, check=False)
    try:
        assert done.returncode != 0
        assert "worker-settings" in done.stderr  # compose names the check that failed
        logs = stack("logs", "--no-log-prefix", "worker-settings")
        assert "WORKER_POOL: unknown pool 'bogus'; valid pools: prefork, threads, gevent, solo" in logs
        workers = stack("ps", "-a", "-q", "worker").split()
        states = [run(["docker", "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", w]).strip()
                  for w in workers]
        assert states and all(state.split()[0] in ("created", "exited") for state in states), states
        assert all(state.split()[1] == "0" for state in states), states
    finally:
        stack("up", "-d", "--wait", "worker")
    assert "worker settings are valid: pool prefork" in stack("logs", "--no-log-prefix", "worker-settings")


def test_a_pool_switch_stays_switched_through_later_commands(stack: Compose, flower: Flower,
                                                            pool_switch: PoolSwitch) -> None:
    """``scripts/pool.sh gevent`` keeps the choice in the env file; a producer command run afterwards without
    the variable (the user forgot it) does not recreate the worker on prefork."""
    pool_switch("gevent")
    assert "WORKER_POOL=gevent" in pool_switch.env_file.read_text()
    switched = stack.container_id("worker")
    flower.wait_for_pool(stack.worker_name("gevent"), "gevent", timeout=60)
    stack("run", "--rm", "producer", "demo")  # the original env file: no WORKER_POOL in it
    pool_switch.run("up", "-d", "--wait", "worker")  # and a plain `up` that reads the switched one
    assert stack.container_id("worker") == switched
    assert flower.worker_pool(stack.worker_name("gevent")) == "celery.concurrency.gevent:TaskPool"


def test_pool_sh_refuses_a_pool_that_does_not_exist(stack: Compose, pool_switch: PoolSwitch) -> None:
    env = stack.env(COMPOSE_ENV_FILES=str(pool_switch.env_file))
    done = subprocess.run([str(ROOT / "scripts" / "pool.sh"), "eventlet"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert "unknown pool 'eventlet'; valid pools: prefork, threads, gevent, solo" in done.stderr
    assert "WORKER_POOL=eventlet" not in pool_switch.env_file.read_text()


def test_compose_without_base_images_names_the_command_to_run(stack: Compose, tmp_path: Path) -> None:
    """A plain ``docker compose up`` where no image is named (no registry, ``.env`` without them) stops with the
    command that builds local base images, not with Docker's "no such host" for a pull."""
    env_file = tmp_path / "no-images.env"
    env_file.write_text("REDIS_PASSWORD=x\nFLOWER_USER=u\nFLOWER_PASSWORD=y\n")
    argv = ["docker", "compose", "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"), "-p",
            "cfx-no-images", "config", "-q"]
    env = {k: v for k, v in stack.env().items() if k not in ("BASE_IMAGE", "REDIS_IMAGE")}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert ".ci/docker.sh base-images && .ci/docker.sh env >> .env" in done.stderr


def test_an_empty_wheelhouse_is_said_plainly_and_not_inside_the_failed_command(stack: Compose,
                                                                               tmp_path: Path) -> None:
    """The image's first step checks the wheelhouse with a script of its own, so the reason and the next command
    are the step's output (and BuildKit's summary of it), never repeated inside the echoed command line."""
    for part in ("pyproject.toml", "README.md", "celery_futures", "worker", "producer", "services/Dockerfile",
                 "services/Dockerfile.dockerignore", "services/check-wheelhouse.sh"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        copy(ROOT / part, tmp_path / part)
    (tmp_path / "services" / "wheelhouse").mkdir()
    (tmp_path / "compose.yml").write_text(
        "services:\n  lab:\n    image: cfx-empty-wheelhouse:never\n"
        "    build: {context: ., dockerfile: services/Dockerfile, args: {BASE_IMAGE: \"${BASE_IMAGE}\"}}\n")
    done = subprocess.run(["docker", "compose", "-f", str(tmp_path / "compose.yml"), "-p", "cfx-empty-wheelhouse",
                           "build", "lab"], env=stack.env(), capture_output=True, text=True, timeout=600,
                          check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "services/wheelhouse is empty. Next: scripts/wheelhouse.sh" in output
    failed = [line for line in output.splitlines() if "failed" in line.lower() and "check-wheelhouse" in line]
    assert failed and not any("wheelhouse is empty" in line for line in failed), failed
