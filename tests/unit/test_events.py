"""Task events in batches (``celery_futures/worker/events.py``): the interval's validation, and that a flush is
scheduled once per batch and never loses an event buffered while one is due (fakes for the timer and the
dispatcher; ``tests/integration/test_events.py`` runs it on real workers of every pool)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from celery_futures.protocol.settings import (
    DEFAULT_EVENT_FLUSH_SECONDS,
    EVENT_FLUSH_SETTING,
    SettingsError,
    event_flush_seconds_of,
)
from celery_futures.worker.events import FlushTimer


@dataclass
class FakeTimer:
    due: list[tuple[float, Callable[[], None]]] = field(default_factory=list)

    def call_after(self, seconds: float, callback: Callable[[], None]) -> None:
        self.due.append((seconds, callback))

    def fire(self) -> None:
        due, self.due = self.due, []
        for _, callback in due:
            callback()


@dataclass
class FakeDispatcher:
    """Celery's dispatcher as the timer sees it: a buffer, flushed as one publish."""

    timer: FlushTimer | None = None
    buffer: list[str] = field(default_factory=list)
    published: list[list[str]] = field(default_factory=list)

    def send(self, event: str) -> None:
        self.buffer.append(event)
        assert self.timer is not None
        self.timer.schedule()

    def flush(self) -> None:
        if self.buffer:
            self.published.append(list(self.buffer))
            self.buffer.clear()


def batching(seconds: float = 0.01) -> tuple[FakeDispatcher, FakeTimer]:
    dispatcher, timer = FakeDispatcher(), FakeTimer()
    dispatcher.timer = FlushTimer(dispatcher, timer, seconds)
    return dispatcher, timer


def test_events_sent_before_the_flush_leave_in_one_publish() -> None:
    dispatcher, timer = batching(0.25)
    for event in ("task-received", "task-started", "task-succeeded"):
        dispatcher.send(event)
    assert [seconds for seconds, _ in timer.due] == [0.25]  # one flush scheduled, not three
    timer.fire()
    assert dispatcher.published == [["task-received", "task-started", "task-succeeded"]]


def test_an_event_after_a_flush_schedules_the_next_one() -> None:
    dispatcher, timer = batching()
    dispatcher.send("task-received")
    timer.fire()
    dispatcher.send("task-succeeded")
    timer.fire()
    assert dispatcher.published == [["task-received"], ["task-succeeded"]]


def test_with_an_event_loop_every_event_goes_through_it_and_arms_one_flush() -> None:
    """Each event is handed to the loop's call_soon (from a pool thread that is what wakes the loop, so it
    fetches the next message at once); the loop arms the timer once per batch."""
    dispatcher, timer = FakeDispatcher(), FakeTimer()
    ready: set[Callable[[], None]] = set()
    dispatcher.timer = FlushTimer(dispatcher, timer, 0.01, call_soon=ready.add)
    for event in ("task-received", "task-started", "task-succeeded"):
        dispatcher.send(event)
    assert len(ready) == 1 and timer.due == []  # one promise, however many events; nothing armed yet
    for callback in ready:
        callback()
        callback()
    assert len(timer.due) == 1
    timer.fire()
    assert dispatcher.published == [["task-received", "task-started", "task-succeeded"]]


def test_a_failed_flush_is_not_fatal_and_the_next_event_schedules_again() -> None:
    class Offline(FakeDispatcher):
        def flush(self) -> None:
            raise ConnectionError("Redis away")

    dispatcher, timer = Offline(), FakeTimer()
    dispatcher.timer = FlushTimer(dispatcher, timer, 0.01)
    dispatcher.send("task-received")
    timer.fire()
    dispatcher.send("task-succeeded")
    assert len(timer.due) == 1


@pytest.mark.parametrize(("given", "expected"), [(None, DEFAULT_EVENT_FLUSH_SECONDS), (0, 0.0), (0.5, 0.5), (5, 5.0)])
def test_the_interval_is_read_from_the_app(given: Any, expected: float) -> None:
    conf = {} if given is None else {EVENT_FLUSH_SETTING: given}
    assert event_flush_seconds_of(conf) == expected


@pytest.mark.parametrize("bad", [-0.1, 5.5, "fast", True, float("nan"), [0.1]])
def test_a_bad_interval_is_refused_naming_the_setting(bad: Any) -> None:
    with pytest.raises(SettingsError, match=f"{EVENT_FLUSH_SETTING} must be a number of seconds from 0 to 5"):
        event_flush_seconds_of({EVENT_FLUSH_SETTING: bad})
