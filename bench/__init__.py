"""The soak run (``bench/soak.py``): thousands of mixed tasks through faults, judged by a side-effect ledger.

Not part of the installed product: it starts its own redis-server and workers with ``tests/processes.py``,
the same real processes the integration tests use. ``scripts/soak.sh`` runs it; CI runs a smaller one
(``tests/integration/test_soak.py``).
"""
