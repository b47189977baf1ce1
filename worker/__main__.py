"""``python -m worker``: resolve the pool first, then hand over to Celery with ``-P <pool>`` in argv.

Celery monkey-patches for gevent only when ``-P gevent`` is on its command line (``maybe_patch_concurrency``
in ``celery/__main__.py``); choosing the pool through config does not patch. So the pool is resolved from
flags and env here, written into ``sys.argv``, patched for, and only then are Redis and Celery imported.
"""

from __future__ import annotations

import logging
import os
import sys


def main() -> None:
    from worker.cli import CHECK, VALIDATE, celery_argv, export_to_env, parse_args, summary

    settings, mode = parse_args()
    if mode == VALIDATE:
        print(summary(settings))
        sys.exit(0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker: %(message)s", stream=sys.stderr)
    export_to_env(settings, os.environ)  # type: ignore[arg-type]
    if mode == CHECK:
        from worker.health import check_worker

        sys.exit(check_worker(settings))
    sys.argv = celery_argv(settings)
    from celery import maybe_patch_concurrency

    maybe_patch_concurrency()  # patches gevent now, before redis/ssl/socket users are imported
    from worker.app import app  # the very app Celery runs (``--app=worker.app:app``), from the exported env
    from worker.preflight import wait_for_redis

    if not wait_for_redis(app, settings.redis_address, settings.connect_attempts):
        sys.exit(1)
    from celery.bin.celery import main as celery_main

    sys.exit(celery_main())


if __name__ == "__main__":
    main()
