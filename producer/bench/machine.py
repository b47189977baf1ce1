"""The machine a run measured: numbers only mean something next to the cores, versions and load they ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

PACKAGES = ("celery", "kombu", "redis", "gevent")


def cpu_model() -> str:
    """The CPU's marketing name from ``/proc/cpuinfo`` (``platform.processor()`` is empty on Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def ram_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        return None


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load: a busy machine (a test run beside the bench) shows here."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def redis_server(redis_url: str) -> dict[str, Any]:
    """Version, and ``hz``: Redis resolves blocking timeouts (BLPOP) to its event-loop ticks."""
    client = redis.Redis.from_url(redis_url)
    try:
        info = client.info("server")
    finally:
        client.close()
    return {"redis_server": str(info["redis_version"]), "redis_hz": info.get("hz")}


def describe_machine(redis_url: str) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "ram_gib": ram_gib(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: metadata.version(name) for name in PACKAGES},
        **redis_server(redis_url),
        "load_average_at_start": load_average(),
    }
