"""Our demo worker: a Celery app (``worker.app``) that installs ``celery_futures`` like any user's app, a
CLI that picks the pool by one flag or variable (``python -m worker --pool gevent``), and demo tasks
(``worker.tasks``) that show why each pool wins or loses."""
