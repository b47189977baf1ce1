"""Benchmarks (issues 4 and 6): placeholder until they land; not committed."""

from __future__ import annotations

from producer.session import Session


def run_bench(session: Session, out: str | None) -> bool:
    raise NotImplementedError
