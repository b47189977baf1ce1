"""The four Celery pools as data: what each one is, and what it can and cannot do.

Modelled on Celery's own ``celery.concurrency.ALIASES``: a name maps to an import string, so choosing a
pool imports nothing, and gevent is only imported by the worker that asked for it. Everything that depends
on the pool (``interrupt()``, the STARTED record's ``pool``, our lessons and docs) reads it from here.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass


class Interrupt(enum.Enum):
    """How a task that is already running can be stopped on a pool."""

    SIGNAL = "signal"
    """prefork: the worker sends SIGTERM to the child process running the task; stops any code."""
    KILL_GREENLET = "kill-greenlet"
    """gevent: the worker kills the task's greenlet; stops it at its next cooperative yield."""
    COOPERATIVE = "cooperative"
    """threads, solo: only a task that checks its interrupt flag stops; other code runs to the end."""


@dataclass(frozen=True)
class PoolSpec:
    """One pool: its Celery name and the facts the rest of the product relies on."""

    name: str
    celery_impl: str
    """Import string of Celery's TaskPool class, as in ``celery.concurrency.ALIASES``."""
    is_green: bool
    """Tasks are greenlets in one OS thread; blocking calls must be monkey-patched to overlap."""
    parallel_cpu: bool
    """CPU-bound Python runs on several cores at once (only separate processes escape the GIL)."""
    interrupt: Interrupt
    """What ``interrupt()`` can do to a running task on this pool."""
    default_concurrency: int
    fixed_concurrency: bool = False
    """The pool ignores ``--concurrency`` (solo always runs one task at a time)."""

    @property
    def needs_monkey_patch(self) -> bool:
        """Green pools only overlap blocking IO once the stdlib is patched, before anything imports it."""
        return self.is_green


POOLS: dict[str, PoolSpec] = {
    spec.name: spec
    for spec in (
        PoolSpec(
            name="prefork",
            celery_impl="celery.concurrency.prefork:TaskPool",
            is_green=False,
            parallel_cpu=True,
            interrupt=Interrupt.SIGNAL,
            default_concurrency=os.cpu_count() or 1,
        ),
        PoolSpec(
            name="threads",
            celery_impl="celery.concurrency.thread:TaskPool",
            is_green=False,
            parallel_cpu=False,
            interrupt=Interrupt.COOPERATIVE,
            default_concurrency=10,
        ),
        PoolSpec(
            name="gevent",
            celery_impl="celery.concurrency.gevent:TaskPool",
            is_green=True,
            parallel_cpu=False,
            interrupt=Interrupt.KILL_GREENLET,
            default_concurrency=100,
        ),
        PoolSpec(
            name="solo",
            celery_impl="celery.concurrency.solo:TaskPool",
            is_green=False,
            parallel_cpu=False,
            interrupt=Interrupt.COOPERATIVE,
            default_concurrency=1,
            fixed_concurrency=True,
        ),
    )
}

DEFAULT_POOL = "prefork"


class UnknownPoolError(ValueError):
    """A pool name that is not in :data:`POOLS`; the message lists the valid ones."""


def get_pool(name: str) -> PoolSpec:
    """Return the spec for ``name`` (case-insensitive), or raise with the list of valid pools."""
    try:
        return POOLS[name.strip().lower()]
    except KeyError:
        raise UnknownPoolError(
            f"unknown pool {name!r}; valid pools: {', '.join(POOLS)}"
        ) from None


def pool_of_implementation(celery_impl: str) -> PoolSpec | None:
    """Map what ``celery inspect stats`` reports as the implementation back to our spec."""
    for spec in POOLS.values():
        if spec.celery_impl == celery_impl:
            return spec
    return None


def pool_of_class(pool_cls: type) -> PoolSpec | None:
    """The spec of a running worker's pool class (``WorkController.pool_cls``), or None for a pool we do not
    know (a custom one: it is treated as one that can only be interrupted cooperatively)."""
    return pool_of_implementation(f"{pool_cls.__module__}:{pool_cls.__qualname__}")
