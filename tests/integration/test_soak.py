"""The soak, CI-sized: ``python -m producer.soak`` as a user runs it, 1,500 mixed tasks through a worker kill, a
Redis restart and a Redis that comes back empty, on its own redis-servers and workers (not the session's).

Every check of the run must pass; the assertions below add that the run was the run it claims to be (both
faults happened, every kind of task was there), never a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from producer.soak.plan import Kind

TASKS = 1500
RUN_TIMEOUT = 270
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("soak")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "PRODUCER_")) and k != "REDIS_URL"}
    command = [sys.executable, "-m", "producer.soak", "--tasks", str(TASKS), "--seed", "7",
               "--deadline", "200", "--stall", "45", "--progress", "off", "--json",
               "--out", str(folder / "results"), "--workdir", str(folder / "work")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
                          cwd=ROOT)
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"the soak printed no JSON document (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return done, doc, folder


def test_the_soak_passes_every_check(soak: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]) -> None:
    done, doc, _ = soak
    failed = {c["name"]: c for c in doc["checks"] if not c["passed"]}
    assert not failed, json.dumps({"failed": failed, "stuck": doc["stuck"], "problems": doc["problems"]}, indent=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr


def test_nothing_was_lost_and_nothing_ran_beyond_its_policy(
        soak: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]) -> None:
    _, doc, _ = soak
    figures = doc["figures"]
    assert figures["tasks"] == figures["submitted"] == TASKS
    assert figures["lost"] == 0 and doc["stuck"] == []
    assert figures["duplicates"]["fail"] == 0 and figures["policy_violations"] == 0
    assert sum(figures["outcomes"].values()) == TASKS


def test_every_fault_happened_mid_run(soak: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]) -> None:
    _, doc, _ = soak
    kill, restart, wipe = doc["kill"], doc["restart"], doc["wipe"]
    assert kill["running"] >= 1 and kill["replacement"] and kill["detect_seconds"] is not None
    assert 0 < kill["at_submitted"] < restart["submitted_before"] < wipe["submitted_before"] < TASKS
    assert restart["seconds_down"] is not None and wipe["seconds_down"] is not None
    assert [w["role"] for w in doc["workers"]].count("replacement") == 1


def test_every_kind_of_task_was_in_the_run(soak: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]) -> None:
    _, doc, _ = soak
    assert set(doc["outcomes_by_kind"]) == {kind.value for kind in Kind}
    assert doc["figures"]["cancels"]["won"] > 0
    assert doc["outcomes_by_kind"]["interrupt"].get("TaskInterruptedError", 0) > 0


def test_the_results_are_written_with_the_machine(
        soak: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]) -> None:
    _, doc, folder = soak
    written = json.loads((folder / "results" / "soak.json").read_text())
    assert written["figures"] == doc["figures"]
    assert {"cores", "cpu_model", "python", "redis_server", "load_average_at_end"} <= set(written["machine"])
    report = (folder / "results" / "soak.md").read_text()
    for title in ("## Checks", "## Figures", "## Outcomes by kind", "## Redis after the run", "## Machine"):
        assert title in report
    assert "scripts/soak.sh --tasks 1500 --seed 7" in report
