"""The acme Celery app: ``celery -A acme.app worker`` runs it, producers import it."""

from celery import Celery

import celery_futures

app = Celery("acme", include=["acme.tasks"])
app.config_from_object("acme.celeryconfig")
celery_futures.install(app)  # the one line the workers need: claims, heartbeats, the runner
