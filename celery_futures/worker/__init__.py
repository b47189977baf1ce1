"""The worker extension: what a Celery worker needs to honour the protocol, for any app.

``install(app)`` (``celery_futures/worker/install.py``) is the whole API for the app's author; tasks that
want to be stoppable on every pool call ``checkpoint()`` (``celery_futures/worker/interrupt.py``). The rest is
what install wires in: the claim before each task (``claiming``), the bootstep with the heartbeat and the
sweep (``bootstep``), the runner for plain functions (``runner``), the message guard (``message_guard``).
"""
