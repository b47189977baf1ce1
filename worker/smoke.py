"""``python -m worker.smoke``: send one of each demo task to the running worker and print what came back.

A quick "is it alive and doing the right thing" for a fresh setup; exits 1 if any result is wrong.
"""

from __future__ import annotations

import sys
from typing import Any

from worker import tasks
from worker.errors import DemoError

TIMEOUT_SECONDS = 60


def check(label: str, got: Any, expected: Any) -> bool:
    ok = bool(got == expected)
    print(f"{'ok ' if ok else 'BAD'} {label}: {got!r}")
    return ok


def main() -> int:
    who = tasks.whoami.delay().get(timeout=TIMEOUT_SECONDS)
    print(f"ran on {who['hostname']} (pool {who['pool']}, pid {who['pid']}, thread {who['thread']})")
    results = [
        check("cpu_bound(10_000)", tasks.cpu_bound.delay(10_000).get(timeout=TIMEOUT_SECONDS),
              sum(i * i % 7 for i in range(10_000))),
        check("io_sleep(0.1)", tasks.io_sleep.delay(0.1).get(timeout=TIMEOUT_SECONDS), 0.1),
        check("call(divmod, 7, 2)", tasks.call.delay("builtins:divmod", [7, 2], {}).get(timeout=TIMEOUT_SECONDS),
              (3, 1)),
        check("progress(3)", tasks.progress.delay(3).get(timeout=TIMEOUT_SECONDS), 3),
    ]
    try:
        tasks.fail_custom.delay("expected failure").get(timeout=TIMEOUT_SECONDS)
        results.append(check("fail_custom", "no exception", "DemoError"))
    except DemoError as exc:
        results.append(check("fail_custom raises", type(exc).__name__, "DemoError"))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
