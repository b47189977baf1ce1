"""The client: ``CeleryExecutor`` and its ``CeleryFuture``s, for any Celery app that installed the extension.

``executor`` is the API; the futures in flight (``flight``), sending (``calls``, ``sender``, ``dispatch``),
map batching (``batching``), cancel and interrupt (``cancelling``), lost workers (``watchdog``, ``lost``)
and the one listener thread that completes every future (``listener``, ``router``) each have their own
module. It never imports a task module: task names and policies come from the app, or from data.
"""
