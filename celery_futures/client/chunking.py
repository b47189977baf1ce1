"""``map(fn, *iterables, chunksize=N)``: N calls in one Celery message, results handed back item by item.

Like ``ProcessPoolExecutor.map``, the items are cut into chunks of ``chunksize`` and each chunk is one task
(``celery_futures.chunk``, see ``celery_futures/protocol/chunks.py``): one message, one claim, one result,
one row in Flower. What the caller sees is still the stdlib's ``map``: results in order; an exception raised
by one item comes out of the iterator at that item (the items before it in its chunk are yielded first);
``timeout`` counts from the call to ``map``; when the iterator stops early (an error, a timeout, the caller
closing it) every chunk not yet read is cancelled. A chunk is cancelled as a whole: one a worker has not
started never runs any of its items; one that has started runs to its end.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from celery_futures.client.calls import TaskCall, short_repr
from celery_futures.client.errors import RemoteError, rebuild_exception
from celery_futures.client.future import CeleryFuture
from celery_futures.protocol.chunks import CHUNK_TASK, ERROR, RESULT, TRACEBACK, call_item


def check_chunksize(chunksize: int) -> None:
    """The stdlib's own check and message (``ProcessPoolExecutor.map``)."""
    if chunksize < 1:
        raise ValueError("chunksize must be >= 1.")


def argument_chunks(iterables: tuple[Iterable[Any], ...], chunksize: int) -> Iterator[list[tuple[Any, ...]]]:
    """The argument tuples of ``zip(*iterables)``, ``chunksize`` at a time (the last chunk may be shorter)."""
    items = zip(*iterables, strict=False)  # the stdlib map stops at the shortest iterable
    while chunk := list(islice(items, chunksize)):
        yield chunk


def chunk_call(calls: list[TaskCall]) -> TaskCall:
    """One task call that runs ``calls`` (all of one function, already validated) in order on one worker."""
    first = calls[0]
    return TaskCall(
        CHUNK_TASK,
        [[call_item(call.name, call.args, call.kwargs) for call in calls]],
        {},
        short_repr(f"{len(calls)} calls of {first.name}, the first {first.argsrepr}"),
        "{}",
        first.policy,
    )


@dataclass(frozen=True, slots=True)
class SentChunk:
    future: CeleryFuture
    size: int


def item_results(chunks: list[SentChunk], timeout: float | None) -> Iterator[Any]:
    """Each item's result in order; the stdlib's map loop, with one future per chunk instead of per item."""
    end_time = None if timeout is None else timeout + time.monotonic()
    pending = list(reversed(chunks))
    try:
        while pending:
            chunk = pending.pop()
            remaining = None if end_time is None else end_time - time.monotonic()
            yield from outcomes(result_or_cancel(chunk.future, remaining), chunk.size)
    finally:
        for chunk in pending:
            chunk.future.cancel()


def result_or_cancel(future: CeleryFuture, timeout: float | None) -> Any:
    """The stdlib's ``_result_or_cancel``: a future given up on (a timeout) is cancelled, not left running."""
    try:
        return future.result(timeout)
    finally:
        future.cancel()


def outcomes(answer: Any, size: int) -> Iterator[Any]:
    """The items' values from a chunk's answer; an item's error is raised where that item stands."""
    if not isinstance(answer, list) or len(answer) > size or not all(isinstance(item, dict) for item in answer):
        raise RemoteError(CHUNK_TASK, f"a chunk of {size} calls answered {short_repr(answer)}")
    for outcome in answer:
        if ERROR in outcome:
            raise rebuild_exception(outcome[ERROR], outcome.get(TRACEBACK))
        yield outcome.get(RESULT)
    if len(answer) != size:
        raise RemoteError(CHUNK_TASK, f"a chunk of {size} calls answered {len(answer)} outcomes")
