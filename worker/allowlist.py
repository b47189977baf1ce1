"""Which plain functions the generic runner may call: patterns over qualified names.

A function is named ``module.qualname`` (``math.sqrt``, ``builtins.pow``); patterns use shell wildcards
(``math.*``), where ``*`` also crosses dots. The worker enforces it before importing anything; the producer
reads the same setting to refuse early, before anything is sent. The list is a security boundary: anyone who
can write to the broker can call whatever it admits.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from worker import constants as c
from worker.errors import NotAllowedError

__all__ = ["Allowlist", "NotAllowedError"]


@dataclass(frozen=True)
class Allowlist:
    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str | None) -> Allowlist:
        """Comma-separated patterns; ``None`` (unset) gives the safe default list."""
        if raw is None:
            return cls(c.DEFAULT_ALLOWLIST)
        return cls(tuple(p.strip() for p in raw.split(",") if p.strip()))

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
