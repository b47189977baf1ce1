"""The faults a soak injects, on a thread of their own while the driver keeps submitting.

1. When a third of the tasks have been submitted and the chosen pool's worker is running some of them:
   ask it which tasks it holds (``inspect reserved`` and ``active``), SIGKILL its process
   group, note which futures were running there, and start a replacement of the same pool.
2. At two thirds: restart Redis (the driver holds its next submission until the restart has begun, so
   tasks are submitted before, during and after it).
3. At five sixths: restart Redis with its data deleted, so it comes back empty: queued messages, claims,
   heartbeats and results stored so far are gone (what a Redis without persistence does on a restart).

Whatever goes wrong here is recorded as a problem; the driver is never left waiting for a fault.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from producer.soak.cluster import Cluster
from producer.soak.flight import Flight
from producer.soak.redis_state import unacked_ids

POLL_SECONDS = 0.01
RUNNING_WAIT_SECONDS = 30.0
"""How long the kill waits for the doomed worker to be running a task before it kills it anyway."""
SETTLE_SECONDS = 0.5
"""After the kill: lets STARTED messages the worker published just before it died reach the listener."""


HELD_SECONDS = 1.0


@dataclass
class KillRecord:
    pool: str
    worker: str
    at: float
    """``time.monotonic()`` of the SIGKILL."""
    submitted: int
    running: set[int]
    """Futures running on the worker when it died."""
    stranded: set[int]
    """Futures the worker had received but not started (not claimed: their futures were not running)."""
    replacement: str | None = None
    replacement_seconds: float | None = None


@dataclass
class RestartRecord:
    at: float
    submitted_before: int
    seconds_down: float | None = None


@dataclass
class Faults:
    cluster: Cluster
    flight: Flight
    kill_pool: str
    kill_index: int
    restart_index: int
    wipe_index: int
    deadline: float
    kill: KillRecord | None = None
    restart: RestartRecord | None = None
    wipe: RestartRecord | None = None
    problems: list[str] = field(default_factory=list)
    restart_begun: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(max(0.0, self.deadline - time.monotonic()))

    def affected(self) -> set[int]:
        return self.kill.running | self.kill.stranded if self.kill else set()

    def _run(self) -> None:
        try:
            self._kill_one_worker()
            self._restart_redis()
            self._wipe_redis()
        except Exception as exc:
            self.problems.append(f"fault injection: {type(exc).__name__}: {exc}")
        finally:
            self.restart_begun.set()  # never leave the driver holding its submissions

    def _wait_for(self, check: Callable[[], bool], what: str, seconds: float | None = None) -> None:
        """Poll ``check`` until it says yes; TimeoutError after ``seconds`` or at the run's deadline."""
        limit = self.deadline if seconds is None else min(self.deadline, time.monotonic() + seconds)
        while not check():
            if time.monotonic() > limit:
                raise TimeoutError(f"gave up waiting for {what}")
            time.sleep(POLL_SECONDS)

    def _kill_due(self) -> bool:
        return self.flight.submitted >= self.kill_index

    def _doomed_is_busy(self) -> bool:
        return bool(self.flight.running_on(self.cluster.workers[self.kill_pool].name))

    def _restart_due(self) -> bool:
        return self.flight.submitted >= self.restart_index

    def _kill_one_worker(self) -> None:
        self._wait_for(self._kill_due, f"{self.kill_index} submissions before the kill")
        try:
            self._wait_for(self._doomed_is_busy, f"the {self.kill_pool} worker to run a task", RUNNING_WAIT_SECONDS)
        except TimeoutError:
            self.problems.append(f"the {self.kill_pool} worker ran nothing for {RUNNING_WAIT_SECONDS:.0f}s; "
                                 "killed it idle")
        name = self.cluster.workers[self.kill_pool].name
        holding = self.cluster.holding(self.kill_pool)
        running_before = self.flight.running_on(name)
        self.cluster.kill(self.kill_pool)
        at, submitted = time.monotonic(), self.flight.submitted
        time.sleep(SETTLE_SECONDS)
        running = {i for i in running_before | self.flight.running_on(name)
                   if self.flight.done_at.get(i, at + 1) > at}
        held = holding | self._held_by_the_dead()
        stranded = {i for i, f in self.flight.outstanding_futures().items()
                    if f.task_id in held and i not in running and not f.running()}
        self.kill = KillRecord(self.kill_pool, name, at, submitted, running, stranded)
        began = time.monotonic()
        self.kill.replacement = self.cluster.replace(self.kill_pool).name
        self.kill.replacement_seconds = time.monotonic() - began

    def _held_by_the_dead(self) -> set[str]:
        """Tasks whose messages stay unacknowledged in kombu's ``unacked`` hash: a live worker acknowledges
        a task as it starts it (within milliseconds), so what is still there a second later was taken by the
        dead one. ``inspect`` alone misses what it received in the instant before the kill."""
        with self.cluster.redis.client() as client:
            first = unacked_ids(client)
            time.sleep(HELD_SECONDS)
            return first & unacked_ids(client)

    def _restart_redis(self) -> None:
        self._wait_for(self._restart_due, f"{self.restart_index} submissions before the Redis restart")
        self.restart = RestartRecord(time.monotonic(), self.flight.submitted)
        self.restart_begun.set()
        self.restart.seconds_down = self.cluster.restart_redis()

    def _wipe_redis(self) -> None:
        self._wait_for(lambda: self.flight.submitted >= self.wipe_index,
                       f"{self.wipe_index} submissions before Redis loses its data")
        self.wipe = RestartRecord(time.monotonic(), self.flight.submitted)
        self.wipe.seconds_down = self.cluster.restart_redis(wipe=True)


@dataclass(frozen=True)
class KillFigures:
    """What the kill did, in numbers."""

    pool: str
    worker: str
    replacement: str | None
    replacement_seconds: float | None
    at_submitted: int
    running: int
    stranded: int
    detect_seconds: float | None
    """From the SIGKILL to the last future that was running there ending (None: one never ended)."""
    stranded_seconds: float | None
    """From the SIGKILL to the last future the worker had received but not started ending."""
    running_outcomes: dict[str, int]
    stranded_outcomes: dict[str, int]


def last_end(indices: set[int], at: float, done_at: dict[int, float]) -> float | None:
    if not indices:
        return 0.0
    if any(index not in done_at for index in indices):
        return None
    return max(0.0, max(done_at[index] for index in indices) - at)


def kill_figures(kill: KillRecord | None, done_at: dict[int, float], outcomes: dict[int, str]) -> KillFigures | None:
    if kill is None:
        return None
    return KillFigures(
        kill.pool, kill.worker, kill.replacement, kill.replacement_seconds, kill.submitted, len(kill.running),
        len(kill.stranded), last_end(kill.running, kill.at, done_at), last_end(kill.stranded, kill.at, done_at),
        dict(Counter(outcomes[i] for i in kill.running)), dict(Counter(outcomes[i] for i in kill.stranded)))
