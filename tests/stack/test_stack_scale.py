"""The scale check (``scripts/scale.sh``) on the test stack: the worker service scaled to one and then two
containers, two producers on this host, and the service put back to one container with its own settings.

It runs last among the stack tests (file order): scaling recreates the worker container, and the containers
it removed stay in Flower's list as offline workers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.stack.conftest import COMPOSE_FILES, ENV_FILE, PROJECT, ROOT, Compose, run


def test_the_scale_check_measures_each_step_and_puts_the_worker_back(stack: Compose, tmp_path: Path) -> None:
    env = stack.env(COMPOSE_PROJECT_NAME=PROJECT, COMPOSE_FILE=os.pathsep.join(map(str, COMPOSE_FILES)),
                    COMPOSE_ENV_FILES=str(ENV_FILE))
    run([str(ROOT / "scripts" / "scale.sh"), "--out", str(tmp_path), "--", "--steps", "1,2", "--rounds", "1",
         "--cpu-tasks", "4", "--io-tasks", "4"], env=env, timeout=600)

    document = json.loads((tmp_path / "scale.json").read_text())
    assert document["problems"] == []
    assert [(s["containers"], s["workload"]) for s in document["steps"]] == [
        (1, "cpu"), (1, "io"), (2, "cpu"), (2, "io")]
    assert all(s["tasks"] == 4 and len(s["makespans"]) == 1 and s["tasks_per_second"] > 0
               for s in document["steps"])
    assert (tmp_path / "scale.png").stat().st_size > 0
    assert "| io | 2 | 4 |" in (tmp_path / "scale.md").read_text()

    container = stack.container_id("worker")  # exactly one again
    environment = json.loads(run(["docker", "inspect", "-f", "{{json .Config.Env}}", container]))
    assert "WORKER_CONCURRENCY=1" not in environment, "the worker kept the scale check's concurrency"
