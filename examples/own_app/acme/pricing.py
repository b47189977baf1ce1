"""Plain functions (not tasks): a producer can run them on the workers with ``executor.submit(total, ...)``
once ``celery_futures_allowlist`` admits them."""


def total(prices: list[float], discount: float = 0.0) -> float:
    return round(sum(prices) * (1 - discount), 2)
