"""One table of a run, the form every section's numbers take before report.md, the terminal and the charts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    chart: str | None = None
    """File name of the PNG that goes with the table, if any."""


def verdict(passed: bool | None) -> str:
    return "not measured" if passed is None else ("pass" if passed else "FAIL")


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def dash(value: float | None) -> float | str:
    return "-" if value is None else value
