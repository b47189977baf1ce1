"""Who is running this code: the worker boot, the pool, the process, the OS thread and, on gevent, the greenlet.

The claim puts this in a task's STARTED record, so a client knows where its task runs (the pool decides how
``interrupt()`` works, the boot id which heartbeat to watch) and a timeline can show it. The worker's
bootstep (``celery_futures/worker/bootstep.py``) writes the boot id and the pool name into the environment
before the pool starts, so prefork children inherit them.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from typing import Any, Final

ENV_BOOT_ID: Final = "CELERY_FUTURES_BOOT_ID"
"""Set by the worker itself at start (not by users): this boot's id, inherited by the pool's children."""
ENV_POOL: Final = "CELERY_FUTURES_POOL"
"""Set by the worker itself at start: the name of the pool it runs (``prefork``, ``threads``...)."""
UNKNOWN_POOL: Final = "unknown"


def new_boot(pool_name: str) -> str:
    """Start a new boot of this worker: a fresh id, and the pool, for this process and its children."""
    boot = uuid.uuid4().hex
    os.environ[ENV_BOOT_ID] = boot
    os.environ[ENV_POOL] = pool_name
    return boot


def boot_id() -> str | None:
    """This worker boot's id (None outside a worker that installed the extension)."""
    return os.environ.get(ENV_BOOT_ID)


def current_pool_name() -> str:
    return os.environ.get(ENV_POOL, UNKNOWN_POOL)


def current_greenlet_id() -> int | None:
    """The running greenlet's id on a gevent worker, None elsewhere (never imports gevent itself)."""
    if "gevent" not in sys.modules:
        return None
    from gevent import getcurrent

    return id(getcurrent())


def execution_context(hostname: str | None) -> dict[str, Any]:
    """JSON-ready description of where the calling code runs, with a wall-clock timestamp."""
    return {
        "hostname": hostname or socket.gethostname(),
        "pool": current_pool_name(),
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "thread_id": threading.get_ident(),
        "greenlet": current_greenlet_id(),
        "boot": boot_id(),
        "at": time.time(),
    }
