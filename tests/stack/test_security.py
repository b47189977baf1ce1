"""Security defaults of the stack as built and run: Redis refuses anonymous clients, and no password is baked
into an image. Secrets reach the containers only from the environment at run time (here ``stack.env``; for
users the ``.env`` that ``scripts/gen-env.sh`` writes). Flower's 401, non-root containers and loopback-only
ports are in test_stack.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pytest_docker.plugin import Services

from tests.integration.test_redis_auth import unauthenticated_reply
from tests.stack.conftest import ENV_FILE, Compose, parse_env, run

pytestmark = pytest.mark.stack

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|BASIC_AUTH|API_KEY", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]*:[^/@\s]+@")


def test_redis_refuses_clients_without_the_password(stack: Compose, docker_services: Services) -> None:
    port = docker_services.port_for("redis", 6379)
    for command in (("PING",), ("LPUSH", "celery", "x"), ("PUBLISH", "/0.celery.pidbox", "x")):
        assert unauthenticated_reply(port, *command).startswith(b"-NOAUTH"), command


def stack_images(stack: Compose) -> list[str]:
    """Every image docker-compose.yml runs, with every profile, as this host resolves it."""
    profiles = run(stack.argv("config", "--profiles"), env=stack.env()).split()
    services: dict[str, Any] = stack.config(*profiles)["services"]
    return sorted({service["image"] for service in services.values()})


def secrets_in_env(env: list[str]) -> list[str]:
    """``KEY=VALUE`` entries that name a secret or carry a password in a URL."""
    return [entry for entry in env
            if SECRET_NAME.search(entry.split("=", 1)[0]) or URL_WITH_PASSWORD.search(entry)]


def test_no_image_carries_a_password(stack: Compose) -> None:
    """The image config (its ENV, labels, command) and its build history hold neither secret-named variables
    nor the passwords the stack runs with: those come from the environment, never from the build."""
    passwords = [value for key, value in parse_env(ENV_FILE.read_text()).items() if "PASSWORD" in key]
    images = stack_images(stack)
    assert "celery-futures-lab:latest" in images
    for image in images:
        config = json.loads(run(["docker", "image", "inspect", image]))[0]["Config"]
        assert not secrets_in_env(config.get("Env") or []), f"{image} bakes in {secrets_in_env(config['Env'])}"
        baked = run(["docker", "image", "inspect", image]) + run(["docker", "history", "--no-trunc", image])
        leaked = [p for p in passwords if p in baked]
        assert not leaked, f"{image} contains the stack's passwords in its config or history"


def test_the_containers_get_their_secrets_from_the_environment(stack: Compose) -> None:
    """The other half of the test above: the running worker and Flower do have their credentials, so they came
    from the run-time environment and not the image."""
    env = parse_env(ENV_FILE.read_text())
    for service, expected in (("worker", f":{env['REDIS_PASSWORD']}@"),
                              ("flower", f"{env['FLOWER_USER']}:{env['FLOWER_PASSWORD']}")):
        container = json.loads(run(["docker", "inspect", stack.container_id(service)]))[0]
        assert any(expected in entry for entry in container["Config"]["Env"]), f"{service} lacks its secret"


def test_no_env_file_is_in_the_image(stack: Compose) -> None:
    """services/Dockerfile.dockerignore keeps the build context to the code; a developer's .env stays out."""
    found = run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", "celery-futures-lab:latest",
                 "-c", "find / -xdev -name '.env*' 2>/dev/null; true"]).split()
    assert found == [], f"env files in the image: {found}"


@pytest.mark.parametrize(
    ("entry", "secret"),
    [
        ("REDIS_URL=redis://:pw@redis:6379/0", True),
        ("FLOWER_BASIC_AUTH=admin:pw", True),
        ("DB_PASSWORD=pw", True),
        ("APP_SECRET_KEY=k", True),
        ("REDIS_URL=redis://redis:6379/0", False),
        ("PATH=/opt/venv/bin:/usr/local/bin:/usr/bin", False),
        ("PIP_DISABLE_PIP_VERSION_CHECK=1", False),
    ],
)
def test_what_counts_as_a_baked_in_secret(entry: str, secret: bool) -> None:
    """The image check above, on entries made up here (needs no Docker)."""
    assert bool(secrets_in_env([entry])) is secret
