"""Real OS threads, even in a gevent-patched worker: what the heartbeat and the sweep run on.

A CPU-bound or solo task blocks a worker's own loop, and gevent's loop is blocked by any unpatched call;
a beat that ran there would stop exactly when a task hogs the worker. The OS's ``start_new_thread`` and
``sleep`` keep going whatever the tasks do.
"""

from __future__ import annotations

import _thread
import sys
import time
from collections.abc import Callable
from typing import Any


def native_thread_tools() -> tuple[Callable[..., Any], Callable[[float], None]]:
    """``start_new_thread`` and ``sleep`` that are the OS's, even in a gevent-patched process."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            return monkey.get_original("_thread", "start_new_thread"), monkey.get_original("time", "sleep")
    return _thread.start_new_thread, time.sleep


class Repeater:
    """Call ``action`` every ``seconds`` on a native thread until :meth:`stop`; a failing call is logged by
    ``on_error`` and the loop goes on (Redis being away must not end a heartbeat)."""

    def __init__(self, action: Callable[[], object], seconds: float,
                 on_error: Callable[[Exception], object]) -> None:
        self._action = action
        self._seconds = seconds
        self._on_error = on_error
        self._running = False

    def start(self) -> None:
        start, _ = native_thread_tools()
        self._running = True
        start(self._loop, ())

    def stop(self) -> None:
        self._running = False

    def _loop(self) -> None:
        _, sleep = native_thread_tools()
        while self._running:
            try:
                self._action()
            except Exception as exc:  # this thread must not die
                self._on_error(exc)
            sleep(self._seconds)
