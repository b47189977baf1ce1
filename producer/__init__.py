"""Our lab's producer: ``python -m producer`` runs the demo, the lessons and the benchmarks on our demo
workers through the library's ``CeleryExecutor`` (``celery_futures``), like any user's producer would.

``cli`` parses and dispatches; ``demo``, ``lessons/``, ``bench/`` and ``soak/`` are the scenarios;
``terminal`` owns all output; ``session`` the run's executors; ``cluster`` asks the workers what they are;
``processes`` starts real redis-server and worker processes for the soak and the tests.
"""
