"""Which plain functions the generic runner may call: patterns over qualified names.

A function is named ``module.qualname`` (``math.sqrt``, ``builtins.pow``); patterns use shell wildcards
(``math.*``), where ``*`` also crosses dots. The worker enforces it before importing anything; the producer
reads the same setting to refuse early, before anything is sent. The list is a security boundary: anyone who
can write to the broker can call whatever it admits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from worker import constants as c
from worker.errors import NotAllowedError

__all__ = ["Allowlist", "NotAllowedError"]

NAME_PART = r"[A-Za-z0-9_*?\[\]!]+"
PATTERN = re.compile(rf"{NAME_PART}(\.{NAME_PART})*")
"""Dotted names with shell wildcards; anything else (``math:sqrt``, ``os.system()``) can never match a name."""
CHARACTER_SET = re.compile(r"\[!?[^\]]+\]")


@dataclass(frozen=True)
class Allowlist:
    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str | None) -> Allowlist:
        """Comma-separated patterns; ``None`` (unset) gives the safe default list, ``""`` admits nothing.

        A pattern that could never match a function's name is a ``ValueError`` naming it, not a silent no.
        """
        if raw is None:
            return cls(c.DEFAULT_ALLOWLIST)
        patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
        for pattern in patterns:
            check_pattern(pattern)
        return cls(patterns)

    def admits(self, qualified_name: str) -> bool:
        return any(fnmatchcase(qualified_name, pattern) for pattern in self.patterns)

    def check(self, qualified_name: str) -> None:
        """Raise :class:`NotAllowedError` unless ``qualified_name`` matches a pattern."""
        if not self.admits(qualified_name):
            shown = str(self) or "(empty)"
            raise NotAllowedError(
                f"{qualified_name} is not in the worker allowlist ({c.ENV_ALLOWLIST}={shown})"
            )

    def __str__(self) -> str:
        return ",".join(self.patterns)


def check_pattern(pattern: str) -> None:
    """A pattern must be able to match some ``module.qualname``: dotted, or a wildcard that crosses dots."""
    outside_sets = CHARACTER_SET.sub("", pattern)  # a stray [, ] or ! is matched literally: it never matches
    if (not PATTERN.fullmatch(pattern) or any(char in outside_sets for char in "[]!")
            or ("." not in pattern and "*" not in pattern)):
        raise ValueError(
            f"{c.ENV_ALLOWLIST} has the pattern {pattern!r}, which can never match: patterns are module.function "
            "names with shell wildcards, such as builtins.pow or math.*"
        )
