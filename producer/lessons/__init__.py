"""The lessons, by name: each one explains, runs on the workers, and shows what happened, measured.

Every lesson is a plain function ``(session) -> bool`` on the public Executor API, so it runs the same from
the CLI (``python -m producer lesson NAME``) or from Python::

    from producer.lessons import LESSONS
    from producer.terminal import Terminal
    from producer.session import Session

    session = Session(Terminal(), redis_url="redis://:secret@127.0.0.1:6379/0", quick=True)
    try:
        ok = LESSONS["futures"](session)
    finally:
        session.close(cancel=True)
"""

from __future__ import annotations

from collections.abc import Callable

from producer.lessons.asyncio import run_asyncio
from producer.lessons.cancel import run_cancel
from producer.lessons.futures import run_futures
from producer.lessons.gevent import run_gevent
from producer.lessons.pools import run_pools
from producer.lessons.thread_safety import run_thread_safety
from producer.session import Session

LESSONS: dict[str, Callable[[Session], bool]] = {
    "futures": run_futures,
    "pools": run_pools,
    "gevent": run_gevent,
    "asyncio": run_asyncio,
    "thread-safety": run_thread_safety,
    "cancel": run_cancel,
}
