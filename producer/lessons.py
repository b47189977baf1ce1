"""Lessons (issue 6): placeholder until the lessons land; not committed."""

from __future__ import annotations

from collections.abc import Callable

from producer.session import Session

LESSONS: dict[str, Callable[[Session], bool]] = {}
