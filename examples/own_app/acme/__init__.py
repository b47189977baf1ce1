"""acme: a small Celery project of its own (reports for an online shop), written before it met celery_futures."""
