"""The producer's memory, traced by ``tracemalloc``: at a baseline, and after the futures are gone.

Baseline: after the executor has started and run a warm-up (its first sends, failures, cancels and
interrupts import and cache what any later task reuses), before the soak submits. After: the executor shut
down, the futures dropped, ``gc.collect()``. Two numbers each time: everything this process holds, and the
same without what the soak's own modules (``producer/soak/``) and its terminal (``rich``, whose caches keep every
distinct progress line it drew) allocated, which are the harness's rather than the producer's memory; the
check uses the second. The lines that grew most are kept, to say where any
difference lives.
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

HARNESS_FILES = (str(Path(__file__).resolve().parent / "*"), "*/rich/*", tracemalloc.__file__)
"""Allocation sites that are the soak's own: its modules, the terminal it draws on, tracemalloc itself."""
TOP_LINES = 8


@dataclass(frozen=True)
class MemoryPoint:
    total_bytes: int
    """Everything traced (``tracemalloc.get_traced_memory()``'s current)."""
    producer_bytes: int
    """The same without the harness's allocations (:data:`HARNESS_FILES`)."""
    snapshot: tracemalloc.Snapshot | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class MemoryFigures:
    baseline: MemoryPoint
    after: MemoryPoint
    peak_bytes: int
    """The highest total traced during the run."""

    @property
    def delta_bytes(self) -> int:
        return self.after.producer_bytes - self.baseline.producer_bytes

    def top_growth(self) -> list[str]:
        """The source lines whose allocations grew most between the two points."""
        if self.baseline.snapshot is None or self.after.snapshot is None:
            return []
        diff = self.after.snapshot.compare_to(self.baseline.snapshot, "lineno")
        return [f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}: {stat.size_diff:+,} B "
                f"({stat.count_diff:+,} blocks)" for stat in diff[:TOP_LINES] if stat.size_diff > 0]


def start() -> None:
    tracemalloc.start()


def measure() -> MemoryPoint:
    """Collect garbage, then measure."""
    gc.collect()
    total, _ = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, f) for f in HARNESS_FILES])
    return MemoryPoint(total, sum(stat.size for stat in snapshot.statistics("filename")), snapshot)


def peak_and_stop() -> int:
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak
