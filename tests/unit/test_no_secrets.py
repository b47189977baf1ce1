"""No password or secret is committed: every tracked file is scanned for what secrets look like.

Passwords come from the environment or the gitignored ``.env`` that ``scripts/gen-env.sh`` writes. The only
password-like values allowed in the repository are the documented placeholders below (example URLs, a
wrong password for a test) and the stack tests' own values in ``tests/stack/stack.env``, which guard
nothing: that stack listens on ephemeral loopback ports only, and only while its tests run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PLACEHOLDERS = frozenset({"secret", "s3cret", "pw", "wrong", "***"})
"""Example passwords in documentation and tests (``redis://:secret@host:6379/0``); none is used anywhere."""
TEST_VALUES = frozenset({"stack-test-redis-password", "stack-test-flower-password"})
"""The stack tests' passwords (``tests/stack/stack.env``)."""
VARIABLE = re.compile(r"^(\$|%s|\{|<)")
"""A value filled in later: ``$REDIS_PASSWORD``, ``${password}``, ``%s``, an f-string's ``{...}``, ``<password>``."""


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    checks_value: bool = False
    """Whether group 1 is a value that may be a variable, a placeholder or a test value."""


RULES = (
    Rule("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY( BLOCK)?-----")),
    Rule("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    Rule("AWS secret access key", re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*[\"']?([^\s\"']+)"), True),
    Rule("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    Rule("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    Rule("literal requirepass", re.compile(r"requirepass\s+[\"']?([^\s\"']+)"), True),
    Rule("password in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@\"'`]*:([^\s@/\"'`]+)@"), True),
    # KEY=VALUE as in env files, compose, shell and YAML: a quoted value, or a bare one that ends the line (so
    # code such as ``SECRET_NAME = re.compile(...)`` is not a finding).
    Rule("secret variable set to a literal", re.compile(
        r"(?<![\w{])[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|API_KEY|ACCESS_KEY|AUTH_TOKEN|ACCESS_TOKEN|BASIC_AUTH)"
        r"[A-Z0-9_]*[\"']?\s*[=:]\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'#]+)\s*(?:#.*)?$)"), True),
    # password="..." in code and config of any case: only quoted literals.
    Rule("password set to a literal", re.compile(
        r"(?i)\b\w*(?:password|passwd|secret)\w*[\"']?\s*[=:]\s*[\"']([^\"']+)[\"']"), True),
)


def allowed(value: str) -> bool:
    return not value or bool(VARIABLE.match(value)) or value in PLACEHOLDERS or value in TEST_VALUES


def findings(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, rule name)`` for every secret-looking thing in ``text``."""
    for number, line in enumerate(text.splitlines(), start=1):
        for rule in RULES:
            for match in rule.pattern.finditer(line):
                value = next((group for group in match.groups() if group is not None), "")
                if not (rule.checks_value and allowed(value)):
                    yield number, rule.name


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: there is no list of tracked files to scan")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    """The file's text, or None for binary files (images) and files gone from the work tree."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return None if b"\0" in data[:8192] else data.decode(errors="replace")


def test_no_tracked_file_contains_a_secret() -> None:
    """Every tracked file but this one, whose rules and samples are what a secret looks like."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {rule}"
        for path in tracked_files() if path != Path(__file__).resolve() and (text := text_of(path)) is not None
        for number, rule in findings(text)
    ]
    assert not found, "secret-looking content is committed:\n" + "\n".join(found)


def test_no_env_file_is_tracked_and_env_is_ignored() -> None:
    env_files = [p.name for p in tracked_files() if p.name == ".env" or p.name.startswith(".env.")]
    assert not env_files, f"tracked env files: {env_files}"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env (written by scripts/gen-env.sh) must be gitignored"


# -- the scanner itself: each rule finds what it is for, and lets placeholders through --------------------
# Samples that are real-looking keys are assembled at run time, so not even this file holds one.
KEY_HEADER = "-----BEGIN " + "RSA PRIVATE KEY-----"
AWS_KEY = "AKIA" + "Q" * 16
GITHUB = "ghp" + "_" + "a1" * 18


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (KEY_HEADER, "private key"),
        ("-----BEGIN " + "OPENSSH PRIVATE KEY-----", "private key"),
        (f"key = '{AWS_KEY}'", "AWS access key id"),
        ("aws_secret_access_key = " + "wJalr" + "XUtnFEMI", "AWS secret access key"),
        (f"token: {GITHUB}", "GitHub token"),
        ("requirepass " + "hunter2", "literal requirepass"),
        ("REDIS_URL=redis://:" + "hunter2" + "@redis:6379/0", "password in a URL"),
        ("url = 'rediss://user:" + "Tr0ub4dor" + "@host/0'", "password in a URL"),
        ("FLOWER_PASSWORD=" + "hunter2", "secret variable set to a literal"),
        ("  REDIS_PASSWORD: " + "hunter2  # prod", "secret variable set to a literal"),
        ("export API_KEY='" + "k-123'", "secret variable set to a literal"),
        ("FLOWER_BASIC_AUTH=admin:" + "hunter2", "secret variable set to a literal"),
        ("db_password = '" + "hunter2'", "password set to a literal"),
        ('{"password": "' + 'hunter2"}', "password set to a literal"),
    ],
)
def test_scanner_finds(text: str, rule: str) -> None:
    assert [name for _, name in findings(text)] == [rule]


@pytest.mark.parametrize(
    "text",
    [
        "requirepass $$REDIS_PASSWORD",
        "printf 'requirepass %s\\n' \"$password\"",
        "REDIS_URL: redis://:${REDIS_PASSWORD:?set it}@redis:6379/0",
        "return f\"redis://:{self.password}@127.0.0.1:{self.port}/{db}\"",
        "with the password: `redis://:" + "secret" + "@host:6379/0`",
        "REDIS_PASSWORD=$(secret)",
        "REDIS_PASSWORD=" + "stack-test-redis-password",
        "password: str",
        "password=\"wrong\"",
        "SECRET_NAME = re.compile(r\"PASSWORD|SECRET\")",
        "HOSTILE_TOKEN = \"hostile\"",
        "REDIS_PASSWORD=",
        "redis://127.0.0.1:6379/0",
    ],
)
def test_scanner_lets_variables_and_placeholders_through(text: str) -> None:
    assert list(findings(text)) == []
