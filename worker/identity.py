"""Who is running this code: the pool, the process, the OS thread and, on gevent, the greenlet.

Tasks put this in their STARTED meta so the producer's timeline can show which worker, pool and
process/thread/greenlet ran each task, and the gevent patch test reads it from inside a running worker.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any

from worker import constants as c
from worker.pools import DEFAULT_POOL


def current_pool_name() -> str:
    """The pool this process serves; ``python -m worker`` exports it before Celery starts."""
    return os.environ.get(c.ENV_POOL, DEFAULT_POOL)


def current_greenlet_id() -> int | None:
    """The running greenlet's id on a gevent worker, None elsewhere (never imports gevent itself)."""
    if "gevent" not in sys.modules:
        return None
    from gevent import getcurrent

    return id(getcurrent())


def original_sleep(seconds: float) -> None:
    """The OS's ``time.sleep``, bypassing gevent's patch when there is one: blocks the whole thread."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        monkey.get_original("time", "sleep")(seconds)
    else:
        time.sleep(seconds)


def execution_context(hostname: str | None) -> dict[str, Any]:
    """JSON-ready description of where the calling code runs, with a wall-clock timestamp."""
    return {
        "hostname": hostname or socket.gethostname(),
        "pool": current_pool_name(),
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "thread_id": threading.get_ident(),
        "greenlet": current_greenlet_id(),
        "boot": os.environ.get(c.ENV_BOOT_ID),
        "at": time.time(),
    }


def patch_report() -> dict[str, str]:
    """Which module provides the blocking primitives here: ``gevent...`` once monkey-patched."""
    return {
        "socket.socket": socket.socket.__module__,
        "time.sleep": time.sleep.__module__,
        "threading.Lock": type(threading.Lock()).__module__,
    }
