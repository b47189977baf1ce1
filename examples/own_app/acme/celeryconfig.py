"""acme's Celery settings, from its own environment variables (twelve-factor style)."""

import os

broker_url = os.environ.get("ACME_REDIS_URL", "redis://127.0.0.1:6379/0")
result_backend = broker_url
task_default_queue = os.environ.get("ACME_QUEUE", "acme")
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_expires = 3600
worker_prefetch_multiplier = 1
task_send_sent_event = True
worker_send_task_events = True

# Added for celery_futures, and only needed to submit plain functions (executor.submit(pow, 2, 8)): the
# functions the workers may call by name. Tasks need nothing here.
celery_futures_allowlist = os.environ.get("ACME_ALLOWLIST", "acme.pricing.*")
