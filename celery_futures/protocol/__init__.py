"""What the client and the worker extension agree on, importing neither.

``keys`` (Redis keys, task ids, claim values, states), ``codec`` (the exact JSON codec), ``claims`` (the
start/cancel scripts and the interrupt flag), ``pools`` (what each pool can do), ``policies`` (what happens
to a task whose worker dies), ``errors`` (exceptions that cross the wire), ``allowlist`` and ``settings``
(inputs both sides judge by one rule), ``installation`` (whether an app takes part).
"""
