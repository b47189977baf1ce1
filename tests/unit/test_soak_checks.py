"""The soak's verdict on made-up runs: each check passes on a clean run and names the offender of a bad one.

The integration test (``tests/integration/test_soak.py``) shows a real run passes; these show the checks
would have failed had the run been wrong, which a passing run alone cannot.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from celery_futures.protocol.policies import LostPolicy
from producer.soak.checks import (
    Check,
    duplicates,
    fault_checks,
    ledger_checks,
    memory_check,
    mix_check,
    outcome_checks,
    redis_checks,
    workers_check,
)
from producer.soak.cli import main
from producer.soak.faults import KillFigures, RestartRecord, last_end
from producer.soak.flight import CANCELLED, NOT_SUBMITTED, PENDING, RESULT, Record
from producer.soak.memory import MemoryFigures, MemoryPoint
from producer.soak.plan import MIX, Kind, batches, make_plan
from producer.soak.redis_state import RedisFigures

ONCE, RERUN = LostPolicy.FAIL, LostPolicy.RERUN
EXPLAINED = "every outcome is one its kind or a fault it met explains"
LEFT = "no subscription or connection of the executor left"


def record(token: str, kind: Kind = Kind.OK, outcome: str = RESULT, *, policy: LostPolicy = ONCE,
           affected: bool = False, progress: int = 0) -> Record:
    return Record(int(token[1:]), token, kind, policy, outcome, True if outcome == RESULT else None, progress,
                  affected)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name.split(" (")[0]: c for c in checks}


def clean_run() -> tuple[list[Record], dict[str, int]]:
    records = [record("t1"), record("t2", Kind.FAIL, "DemoError"), record("t3", Kind.CANCEL, CANCELLED),
               record("t4", Kind.INTERRUPT, "TaskInterruptedError"), record("t5", Kind.PROGRESS, progress=4),
               record("t6", Kind.SLOW, "WorkerGoneError", affected=True),
               record("t7", Kind.OK, policy=RERUN, affected=True)]
    return records, {"t1": 1, "t2": 1, "t4": 1, "t5": 1, "t6": 1, "t7": 2}


# -- the plan -----------------------------------------------------------------------------------------
def test_the_same_seed_makes_the_same_plan_and_another_seed_another() -> None:
    assert make_plan(500, 7, 0.5) == make_plan(500, 7, 0.5)
    assert make_plan(500, 7, 0.5) != make_plan(500, 8, 0.5)


def test_the_plan_follows_the_mix_and_splits_policies_evenly() -> None:
    plan = make_plan(20_000, 1, 0.5)
    kinds, policies = Counter(s.kind for s in plan), Counter(s.policy for s in plan)
    for kind, share in MIX.items():
        assert kinds[kind] / len(plan) == pytest.approx(share, abs=0.01)
    assert policies[ONCE] / len(plan) == pytest.approx(0.5, abs=0.01)
    assert len({s.token for s in plan}) == len(plan)
    assert {s.seconds for s in plan if s.kind is Kind.INTERRUPT} == {5.0}


def test_each_batch_puts_its_cancel_targets_behind_the_rest() -> None:
    for batch in batches(make_plan(1000, 3, 0.5), 50):
        kinds = [s.kind is Kind.CANCEL for s in batch]
        assert kinds == sorted(kinds)


# -- outcomes and the ledger --------------------------------------------------------------------------
def test_a_clean_run_passes_every_outcome_and_ledger_check() -> None:
    records, ledger = clean_run()
    checks = [*outcome_checks(records, restarted=True), *ledger_checks(records, ledger)]
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert duplicates(records, ledger) == {"fail": 0, "rerun": 1}


@pytest.mark.parametrize(("outcome", "name"), [(PENDING, "every future reached a terminal state"),
                                               (NOT_SUBMITTED, "every planned task was submitted")])
def test_a_future_that_never_ended_is_lost(outcome: str, name: str) -> None:
    records, _ = clean_run()
    records.append(record("t9", outcome=outcome))
    found = by_name(outcome_checks(records, restarted=True))[name]
    assert not found.passed and found.measured == "1" and "t9" in found.detail


def test_a_lost_worker_error_on_a_task_the_dead_worker_never_held_is_flagged() -> None:
    records = [record("t1", outcome="WorkerLostError", affected=False)]
    assert not by_name(outcome_checks(records, restarted=True))[EXPLAINED].passed


@pytest.mark.parametrize("outcome", ["SendError", "RedisUnavailableError", "redis.BusyLoadingError"])
def test_errors_of_a_redis_outage_need_the_restart_to_explain_them(outcome: str) -> None:
    records = [record("t1", Kind.FAIL, outcome)]
    assert by_name(outcome_checks(records, restarted=True))[EXPLAINED].passed
    assert not by_name(outcome_checks(records, restarted=False))[EXPLAINED].passed


def test_a_wrong_outcome_for_the_kind_is_flagged() -> None:
    found = by_name(outcome_checks([record("t1", Kind.OK, "DemoError")], restarted=True))
    assert "t1 (ok, fail: DemoError)" in found[EXPLAINED].detail


@pytest.mark.parametrize(("bad", "runs", "name"), [
    (record("t1", Kind.CANCEL, CANCELLED), 1, "a cancelled task left no side effect"),
    (record("t1", outcome="SendError"), 1, "a task that could not be sent left no side effect"),
    (record("t1", policy=ONCE), 2, "no task ran more often than its policy allows"),
    (record("t1", policy=RERUN), 3, "no task ran more often than its policy allows"),
    (record("t1"), 0, "every success ran and returned its own token"),
])
def test_the_ledger_catches_a_side_effect_that_should_not_be_there(bad: Record, runs: int, name: str) -> None:
    found = by_name(ledger_checks([bad], {"t1": runs} if runs else {}))[name]
    assert not found.passed and "t1" in found.detail


def test_an_offender_is_named_with_the_reason_its_future_gave() -> None:
    sent_anyway = dataclasses.replace(record("t1", outcome="SendError"), reason="delivery is uncertain")
    found = by_name(ledger_checks([sent_anyway], {"t1": 1}))["a task that could not be sent left no side effect"]
    assert found.detail == "t1 (ok, fail: SendError, ran 1x: delivery is uncertain)"


def test_a_success_that_returned_another_token_fails() -> None:
    wrong = dataclasses.replace(record("t1"), returned_token=False)
    assert not by_name(ledger_checks([wrong], {"t1": 1}))["every success ran and returned its own token"].passed


def test_a_ledger_entry_nobody_submitted_fails() -> None:
    found = by_name(ledger_checks([record("t1")], {"t1": 1, "t8": 1}))["every ledger entry is a submitted task's"]
    assert not found.passed and found.detail == "t8"


def test_the_mix_check_wants_each_planned_behaviour_once() -> None:
    records, _ = clean_run()
    assert mix_check(records, cancels_won=1).passed
    assert "a cancel won" in mix_check(records, cancels_won=0).detail
    no_progress = [dataclasses.replace(r, progress_reports=0) for r in records]
    assert "a progress report" in mix_check(no_progress, cancels_won=1).detail


# -- faults, memory, Redis -----------------------------------------------------------------------------
def kill(running: int) -> KillFigures:
    return KillFigures("gevent", "gevent-1@test", "gevent-2@test", 1.0, 100, running, 0, 9.0, 0.0, {}, {})


WIPE = RestartRecord(0.0, 250, 0.2)


def test_the_faults_must_have_been_real() -> None:
    good = fault_checks(kill(3), RestartRecord(0.0, 200, 0.2), WIPE, 300, [])
    assert all(c.passed for c in good)
    idle = by_name(fault_checks(kill(0), RestartRecord(0.0, 200, 0.2), WIPE, 300, []))
    assert not idle["the kill hit a worker while it ran tasks"].passed
    late = by_name(fault_checks(kill(3), RestartRecord(0.0, 300, 0.2), WIPE, 300, []))
    assert not late["Redis restarted with tasks submitted before and after"].passed
    no_wipe = by_name(fault_checks(kill(3), RestartRecord(0.0, 200, 0.2), None, 300, []))
    assert not no_wipe["Redis lost its data with tasks submitted before and after"].passed
    missing = by_name(fault_checks(None, None, None, 300, ["fault injection: TimeoutError"]))
    assert not any(c.passed for c in missing.values())


def test_a_data_loss_explains_its_error_but_not_a_side_effect() -> None:
    records = [record("t1", Kind.OK, "RedisDataLostError")]
    assert by_name(outcome_checks(records, restarted=True, wiped=True))[EXPLAINED].passed
    assert not by_name(outcome_checks(records, restarted=True, wiped=False))[EXPLAINED].passed
    ran_anyway = by_name(ledger_checks(records, {"t1": 1}))["a task whose future says Redis lost it did not run"]
    assert not ran_anyway.passed and "t1" in ran_anyway.detail


def test_detection_time_is_none_while_any_affected_future_is_still_open() -> None:
    assert last_end({1, 2}, 10.0, {1: 12.0, 2: 19.5}) == 9.5
    assert last_end({1, 2}, 10.0, {1: 12.0}) is None
    assert last_end(set(), 10.0, {}) == 0.0


def test_memory_must_come_back_within_the_slack() -> None:
    figures = MemoryFigures(MemoryPoint(2_000, 1_000), MemoryPoint(5_000, 1_900), 9_000)
    assert memory_check(figures, 1_000).passed
    assert not memory_check(figures, 800).passed


CLEAN_REDIS = RedisFigures(1, 1, [], [], 10, {"claim": 3}, [], 0, 0)


def test_a_clean_redis_passes() -> None:
    assert all(c.passed for c in redis_checks(CLEAN_REDIS))


@pytest.mark.parametrize(("leftover", "name"), [
    (dataclasses.replace(CLEAN_REDIS, numpat_after=2), LEFT),
    (dataclasses.replace(CLEAN_REDIS, clients_of_ours=["listener-cfx-abc"]), LEFT),
    (dataclasses.replace(CLEAN_REDIS, channels_of_ours=["celery-task-meta-cfx-abc-1"]), LEFT),
    (dataclasses.replace(CLEAN_REDIS, keys_without_ttl=["cfx:claim:x"]), "every key of ours expires"),
    (dataclasses.replace(CLEAN_REDIS, queue_left=4), "the queue drained"),
])
def test_anything_of_the_executor_left_in_redis_fails(leftover: RedisFigures, name: str) -> None:
    assert not by_name(redis_checks(leftover))[name].passed


def test_a_worker_that_ended_on_its_own_fails_the_run() -> None:
    assert workers_check([]).passed
    ended = workers_check(["prefork-1@test (exit 1)"])
    assert not ended.passed and "prefork-1@test (exit 1)" in ended.detail


def test_a_subscription_kept_for_futures_that_never_ended_says_so() -> None:
    kept = by_name(redis_checks(dataclasses.replace(CLEAN_REDIS, numpat_after=2), never_ended=1))[LEFT]
    assert not kept.passed and "stays open for its 1 future(s) that never ended" in kept.detail


# -- the command line ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--tasks", "5"], "--tasks"),
    (["--pools", "prefork"], "need two different pools"),
    (["--pools", "prefork,prefork"], "need two different pools"),
    (["--pools", "prefork,fibers"], "unknown pool fibers"),
    (["--concurrency", "gevent=0"], "POOL=N"),
    (["--concurrency", "threads=4"], "not in --pools"),
    (["--kill-pool", "solo"], "not one of --pools"),
    (["--slow-seconds", "0"], "--slow-seconds"),
    (["--deadline", "1"], "--deadline"),
])
def test_bad_flags_are_refused_before_anything_starts(args: list[str], message: str, tmp_path: Path) -> None:
    done = CliRunner().invoke(main, [*args, "--workdir", str(tmp_path / "work")])
    assert done.exit_code == 2, done.output
    assert message in done.output
    assert not (tmp_path / "work").exists()


# -- the drill's own figures (producer/drill.py) ---------------------------------------------------------------
def test_the_longest_stall_counts_from_the_start_and_between_ends_and_names_what_it_held_up() -> None:
    from types import SimpleNamespace

    from producer.drill import Stall
    from producer.soak.flight import Flight
    from producer.soak.plan import make_plan

    plan = make_plan(4, 1, 0.1)
    flight = Flight()
    for spec, ended in zip(plan, (10.5, 11.0, 14.0, 14.1), strict=True):
        flight.futures[spec.index] = SimpleNamespace(task_id=f"id-{spec.index}")  # type: ignore[assignment]
        flight.done_at[spec.index] = ended
    stall = Stall.of(flight, plan, 10.0)
    assert stall.seconds == 3.0
    assert [(entry["task_id"], entry["ended_after_seconds"]) for entry in stall.held_up] == [("id-2", 4.0),
                                                                                             ("id-3", 4.1)]
    assert Stall.of(Flight(), plan, 10.0) == Stall(0.0, [])


def test_fault_outcomes_are_counted_by_name() -> None:
    from producer.drill import fault_outcomes

    outcomes = ["result", "SendError", "redis.ConnectionError", "WorkerGoneError", "DemoError", "SendError"]
    records = [record(f"t{i}", outcome=outcome) for i, outcome in enumerate(outcomes)]
    assert fault_outcomes(records) == {"SendError": 2, "redis.ConnectionError": 1, "WorkerGoneError": 1}
