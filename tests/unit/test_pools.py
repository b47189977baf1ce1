"""The pool registry is data: names, Celery import strings and capabilities."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kombu.utils.imports import symbol_by_name

from celery_futures.protocol.pools import POOLS, Interrupt, UnknownPoolError, get_pool, pool_of_implementation


def test_registry_holds_the_four_pools() -> None:
    assert list(POOLS) == ["prefork", "threads", "gevent", "solo"]


@pytest.mark.parametrize("name", ["prefork", "threads", "solo"])
def test_celery_import_strings_resolve_to_celery_pools(name: str) -> None:
    assert symbol_by_name(POOLS[name].celery_impl).__name__ == "TaskPool"


def test_choosing_gevent_or_loading_the_tasks_does_not_import_gevent() -> None:
    code = ("import sys; from celery_futures.protocol.pools import get_pool; get_pool('gevent'); "
            "import worker.tasks.demo; print('gevent' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("name", "green", "parallel", "interrupt"),
    [
        ("prefork", False, True, Interrupt.SIGNAL),
        ("threads", False, False, Interrupt.COOPERATIVE),
        ("gevent", True, False, Interrupt.KILL_GREENLET),
        ("solo", False, False, Interrupt.COOPERATIVE),
    ],
)
def test_capabilities(name: str, green: bool, parallel: bool, interrupt: Interrupt) -> None:
    spec = POOLS[name]
    assert (spec.is_green, spec.parallel_cpu, spec.interrupt) == (green, parallel, interrupt)
    assert spec.needs_monkey_patch is green


def test_solo_concurrency_is_fixed_at_one() -> None:
    assert POOLS["solo"].fixed_concurrency and POOLS["solo"].default_concurrency == 1


def test_lookup_is_case_insensitive() -> None:
    assert get_pool(" GEVENT ") is POOLS["gevent"]


def test_unknown_pool_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownPoolError, match="unknown pool 'eventlet'; valid pools: prefork, threads, gevent, solo"):
        get_pool("eventlet")


def test_implementation_maps_back_to_spec() -> None:
    assert pool_of_implementation("celery.concurrency.thread:TaskPool") is POOLS["threads"]
    assert pool_of_implementation("nope") is None
