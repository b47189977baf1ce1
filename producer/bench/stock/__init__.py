"""Stock Celery, the choice a user has instead of us, raced against our executor on the same machine, in the
same run (``race``), judged (``verdict``) and reported (``tables``). The stock workers run
``bench/stock_app.py``, a plain Celery app kept outside our packages."""
