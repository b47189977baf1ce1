"""Prefork children die with their worker: each one asks the kernel for SIGKILL when its parent dies.

Without it, a SIGKILL of a prefork worker's main process (an OOM kill, ``kill -9``) leaves the children that
were running tasks alive: a client rightly decides their worker is gone (its heartbeat stops) and fails the
future, or runs the task again under ``RERUN``, while the orphan may still finish it and leave its side
effect. With ``PR_SET_PDEATHSIG`` the children go with their parent, so "lost" means the task did not
finish, and a rerun never overlaps a first run still going. Linux only (elsewhere, nothing is done).

The kernel sends the signal when the *thread* that forked the child ends, so it is only asked for when that
thread was the worker's main thread (Celery's event-loop pool forks from there; a pool that forks from a
helper thread would have its children killed when that thread stops at a warm shutdown). The same hook
wraps the app's task classes with the claim when the pool starts its children with ``spawn`` (fresh
interpreters that did not inherit the wrapped classes); forked children already have them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from typing import Any, Final

from celery import current_app
from celery.signals import worker_process_init

from celery_futures.protocol.installation import is_installed
from celery_futures.worker.claiming import claim_tasks

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG: Final = 1
PARENT_PID: Final = "CELERY_FUTURES_WORKER_PID"
"""The worker's main process id, set before the pool forks (so a child can tell it was orphaned already)."""


def die_with_parent(parent: int) -> bool:
    """Have the kernel SIGKILL this process when ``parent`` dies; True if it is set up (False off Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        logger.warning("could not ask to die with the worker: %s", os.strerror(ctypes.get_errno()))
        return False
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)
    return True


@worker_process_init.connect
def _in_each_child(**_: Any) -> None:
    """Runs in every prefork child once it is started (the only pool with child processes; the solo pool
    sends the same signal in the worker's own process, where there is nothing to do)."""
    parent = int(os.environ.get(PARENT_PID) or 0)
    app: Any = current_app  # the child's app (set current by Celery's process initializer)
    if not is_installed(app) or os.getpid() == parent:  # the solo pool sends this in the worker itself
        return
    claim_tasks(app)
    if threading.current_thread() is threading.main_thread() and parent:
        die_with_parent(parent)
