"""The soak (``python -m producer.soak``): thousands of mixed tasks through faults, judged by a side-effect ledger.

It starts its own redis-server and workers (``producer/processes.py``, the same real processes the
integration tests use), kills a worker and restarts Redis mid-run, and checks every future against what
the ledger says ran. ``scripts/soak.sh`` runs it; CI runs a smaller one (``tests/integration/test_soak.py``).
"""
