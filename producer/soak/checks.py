"""The soak's verdict: named checks over the run's records, its side-effect ledger and what it measured.

Pure functions of their inputs (the run gathers them, ``tests/unit/test_soak_checks.py`` feeds them made-up
runs), so each check's meaning can be read here in one place. A check is a fact, never a speed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from celery_futures.protocol.policies import MAX_RUNS, LostPolicy
from producer.soak.faults import KillFigures, RestartRecord
from producer.soak.flight import CANCELLED, NOT_SUBMITTED, PENDING, RESULT, Record
from producer.soak.memory import MemoryFigures
from producer.soak.plan import Kind
from producer.soak.redis_state import RedisFigures

LOST_WORKER = frozenset({"WorkerLostError", "WorkerGoneError"})
"""What a future says when the worker running its task died (WorkerGoneError subclasses WorkerLostError)."""
SEND_ERROR = "SendError"
UNAVAILABLE = "RedisUnavailableError"
"""What a future says when Redis stayed away past the executor's outage limit: its outcome cannot be known."""
DATA_LOST = "RedisDataLostError"
"""What a future says when Redis lost its data while its task was queued or held: it did not run."""
EXPECTED: dict[Kind, frozenset[str]] = {
    Kind.OK: frozenset({RESULT}),
    Kind.SLOW: frozenset({RESULT}),
    Kind.PROGRESS: frozenset({RESULT}),
    Kind.FAIL: frozenset({"DemoError"}),
    Kind.CANCEL: frozenset({CANCELLED, RESULT}),  # a cancel that lost the race runs the task
    Kind.INTERRUPT: frozenset({"TaskInterruptedError", RESULT}),  # it may end before it is caught running
}
"""What each kind may end with when no fault touched it. While Redis restarts, any of them may end with
``SendError`` (its send was refused), ``RedisUnavailableError`` (Redis stayed away past the executor's
outage limit) or a ``redis.*`` error (the task's own Redis call, its ledger write or its interrupt check,
failed, and the task said so); once Redis has lost its data, any of them may end with
``RedisDataLostError`` (its message or claim went with the data: it did not run, which the ledger checks);
a lost worker may end only the tasks it held."""
REDIS_ERROR = "redis."
EXAMPLES = 5


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    measured: str
    detail: str = ""
    """The first few offenders, when it failed."""


def check(name: str, offenders: list[str], measured: str | None = None) -> Check:
    """Passes when there are no offenders; the detail names the first few."""
    more = len(offenders) - EXAMPLES
    shown = ", ".join(offenders[:EXAMPLES]) + (f" (+{more} more)" if more > 0 else "")
    return Check(name, not offenders, measured if measured is not None else str(len(offenders)), shown)


def by_restart(outcome: str) -> bool:
    """An outcome only a Redis outage explains."""
    return outcome in (SEND_ERROR, UNAVAILABLE) or outcome.startswith(REDIS_ERROR)


def allowed(record: Record, restarted: bool, wiped: bool = False) -> bool:
    if record.outcome in EXPECTED[record.kind] or (restarted and by_restart(record.outcome)):
        return True
    if wiped and record.outcome == DATA_LOST:
        return True
    return record.affected and record.outcome in LOST_WORKER


def describe(record: Record, runs: int | None = None) -> str:
    counted = "" if runs is None else f", ran {runs}x"
    reason = f": {record.reason}" if record.reason else ""
    return f"{record.token} ({record.kind.value}, {record.policy.value}: {record.outcome}{counted}{reason})"


def outcome_checks(records: list[Record], *, restarted: bool, wiped: bool = False) -> list[Check]:
    pending = [r for r in records if r.outcome == PENDING]
    ended = [r for r in records if r.outcome not in (PENDING, NOT_SUBMITTED)]
    return [
        check("every planned task was submitted", [describe(r) for r in records if r.outcome == NOT_SUBMITTED]),
        check("every future reached a terminal state (lost = 0)", [describe(r) for r in pending]),
        check("every outcome is one its kind or a fault it met explains",
              [describe(r) for r in ended if not allowed(r, restarted, wiped)]),
    ]


def ledger_checks(records: list[Record], ledger: dict[str, int]) -> list[Check]:
    """What the side-effect ledger proves: what ran, how often, and that nothing cancelled ran."""
    runs = {r.token: ledger.get(r.token, 0) for r in records}
    over = [describe(r, runs[r.token]) for r in records if runs[r.token] > MAX_RUNS[r.policy]]
    successes = [r for r in records if r.outcome == RESULT]
    return [
        check("a cancelled task left no side effect",
              [describe(r, runs[r.token]) for r in records if r.outcome == CANCELLED and runs[r.token]]),
        check("a task that could not be sent left no side effect",
              [describe(r, runs[r.token]) for r in records if r.outcome == SEND_ERROR and runs[r.token]]),
        check("a task whose future says Redis lost it did not run",
              [describe(r, runs[r.token]) for r in records if r.outcome == DATA_LOST and runs[r.token]]),
        check("no task ran more often than its policy allows (once: 1, rerun: 2)", over),
        check("every success ran and returned its own token",
              [describe(r, runs[r.token]) for r in successes if not (runs[r.token] >= 1 and r.returned_token)]),
        check("every ledger entry is a submitted task's", sorted(set(ledger) - set(runs))),
    ]


def duplicates(records: Iterable[Record], ledger: dict[str, int]) -> dict[str, int]:
    """Tokens that ran more than once, by policy (more than once is a violation for ``fail``)."""
    found: Counter[str] = Counter({policy.value: 0 for policy in LostPolicy})
    for record in records:
        if ledger.get(record.token, 0) > 1:
            found[record.policy.value] += 1
    return dict(found)


def outcomes_by_kind(records: Iterable[Record]) -> dict[str, dict[str, int]]:
    table: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        table[record.kind.value][record.outcome] += 1
    return {kind: dict(counts) for kind, counts in sorted(table.items())}


def mix_check(records: list[Record], cancels_won: int) -> Check:
    """Each fault-free behaviour of the mix happened at least once, if the plan had any of its kind."""
    planned = Counter(r.kind for r in records)
    seen = Counter(r.outcome for r in records)
    progress_reports = sum(r.progress_reports for r in records)
    wanted = {Kind.CANCEL: ("a cancel won", cancels_won), Kind.FAIL: ("DemoError", seen["DemoError"]),
              Kind.INTERRUPT: ("TaskInterruptedError", seen["TaskInterruptedError"]),
              Kind.PROGRESS: ("a progress report", progress_reports)}
    missing = [what for kind, (what, count) in wanted.items() if planned[kind] and not count]
    return check("the mix did what it says (cancels won, failures, interrupts, progress)", missing,
                 ", ".join(f"{what}: {count}" for what, count in wanted.values()))


def memory_check(memory: MemoryFigures, slack_bytes: int) -> Check:
    delta = memory.delta_bytes
    offenders = [f"{delta:,} B over the baseline"] if delta > slack_bytes else []
    return check(f"producer memory back within {slack_bytes:,} B of its baseline", offenders, f"{delta:+,} B")


def workers_check(exited: list[str]) -> Check:
    """A worker that ends on its own (Celery's "Unrecoverable error" on a Redis blip) is a fault nobody planned:
    the queue still drains through the others, so only this check sees it."""
    return check("every worker the run did not kill is still running", exited)


def redis_checks(found: RedisFigures, never_ended: int = 0) -> list[Check]:
    """``never_ended``: futures still open, which keep the executor (and its subscription) alive, as they should."""
    leftovers = [*found.channels_of_ours, *(f"client {name}" for name in found.clients_of_ours)]
    if found.numpat_after != found.numpat_baseline:
        leftovers.append(f"PUBSUB NUMPAT {found.numpat_after}, was {found.numpat_baseline}")
    if leftovers and never_ended:
        leftovers.append(f"the executor stays open for its {never_ended} future(s) that never ended")
    return [
        check("no subscription or connection of the executor left", leftovers),
        check("every key of ours expires", found.keys_without_ttl),
        check("the queue drained", [f"{found.queue_left} messages"] if found.queue_left else [],
              str(found.queue_left)),
    ]


def fault_checks(kill: KillFigures | None, restart: RestartRecord | None, wipe: RestartRecord | None,
                 submitted: int, problems: list[str]) -> list[Check]:
    """The faults were real: the killed worker was running tasks, Redis went away mid-run, and later came
    back empty."""
    if kill is None:
        missed_kill = ["no worker was killed"]
    else:
        missed_kill = [] if kill.running else [f"{kill.worker} was running nothing"]
    return [
        check("the kill hit a worker while it ran tasks", missed_kill, str(kill.running if kill else 0)),
        check("Redis restarted with tasks submitted before and after", missed(restart, submitted, "restarted"),
              "-" if restart is None else f"at {restart.submitted_before} of {submitted}"),
        check("Redis lost its data with tasks submitted before and after", missed(wipe, submitted, "lost its data"),
              "-" if wipe is None else f"at {wipe.submitted_before} of {submitted}"),
        check("the run went as planned (every fault injected, nothing stopped it early)", problems),
    ]


def missed(restart: RestartRecord | None, submitted: int, what: str) -> list[str]:
    """Why a Redis fault does not count (it did not happen, or not with tasks on both sides of it)."""
    if restart is None or restart.seconds_down is None:
        return [f"Redis never {what}"]
    if 0 < restart.submitted_before < submitted:
        return []
    return [f"{restart.submitted_before} of {submitted} submitted before it"]
