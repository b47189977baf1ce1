"""Which plain functions the generic runner may call: patterns over qualified names.

A function is named ``module.qualname`` (``math.sqrt``, ``builtins.pow``); patterns use shell wildcards
(``math.*``), where ``*`` also crosses dots. The worker enforces it before importing anything; the producer
reads the same setting to refuse early, before anything is sent. The list is a security boundary: anyone who
can write to the broker can call whatever it admits.

Where a list came from (the app's ``celery_futures_allowlist``, ``WORKER_ALLOWLIST``) travels with it, so a
refusal names the setting to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from celery_futures.protocol.errors import NotAllowedError

__all__ = ["DEFAULT_ALLOWLIST", "Allowlist", "NotAllowedError"]

DEFAULT_ALLOWLIST: Final = (
    "builtins.pow",
    "builtins.divmod",
    "builtins.abs",
    "builtins.sum",
    "builtins.min",
    "builtins.max",
    "builtins.len",
    "builtins.round",
    "builtins.sorted",
    "builtins.str",
    "math.*",
    "time.sleep",
)
"""Harmless by construction: no builtin that opens files, imports or evaluates code."""
DEFAULT_SOURCE: Final = "celery_futures_allowlist"

NAME_PART = r"[A-Za-z0-9_*?\[\]!]+"
PATTERN = re.compile(rf"{NAME_PART}(\.{NAME_PART})*")
"""Dotted names with shell wildcards; anything else (``math:sqrt``, ``os.system()``) can never match a name."""
CHARACTER_SET = re.compile(r"\[!?[^\]]+\]")


@dataclass(frozen=True)
class Allowlist:
    patterns: tuple[str, ...]
    source: str = DEFAULT_SOURCE
    """The setting the patterns came from, named in refusals."""

    @classmethod
    def parse(cls, raw: str | None, source: str = DEFAULT_SOURCE) -> Allowlist:
        """Comma-separated patterns; ``None`` (unset) gives the safe default list, ``""`` admits nothing.

        A pattern that could never match a function's name is a ``ValueError`` naming it, not a silent no.
        """
        if raw is None:
            return cls(DEFAULT_ALLOWLIST, source)
        patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
        for pattern in patterns:
            check_pattern(pattern, source)
        return cls(patterns, source)

    def admits(self, qualified_name: str) -> bool:
        return any(fnmatchcase(qualified_name, pattern) for pattern in self.patterns)

    def check(self, qualified_name: str) -> None:
        """Raise :class:`NotAllowedError` unless ``qualified_name`` matches a pattern."""
        if not self.admits(qualified_name):
            shown = str(self) or "(empty)"
            raise NotAllowedError(
                f"{qualified_name} is not in the worker allowlist ({self.source}={shown})"
            )

    def __str__(self) -> str:
        return ",".join(self.patterns)


def check_pattern(pattern: str, source: str = DEFAULT_SOURCE) -> None:
    """A pattern must be able to match some ``module.qualname``: dotted, or a wildcard that crosses dots."""
    outside_sets = CHARACTER_SET.sub("", pattern)  # a stray [, ] or ! is matched literally: it never matches
    if (not PATTERN.fullmatch(pattern) or any(char in outside_sets for char in "[]!")
            or ("." not in pattern and "*" not in pattern)):
        raise ValueError(
            f"{source} has the pattern {pattern!r}, which can never match: patterns are module.function "
            "names with shell wildcards, such as builtins.pow or math.*"
        )
